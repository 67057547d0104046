#include "sources/heap/heap_snapshot.h"

#include <time.h>

#include "capture/alloc_hooks.h"
#include "capture/heap_buckets.h"
#include "capture/heap_sampler.h"
#include "sources/cpu/unwind_tables.h"

namespace cpprof::sources {
namespace {

void add_bucket(const uint64_t* frames, size_t depth, const capture::HeapBucketCounts& counts,
                void* context) {
  auto* snapshot = static_cast<HeapSnapshot*>(context);
  HeapBucket bucket;
  bucket.frames.assign(frames, frames + depth);
  bucket.alloc_objects = counts.alloc_objects;
  bucket.alloc_bytes = counts.alloc_bytes;
  bucket.free_objects = counts.free_objects;
  bucket.free_bytes = counts.free_bytes;
  snapshot->buckets.push_back(std::move(bucket));
}

}  // namespace

HeapSnapshot take_heap_snapshot() {
  HeapSnapshot snapshot;
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  snapshot.time_nanos = static_cast<int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
  if (!capture::alloc_hooks_compiled_in()) {
    snapshot.unavailable =
        "heap profiling needs cpprof's malloc interposition, which the sanitizer build leaves out";
    return snapshot;
  }
  snapshot.rate = capture::heap_sample_rate();
  if (snapshot.rate <= 0) {
    snapshot.rate = 0;
    snapshot.unavailable = "heap profiling is off (CPPROF_HEAP_RATE=0)";
    return snapshot;
  }
  // The visitor allocates: the buckets it adds are cpprof's own work.
  capture::InternalAllocScope own;
  // Libraries loaded since the last refresh get rows for later samples.
  refresh_process_unwind_tables();
  capture::for_each_heap_bucket(add_bucket, &snapshot);
  return snapshot;
}

}  // namespace cpprof::sources
