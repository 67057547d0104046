// The heap and allocs profiles (/debug/pprof/heap, /debug/pprof/allocs):
// a HeapSnapshot turned into a Profile the way Go's runtime/pprof writes
// its heap profile (protomem.go):
//   - sample types alloc_objects/count, alloc_space/bytes,
//     inuse_objects/count, inuse_space/bytes; period type space/bytes,
//     period = the sampling rate;
//   - one sample per bucket, each pair of values unbiased with
//     scale_heap_sample() from the bucket's own average size;
//   - a numeric label "bytes" (unit bytes) = the bucket's average
//     allocation size, alloc_bytes / alloc_objects;
//   - the stack's return addresses looked up at address - 1; a bucket
//     without a stack gets the synthetic frame kUnknownStackFrame.
// heap and allocs differ only in the sample type pprof shows by default.
//
// Unbiasing from an average size is exact when every allocation of a
// bucket has the same size (Go keeps one bucket per stack and size); the
// more sizes a bucket mixes, the more its object count is underestimated.
//
// Pure functions of their input apart from the symbolizer; thread-safe as
// the symbolizer is. Not for allocation hooks (they allocate).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>

#include "profile/profile.h"
#include "sources/heap/heap_snapshot.h"
#include "symbolize/symbolizer.h"

namespace cpprof::sources {

// Which endpoint a heap profile is for.
enum class HeapProfileKind {
  kHeap,    // default sample type unset, as Go: pprof then shows the last, inuse_space
  kAllocs,  // default sample type alloc_space, as Go
};

// The function name of the frame given to buckets without a stack (the
// capture side's overflow bucket, or a stack that could not be walked).
inline constexpr const char* kUnknownStackFrame = "(unknown stack)";

// Go's scaleHeapSample: estimates the real (count, bytes) from `count`
// sampled allocations of `size` bytes in all, each sampled with
// probability 1 - exp(-avg/rate), avg = size/count: both multiplied by
// 1/(1 - exp(-avg/rate)) and truncated. Unchanged when rate <= 1 (every
// allocation sampled, or rate unknown); (0, 0) when count or size is 0.
std::pair<int64_t, int64_t> scale_heap_sample(int64_t count, int64_t size, int64_t rate);

// One sample before unbiasing: raw sample counts of one stack.
struct RawHeapSample {
  std::span<const uint64_t> frames;  // return addresses, innermost first
  int64_t alloc_objects = 0;
  int64_t alloc_bytes = 0;
  int64_t inuse_objects = 0;
  int64_t inuse_bytes = 0;
  int64_t block_size = 0;  // the "bytes" label; 0: no label, as Go omits it
};

// The heap profile of `samples`, in order, unbiased for `rate`, stamped
// with `time_nanos`; `default_sample_type` may be empty. Shared by the
// snapshot profiles and delta_heap.
profile::Profile build_raw_heap_profile(std::span<const RawHeapSample> samples, int64_t rate,
                                        int64_t time_nanos, symbolize::Symbolizer& symbolizer,
                                        const std::string& default_sample_type);

// The `kind` profile of `snapshot`. The snapshot must be available
// (rate > 0); callers refuse the request otherwise.
profile::Profile build_heap_profile(const HeapSnapshot& snapshot, symbolize::Symbolizer& symbolizer,
                                    HeapProfileKind kind);

// The raw sample of one bucket: in-use = allocated - freed (never below 0),
// block size = average allocation size.
RawHeapSample raw_heap_sample(const HeapBucket& bucket);

}  // namespace cpprof::sources
