// Exact heap allocation counts: what `go test -benchmem` and
// testing.AllocsPerRun tell a Go programmer, for C++.
//
// cpprof interposes the whole allocation family (malloc, calloc, realloc,
// reallocarray, the aligned forms, and every operator new and delete) and
// counts, per thread and for the process, the allocations that succeeded,
// the frees of non-null pointers, and the bytes the allocations asked for.
// The counters are always on and cost a thread-local add. They count what
// the program asked for, not what the allocator did with it:
//   - malloc, calloc, aligned_alloc, memalign, posix_memalign, valloc,
//     pvalloc, every operator new: one allocation of the requested size;
//   - realloc(p, n) with p and n non-zero (and reallocarray): one
//     allocation of n bytes and one free, moved or not; realloc(nullptr, n)
//     is an allocation, realloc(p, 0) a free;
//   - free and every operator delete of a non-null pointer: one free.
// Bytes freed are not counted (knowing them costs a size lookup on every
// free); the sampled heap profile (/debug/pprof/heap) answers "how much is
// live". cpprof's own threads are left out of the process totals.
//
// All functions here are thread-safe and never allocate.
#pragma once

#include <cstdint>

#include "cpprof/export.h"

namespace cpprof {

// Allocation counters, since the process (or thread) started.
struct AllocStats {
  uint64_t allocs = 0;  // successful allocations
  uint64_t frees = 0;   // frees of non-null pointers
  uint64_t bytes = 0;   // bytes requested by those allocations

  friend AllocStats operator-(const AllocStats& a, const AllocStats& b) {
    return {a.allocs - b.allocs, a.frees - b.frees, a.bytes - b.bytes};
  }
};

// The process's totals (every thread except cpprof's own, exited threads
// included). Each thread's counters are read without stopping it, so the
// sum is exact only while no other thread allocates.
CPPROF_EXPORT AllocStats alloc_stats();

// The calling thread's counters since it started. Exact.
CPPROF_EXPORT AllocStats thread_alloc_stats();

// Whether this process's allocations reach cpprof's counters. False when
// the program defines malloc itself (or links an allocator ahead of
// cpprof), or is fully static; the counters then stay at zero.
CPPROF_EXPORT bool alloc_counting_available();

// The average number of heap allocations per call of `fn` on the calling
// thread, like Go's testing.AllocsPerRun: calls `fn` once to warm up, then
// `runs` times, and returns the allocations divided by `runs` (an integral
// value, rounded down). Allocations made by other threads are not counted.
//
//   EXPECT_EQ(cpprof::allocs_per_run(100, [&] { parse(input); }), 0);
template <class F>
double allocs_per_run(int runs, F&& fn) {
  if (runs <= 0) return 0;
  fn();
  const uint64_t before = thread_alloc_stats().allocs;
  for (int i = 0; i < runs; ++i) fn();
  const uint64_t after = thread_alloc_stats().allocs;
  return static_cast<double>((after - before) / static_cast<uint64_t>(runs));
}

}  // namespace cpprof
