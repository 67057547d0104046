// Heap sampling: which allocations the heap profile records, with their
// stacks, until they are freed.
//
// Sampling is by bytes, as in Go and tcmalloc: the distance between two
// samples is drawn from an exponential distribution with mean `rate`
// bytes, so an allocation of s bytes is sampled with probability
// 1 - exp(-s/rate) whatever came before it (the process is memoryless), and
// the profile scales each sample back by the inverse of that. Each thread
// counts down its own distance in its counter block (initial-exec TLS): the
// fast path is one subtract and one branch. A sampled allocation is served
// from the sampled region (sampled_region.h), carries its bucket (the stack,
// heap_buckets.h) in a header, and is recognised at free() by its address.
//
// The stack is walked inside the hook with the published unwind rows (no
// allocation, no lock); cpprof's own hook frames are left out. A thread
// that is already inside the sampling path (a signal handler that
// allocates, say) is not sampled again.
#pragma once

#include <cstddef>
#include <cstdint>

#include "capture/alloc_counters.h"

namespace cpprof::capture {

inline constexpr int64_t kDefaultHeapRate = 512 * 1024;

// The mean distance between samples, in bytes: 1 samples every allocation,
// 0 none. Takes effect at once on the calling thread (its distance is
// drawn again) and at each other thread's next sample. Samples already
// taken keep their weight.
void set_heap_sample_rate(int64_t rate);
int64_t heap_sample_rate();

// Seeds the samplers' random distances (0: from the clock, the default):
// the calling thread's at once, other threads' when they take a counter
// block. With a fixed seed, a thread that makes the same allocations gets
// the same samples (tests).
void set_heap_sample_seed(uint64_t seed);

// Draws `block`'s first distance (a block being claimed, number `index`).
void init_heap_sampling(AllocCounterBlock* block, size_t index);

// heap_sample_due() for a thread without a counter block: takes one (its
// first allocation), or says no (exiting threads, InternalAllocScope).
[[gnu::noinline]] bool heap_sample_due_slow(size_t size);

// Counts `size` bytes against the calling thread's distance; true if this
// allocation is to be sampled (then call sample_allocation()).
inline bool heap_sample_due(size_t size) {
  AllocCounterBlock* block = t_alloc_block;
  if (__builtin_expect(reinterpret_cast<uintptr_t>(block) <= kExitedBlock, 0)) {
    return heap_sample_due_slow(size);
  }
  // Unsigned, so that sizes of 2^63 and more count as "due"; a due sample
  // leaves the distance for sample_allocation() to redraw.
  const uint64_t left = static_cast<uint64_t>(block->sample_left);
  if (__builtin_expect(size >= left, 0)) return true;
  block->sample_left = static_cast<int64_t>(left - size);
  return false;
}

// Serves an allocation that heap_sample_due() chose: draws the next
// distance, records the stack and returns an object from the sampled
// region, already counted (alloc_counters.h). nullptr if it could not be
// sampled (nested, rate 0, region full): the caller then allocates as
// usual. `alignment` is a power of two (16 for malloc).
[[gnu::noinline]] void* sample_allocation(size_t size, size_t alignment);

// Frees a sampled object (in_sampled_region(ptr)), counted.
void free_sampled(void* ptr);

// Samples taken, and samples the region could not hold.
uint64_t heap_samples_taken();
uint64_t heap_samples_dropped();

}  // namespace cpprof::capture
