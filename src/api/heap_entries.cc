#include "api/heap_entries.h"

#include <sys/resource.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cpprof/alloc_stats.h"
#include "sources/heap/heap_delta.h"
#include "sources/heap/heap_profile.h"
#include "sources/heap/heap_text.h"
#include "sources/heap/scrape_delta.h"

namespace cpprof::api {
namespace {

using SnapshotFn = std::function<sources::HeapSnapshot()>;

// A heap request: the snapshot is taken when it opens, so that the text
// (raw counts) and the profile (unbiased) come from the same moment.
class HeapCollection final : public http::Collection {
 public:
  HeapCollection(sources::HeapSnapshot snapshot, symbolize::Symbolizer& symbolizer,
                 sources::HeapProfileKind kind)
      : snapshot_(std::move(snapshot)), symbolizer_(symbolizer), kind_(kind) {}

  profile::Profile finish() override {
    return sources::build_heap_profile(snapshot_, symbolizer_, kind_);
  }
  const sources::HeapSnapshot& snapshot() const { return snapshot_; }

 private:
  sources::HeapSnapshot snapshot_;
  symbolize::Symbolizer& symbolizer_;
  sources::HeapProfileKind kind_;
};

// A profile already built when the request opened (delta_heap's).
class ReadyCollection final : public http::Collection {
 public:
  explicit ReadyCollection(profile::Profile profile) : profile_(std::move(profile)) {}
  profile::Profile finish() override { return std::move(profile_); }

 private:
  profile::Profile profile_;
};

void refuse(http::Refusal* refusal, const std::string& unavailable) {
  refusal->status = 503;
  refusal->message = unavailable.empty() ? "heap profiling is off" : unavailable;
}

// What stands in for Go's "# runtime.MemStats" at the end of the text: the
// exact allocation counters (docs/allocations.md) and the peak RSS.
std::vector<sources::HeapTextStat> text_stats() {
  std::vector<sources::HeapTextStat> stats;
  if (alloc_counting_available()) {
    const AllocStats totals = alloc_stats();
    stats.emplace_back("TotalAlloc", static_cast<int64_t>(totals.bytes));
    stats.emplace_back("Mallocs", static_cast<int64_t>(totals.allocs));
    stats.emplace_back("Frees", static_cast<int64_t>(totals.frees));
    stats.emplace_back("HeapObjects", static_cast<int64_t>(totals.allocs - totals.frees));
  }
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) == 0) {
    stats.emplace_back("MaxRSS", static_cast<int64_t>(usage.ru_maxrss) * 1024);  // KiB on Linux
  }
  return stats;
}

http::ProfileEntry snapshot_entry(std::string name, std::string description,
                                  sources::HeapProfileKind kind, symbolize::Symbolizer& symbolizer,
                                  SnapshotFn take, const std::function<int64_t()>& count) {
  http::ProfileEntry entry;
  entry.name = std::move(name);
  entry.description = std::move(description);
  if (count) entry.count = [count] { return std::optional<int64_t>(count()); };
  entry.text_debug_levels = {1};
  entry.open = [&symbolizer, take,
                kind](http::Refusal* refusal) -> std::unique_ptr<http::Collection> {
    sources::HeapSnapshot snapshot = take();
    if (snapshot.rate <= 0) {
      refuse(refusal, snapshot.unavailable);
      return nullptr;
    }
    return std::make_unique<HeapCollection>(std::move(snapshot), symbolizer, kind);
  };
  entry.delta = sources::delta_heap;
  entry.write_collection_text = [&symbolizer](http::Collection& collection, int) {
    // Only this entry's open() makes the collections it is given.
    const auto& heap = static_cast<const HeapCollection&>(collection);
    return sources::heap_text(heap.snapshot(), symbolizer, text_stats());
  };
  return entry;
}

http::ProfileEntry delta_heap_entry(symbolize::Symbolizer& symbolizer, SnapshotFn take) {
  http::ProfileEntry entry;
  entry.name = "delta_heap";
  entry.description =
      "A sampling of memory allocations since the previous delta_heap request, and of live "
      "objects (Grafana Alloy's godeltaprof_memory)";
  auto state = std::make_shared<sources::ScrapeDelta>();
  entry.open = [&symbolizer, take,
                state](http::Refusal* refusal) -> std::unique_ptr<http::Collection> {
    profile::Profile profile;
    std::string unavailable;
    if (!state->next(take, symbolizer, &profile, &unavailable)) {
      refuse(refusal, unavailable);
      return nullptr;
    }
    return std::make_unique<ReadyCollection>(std::move(profile));
  };
  return entry;
}

}  // namespace

void add_heap_entries(http::Registry& registry, symbolize::Symbolizer& symbolizer,
                      std::function<sources::HeapSnapshot()> take_snapshot,
                      std::function<int64_t()> count) {
  registry.add(snapshot_entry("allocs", "A sampling of all past memory allocations",
                              sources::HeapProfileKind::kAllocs, symbolizer, take_snapshot, count));
  // Go's description goes on about its gc=1 parameter; a C++ heap has no
  // collector to run (gc=1 is accepted and means nothing).
  registry.add(snapshot_entry("heap", "A sampling of memory allocations of live objects.",
                              sources::HeapProfileKind::kHeap, symbolizer, take_snapshot, count));
  registry.add(delta_heap_entry(symbolizer, std::move(take_snapshot)));
}

}  // namespace cpprof::api
