// SampledRegion: where sampled allocations live, so that free() can tell a
// sampled pointer from any other with one range compare (no hash lookup,
// no lock on the common path).
//
// One large range of address space is reserved on the first sample (mapped
// without reserving swap; pages are used as objects need them). Each
// sampled object is preceded by a 16-byte header naming its heap bucket,
// the size the program asked for, and where its slot starts. Slots come in
// size classes: up to 2 KiB, cut from 64 KiB spans and reused through a
// free list per class; larger ones are page runs whose memory is given back
// to the kernel (madvise) when freed and whose address range is reused by
// the next object of the same class.
//
// Allocation-free and free of pthread locks: a spin lock per class, held
// for a few instructions. Async-signal-safe as far as the hooks need.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace cpprof::capture {

// The region's bounds; both 0 before the first sample. `lo` is stored
// before `size`, so that a reader never pairs a size with a stale lo of 0.
struct RegionBounds {
  std::atomic<uintptr_t> lo{0};
  std::atomic<uintptr_t> size{0};
};
extern RegionBounds g_sampled_region;

// Whether `ptr` is a sampled object (one compare).
inline bool in_sampled_region(const void* ptr) {
  const uintptr_t size = g_sampled_region.size.load(std::memory_order_acquire);
  return reinterpret_cast<uintptr_t>(ptr) - g_sampled_region.lo.load(std::memory_order_relaxed) <
         size;
}

// A sampled object of `size` bytes aligned to `alignment` (a power of two,
// at most 4096), recorded against `bucket`; nullptr if the region is full
// or cannot be reserved (the caller then allocates normally, unsampled).
void* sampled_alloc(size_t size, size_t alignment, uint32_t bucket);

// Whether calloc must zero the sampled object at `ptr`: its slot was used
// before (small slots, small runs, a class's warm run), rather than fresh
// or given back to the kernel (zero pages).
bool sampled_needs_zeroing(const void* ptr);

// Frees a sampled object; returns its bucket and requested size.
void sampled_free(void* ptr, uint32_t* bucket, uint64_t* requested);

// The bytes usable at `ptr` (a sampled object): its slot after the header.
size_t sampled_usable_size(const void* ptr);

// cpprof's part of the memory the region holds, for its own costs on the
// index page: the headers and rounding of live sampled objects, and freed
// slots kept resident for reuse. The bytes the objects asked for are the
// program's, not counted; neither are address space never written and runs
// given back to the kernel. Relaxed loads; safe anywhere.
uint64_t sampled_region_overhead_bytes();

// Around fork(): take every size class's lock, so that a child never copies
// one held by a thread that does not exist there; release them after, in
// both processes. From pthread_atfork handlers only.
void lock_sampled_region_for_fork();
void unlock_sampled_region_after_fork();

}  // namespace cpprof::capture
