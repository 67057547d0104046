#include "symbolize/mapping_set.h"

#include <algorithm>

namespace cpprof::symbolize {
namespace {

bool same_mapping(const MapsEntry& a, const MapsEntry& b) {
  return a.start == b.start && a.limit == b.limit && a.offset == b.offset && a.inode == b.inode &&
         a.dev_major == b.dev_major && a.dev_minor == b.dev_minor && a.path == b.path;
}

}  // namespace

size_t MappingSet::add(const MapsEntry& entry) {
  auto first =
      std::lower_bound(mappings_.begin(), mappings_.end(), entry.start,
                       [](const KnownMapping& m, uint64_t start) { return m.entry.start < start; });
  auto it = first;
  for (; it != mappings_.end() && it->entry.start == entry.start; ++it) {
    if (same_mapping(it->entry, entry)) return static_cast<size_t>(it - mappings_.begin());
  }
  // Among equal starts the newest goes last, keeping "by start, then age".
  size_t index = static_cast<size_t>(it - mappings_.begin());
  mappings_.insert(it, KnownMapping{entry, next_generation_++, SIZE_MAX});
  max_limit_.resize(mappings_.size());
  for (size_t i = index; i < mappings_.size(); ++i) {
    uint64_t before = i == 0 ? 0 : max_limit_[i - 1];
    max_limit_[i] = std::max(before, mappings_[i].entry.limit);
  }
  return index;
}

size_t MappingSet::find(uint64_t address) const {
  auto it = std::upper_bound(mappings_.begin(), mappings_.end(), address,
                             [](uint64_t a, const KnownMapping& m) { return a < m.entry.start; });
  size_t best = SIZE_MAX;
  for (size_t i = static_cast<size_t>(it - mappings_.begin()); i-- > 0;) {
    if (max_limit_[i] <= address) break;  // nothing at or before i reaches it
    const KnownMapping& m = mappings_[i];
    if (address < m.entry.limit &&
        (best == SIZE_MAX || m.generation > mappings_[best].generation)) {
      best = i;
    }
  }
  return best;
}

}  // namespace cpprof::symbolize
