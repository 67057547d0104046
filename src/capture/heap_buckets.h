// HeapBuckets: the sampled heap's allocation stacks and sizes, each with the counts
// of its sampled allocations and frees (Go's memRecord: in use = allocated
// - freed). Written from the allocation hooks' sampling path; read by the
// heap profiler's snapshots.
//
// A fixed open-addressing table of stacks over memory mapped on first use
// (nothing allocated through malloc): inserting a new stack takes a spin
// lock (only a sampled allocation with a stack never seen before does);
// finding a stack and counting are lock-free. When the table or its frame
// pool is full, samples go to one overflow bucket with an empty stack.
// Async-signal-safe as far as the allocation hooks need (no malloc, no
// pthread locks).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace cpprof::capture {

struct HeapBucketCounts {
  uint64_t alloc_objects = 0;
  uint64_t alloc_bytes = 0;
  uint64_t free_objects = 0;
  uint64_t free_bytes = 0;
};

// The bucket of allocations of `size` bytes at `frames` (innermost first),
// created if new; the overflow bucket if the table is full or memory
// cannot be mapped. Keyed by size too, as Go's are: the profile unbiases
// each bucket by its object size, which an average over mixed sizes would
// get wrong.
uint32_t heap_bucket_for(const uint64_t* frames, size_t depth, uint64_t size);

// Counts a sampled allocation / free of `bytes` requested bytes.
void heap_bucket_alloc(uint32_t bucket, uint64_t bytes);
void heap_bucket_free(uint32_t bucket, uint64_t bytes);

// Calls `visit(frames, depth, counts, context)` for every bucket with
// samples, in no particular order. The frames stay valid for the process's
// life. Not for hooks (the visitor may allocate).
void for_each_heap_bucket(void (*visit)(const uint64_t* frames, size_t depth,
                                        const HeapBucketCounts& counts, void* context),
                          void* context);

// Buckets in use and samples that went to the overflow bucket.
size_t heap_bucket_count();
uint64_t heap_bucket_overflows();

// Memory the table holds: its pages written so far and the frame pool's
// used pages (both are mapped up front but take memory only when written;
// pages only read, as a snapshot reads the whole table, are the kernel's
// shared zero page). Relaxed loads; safe anywhere.
uint64_t heap_bucket_memory_bytes();

// Around fork(): the forking thread takes the table's lock (waiting for a
// thread that holds it) so the child never copies it held; both processes
// release it after. From pthread_atfork handlers only.
void lock_heap_buckets_for_fork();
void unlock_heap_buckets_after_fork();

}  // namespace cpprof::capture
