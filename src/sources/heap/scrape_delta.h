// The state behind /debug/pprof/delta_heap, the endpoint of Grafana's
// godeltaprof that Alloy's pyroscope.scrape reads with
// `profile.godeltaprof_memory` (and forwards as a "memory" profile without
// computing a delta of its own):
//   - alloc_objects and alloc_space count only the sampled allocations
//     since the previous delta_heap answer (everything since start-up on
//     the first), unbiased from those allocations' average size;
//   - inuse_objects and inuse_space are the live heap now, as in /heap;
//   - stacks whose four values are all zero are left out, so a quiet
//     process answers with a small profile;
//   - the "bytes" label is the stack's average allocation size since
//     start-up, as in /heap; the default sample type is left unset, as
//     godeltaprof leaves it.
// The delta is taken on the raw sample counts before unbiasing, as
// godeltaprof does, so cumulative counts that grow always give
// non-negative alloc_* values.
//
// One state per process, like godeltaprof's: every delta_heap request
// advances it. Two scrapers of the same process therefore each see only
// the allocations since the other's last scrape (together they see each
// allocation once). That is Alloy's model, where one agent scrapes each
// target; consumers that need their own windows use /allocs (cumulative;
// Alloy computes its delta client-side) or /heap?seconds=N.
//
// Thread-safe: requests are served one at a time (the snapshot is taken
// under the lock, so each answer starts where the previous one ended).
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "profile/profile.h"
#include "sources/heap/heap_snapshot.h"
#include "symbolize/symbolizer.h"

namespace cpprof::sources {

// The delta_heap state of one process (above).
class ScrapeDelta {
 public:
  // Takes a snapshot with `take`; if it is available, fills `out` with the
  // delta_heap profile and makes it the new starting point. Otherwise
  // returns false with `unavailable` set (the snapshot's reason), the state
  // unchanged.
  bool next(const std::function<HeapSnapshot()>& take, symbolize::Symbolizer& symbolizer,
            profile::Profile* out, std::string* unavailable);

 private:
  // Sampled allocation totals of one bucket at the previous answer.
  struct Seen {
    int64_t block_size = 0;
    int64_t alloc_objects = 0;
    int64_t alloc_bytes = 0;
  };
  // FNV-1a over the return addresses.
  struct StackHash {
    size_t operator()(const std::vector<uint64_t>& stack) const;
  };
  // Per stack, its buckets (one per stack in cpprof; one per size in Go).
  using SeenMap = std::unordered_map<std::vector<uint64_t>, std::vector<Seen>, StackHash>;

  std::mutex mu_;
  SeenMap seen_;            // by stack
  int64_t seen_nanos_ = 0;  // when the previous answer's snapshot was taken
};

}  // namespace cpprof::sources
