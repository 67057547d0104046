// What the sampled heap profiler knows at one moment: per allocation stack
// ("bucket", as in Go's runtime), the sampled allocations and frees since
// the process started. Go's memRecord model: in-use = allocated - freed.
//
// The numbers are raw sample counts and the bytes those samples asked for;
// unbiasing to estimates of the real totals (Go's scaleHeapSample,
// 1/(1-exp(-avg_size/rate))) is the profile builder's job. Cumulative
// fields only grow.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cpprof::sources {

struct HeapBucket {
  // The allocating stack, innermost first, cpprof's hooks left out. Every
  // entry is a return address (frames[0] is where the program's function
  // that called malloc/new resumes), so look each up at address - 1.
  std::vector<uint64_t> frames;
  uint64_t alloc_objects = 0;  // sampled allocations
  uint64_t alloc_bytes = 0;    // bytes they requested
  uint64_t free_objects = 0;   // of those, freed since
  uint64_t free_bytes = 0;
};

struct HeapSnapshot {
  // Mean bytes between samples (CPPROF_HEAP_RATE); 0: heap profiling is off.
  int64_t rate = 0;
  // CLOCK_REALTIME when the snapshot was taken.
  int64_t time_nanos = 0;
  // Every bucket with at least one sampled allocation.
  std::vector<HeapBucket> buckets;
  // Why there is no data when rate is 0 (e.g. "CPPROF_HEAP_RATE=0", "the
  // sanitizer build does not interpose malloc"); empty otherwise.
  std::string unavailable;
};

// The process's heap samples now. Thread-safe; allocates (never call it
// from an allocation hook).
HeapSnapshot take_heap_snapshot();

}  // namespace cpprof::sources
