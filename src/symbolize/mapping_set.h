// Every executable mapping ever seen in this process, current and past.
//
// Past mappings are kept because a sample may have been taken before its
// library was dlclose'd. When a new mapping overlaps an older one (a new
// library loaded where an old one was), addresses resolve to the newest:
// samples are usually recent. Not thread-safe; the Symbolizer locks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "symbolize/proc_maps.h"

namespace cpprof::symbolize {

// A mapping and the order in which it was first seen.
struct KnownMapping {
  MapsEntry entry;
  uint64_t generation = 0;   // larger = seen later
  size_t object = SIZE_MAX;  // owner's index of the opened object; SIZE_MAX if none
};

class MappingSet {
 public:
  // Records `entry` unless an identical mapping (same range, offset, file)
  // is already known. Returns the index of the new or existing record;
  // indices change when later entries are added.
  size_t add(const MapsEntry& entry);

  // Index of the newest mapping containing `address`, or SIZE_MAX.
  size_t find(uint64_t address) const;

  // All mappings, ordered by start (then by age).
  const std::vector<KnownMapping>& all() const { return mappings_; }
  KnownMapping& at(size_t index) { return mappings_[index]; }

 private:
  std::vector<KnownMapping> mappings_;
  // max_limit_[i] = largest limit among mappings_[0..i]; lets find() stop
  // scanning backwards once nothing earlier can reach the address.
  std::vector<uint64_t> max_limit_;
  uint64_t next_generation_ = 1;
};

}  // namespace cpprof::symbolize
