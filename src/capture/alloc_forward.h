// The fast paths of the interposed malloc and free, shared by the C hooks
// (malloc_hooks.cc) and operator new/delete (new_hooks.cc) so that each
// compiles to one function: no call between hook files, one load of the
// thread's counter block, the allocator below reached by one indirect call
// (malloc) or jump (free). Everything unusual (not resolved yet, a thread
// without a block, a sample due, a pointer from the arena) leaves the fast
// path through one branch to an out-of-line function.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "capture/alloc_counters.h"
#include "capture/sampled_region.h"

namespace cpprof::capture {

// The allocator below. Written once by resolve(), before g_alloc_state
// says ready.
struct RealAllocator {
  void* (*malloc)(size_t) = nullptr;
  void (*free)(void*) = nullptr;
  void* (*calloc)(size_t, size_t) = nullptr;
  void* (*realloc)(void*, size_t) = nullptr;
  int (*posix_memalign)(void**, size_t, size_t) = nullptr;
  size_t (*usable_size)(void*) = nullptr;
  // Optional: only if the object that defines malloc has them.
  void* (*reallocarray)(void*, size_t, size_t) = nullptr;
  void* (*memalign)(size_t, size_t) = nullptr;
  void* (*aligned_alloc)(size_t, size_t) = nullptr;
  void* (*valloc)(size_t) = nullptr;
  void* (*pvalloc)(size_t) = nullptr;
};
extern RealAllocator g_real;

inline constexpr int kAllocReady = 2;
extern std::atomic<int> g_alloc_state;  // kAllocReady once g_real is filled in

// Whether the process's malloc is cpprof's; if not (the program defines
// its own), operator new and delete call the process's malloc and free,
// unless that free is cpprof's (which would recurse).
extern std::atomic<bool> g_global_malloc_is_ours;
extern std::atomic<bool> g_forward_free;

// Resolves the allocator below if nobody has yet; false while that runs
// (on this thread or another): the caller then uses the arena.
bool alloc_ready();

// The bootstrap arena (malloc_resolve.cc): allocations made while the
// allocator below is being looked up. Never reused, so zero-filled; its
// blocks carry their size; freeing them does nothing.
extern char g_arena[];
inline constexpr size_t kArenaSize = size_t{256} << 10;
inline bool in_arena(const void* ptr) {
  return reinterpret_cast<uintptr_t>(ptr) - reinterpret_cast<uintptr_t>(g_arena) < kArenaSize;
}
size_t arena_size_of(const void* ptr);
// A counted arena block; nullptr and ENOMEM when the arena is full.
void* bootstrap_alloc(size_t alignment, size_t size);

// Copies without calling memcpy (which may be interposed too).
void copy_bytes(void* to, const void* from, size_t n);

// Out of line: everything but the common case.
[[gnu::noinline]] void* forward_malloc_slow(size_t size);
[[gnu::noinline]] void forward_free_slow(void* ptr);

// posix_memalign-style allocation, counted, to the allocator below or the
// sampled region; nullptr on failure. `alignment` a power of two.
void* forward_aligned(size_t alignment, size_t size);

// malloc, counted, to the allocator below (never to the process's malloc:
// that may be a program's wrapper that calls us).
[[gnu::always_inline]] inline void* forward_malloc(size_t size) {
  AllocCounterBlock* block = t_alloc_block;
  if (__builtin_expect(g_alloc_state.load(std::memory_order_acquire) != kAllocReady ||
                           reinterpret_cast<uintptr_t>(block) <= kExitedBlock,
                       0)) {
    return forward_malloc_slow(size);
  }
  // Unsigned: a sample is due when the distance left is reached (a size of
  // 2^63 or more included); sample_left is never negative.
  const uint64_t left = static_cast<uint64_t>(block->sample_left);
  if (__builtin_expect(size >= left, 0)) return forward_malloc_slow(size);
  block->sample_left = static_cast<int64_t>(left - size);
  void* ptr = g_real.malloc(size);
  if (__builtin_expect(ptr != nullptr, 1)) {
    // The block cannot change during the call: only this thread's own
    // start, exit or an InternalAllocScope swap it.
    count_alloc_in(block, size);
  }
  return ptr;
}

// free, counted, to the allocator below (or the sampled region).
[[gnu::always_inline]] inline void forward_free(void* ptr) {
  if (ptr == nullptr) return;
  AllocCounterBlock* block = t_alloc_block;
  if (__builtin_expect(in_sampled_region(ptr) || in_arena(ptr) ||
                           reinterpret_cast<uintptr_t>(block) <= kExitedBlock,
                       0)) {
    return forward_free_slow(ptr);
  }
  count_free_in(block);
  // Not from the arena, so from g_real: resolve() has finished.
  g_real.free(ptr);
}

}  // namespace cpprof::capture
