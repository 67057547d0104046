// Exact allocation counters, per thread and for the process, updated from
// inside the allocation hooks (malloc_hooks.cc, new_hooks.cc, or the
// sanitizer's hooks). Async-signal-safe, allocation-free, lock-free on
// every path an allocation can take.
//
// Each thread owns one counter block from a fixed array, found through an
// initial-exec TLS pointer: the fast path is a TLS load, two plain adds on
// the thread's own cache line and one compare (the trap, below). Only the
// owner writes its block; readers (alloc_stats(), the index page) load the
// counters relaxed. A thread takes its block at its first allocation and
// gives it back when it exits (the pthread_create trampoline calls
// release_thread_alloc_counters()): the block's counts are folded into the
// retired totals under a sequence counter, so a reader never counts them
// twice or not at all. Allocations after that, and of threads that find no
// free block, go to shared atomic counters.
//
// The trap: a thread can ask to be told, with the stack, about its first
// allocation past a given count (AllocationGuard). The compare against
// `trap_at` is the only cost when no guard is active.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace cpprof::capture {

// One thread's counters. Fields marked "owner" are touched by the owning
// thread only.
struct alignas(64) AllocCounterBlock {
  // First cache line: what every allocation touches.
  std::atomic<uint64_t> allocs{0};
  std::atomic<uint64_t> frees{0};
  std::atomic<uint64_t> bytes{0};
  uint64_t trap_at = ~uint64_t{0};  // owner: allocs count that springs the trap
  int64_t sample_left = INT64_MAX;  // owner: bytes until the next heap sample (heap_sampler.h)
  std::atomic<bool> in_use{false};
  std::atomic<bool> internal{false};  // one of cpprof's own threads
  bool sampling = false;              // owner: inside the sampling path (no nested samples)
  bool stack_known = false;           // owner: stack_lo/hi looked up
  // Rarely touched, owner only.
  struct AllocTrap* trap = nullptr;  // where the trap records
  uint64_t rng = 0;                  // the sampler's random state
  uintptr_t stack_lo = 0;            // the thread's stack, for the sampler's walks
  uintptr_t stack_hi = 0;
};
static_assert(std::atomic<uint64_t>::is_always_lock_free);

// What a sprung trap recorded: the stack of the allocation, innermost
// first, starting inside the hook.
struct AllocTrap {
  static constexpr size_t kMaxFrames = 64;
  uintptr_t stack_lo = 0;  // the thread's stack bounds, filled by the setter
  uintptr_t stack_hi = 0;
  bool sprung = false;
  size_t size = 0;  // bytes the allocation asked for
  size_t depth = 0;
  uint64_t frames[kMaxFrames] = {};
};

// Counter sums.
struct AllocTotals {
  uint64_t allocs = 0;
  uint64_t frees = 0;
  uint64_t bytes = 0;
};

// Tags of t_alloc_block that are not blocks.
inline constexpr uintptr_t kNoBlock = 0;      // not attached yet
inline constexpr uintptr_t kExitedBlock = 1;  // released at thread exit: shared counters

// The calling thread's block, or a tag. constinit: no TLS wrapper, no
// initialisation on first touch (which could allocate).
[[gnu::tls_model("initial-exec")]] extern constinit thread_local AllocCounterBlock* t_alloc_block;

// The paths off the fast path. Never inline: keep the hooks small.
[[gnu::noinline]] void count_alloc_slow(size_t size);
[[gnu::noinline]] void count_free_slow();
[[gnu::noinline]] void spring_alloc_trap(AllocCounterBlock* block, size_t size);

// Counts one allocation of `size` bytes in the calling thread's `block`
// (plain adds: only the owner writes), springing its trap if due.
inline void count_alloc_in(AllocCounterBlock* block, size_t size) {
  const uint64_t n = block->allocs.load(std::memory_order_relaxed) + 1;
  block->allocs.store(n, std::memory_order_relaxed);
  block->bytes.store(block->bytes.load(std::memory_order_relaxed) + size,
                     std::memory_order_relaxed);
  if (__builtin_expect(n >= block->trap_at, 0)) spring_alloc_trap(block, size);
}

// Counts one free in the calling thread's `block`.
inline void count_free_in(AllocCounterBlock* block) {
  block->frees.store(block->frees.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

// Counts one allocation of `size` bytes on the calling thread.
inline void count_alloc(size_t size) {
  AllocCounterBlock* block = t_alloc_block;
  if (__builtin_expect(reinterpret_cast<uintptr_t>(block) > kExitedBlock, 1)) {
    return count_alloc_in(block, size);
  }
  count_alloc_slow(size);
}

// Counts one free of a non-null pointer on the calling thread.
inline void count_free() {
  AllocCounterBlock* block = t_alloc_block;
  if (__builtin_expect(reinterpret_cast<uintptr_t>(block) > kExitedBlock, 1)) {
    return count_free_in(block);
  }
  count_free_slow();
}

// The calling thread's block, taken now if it has none; nullptr if the
// array is full or the thread has exited its start routine.
AllocCounterBlock* current_alloc_counters();

// The calling thread's counts so far (zero if it never allocated).
AllocTotals thread_alloc_totals();

// The process's totals: the host's threads, or cpprof's own.
AllocTotals process_alloc_totals(bool internal);

// Marks the calling thread as one of cpprof's own: its allocations count
// in process_alloc_totals(true). Call before it allocates.
void mark_thread_allocs_internal();

// While alive, the calling thread's allocations and frees count as
// cpprof's own (shared counters, off the thread's block): for cpprof's work
// on a host thread (starting a server, preparing a guard). Nests.
class InternalAllocScope {
 public:
  InternalAllocScope();
  ~InternalAllocScope();
  InternalAllocScope(const InternalAllocScope&) = delete;
  InternalAllocScope& operator=(const InternalAllocScope&) = delete;

 private:
  AllocCounterBlock* saved_block_;
  bool saved_internal_;
};

// Folds the calling thread's counts into the process totals and gives its
// block back. Later allocations of the thread are still counted (shared).
void release_thread_alloc_counters();

// Arms the trap of the calling thread's block: the allocation that brings
// its allocs count to `trap_at` records into `trap` (once; then the trap
// disarms itself). Returns false if the thread has no block. The previous
// trap is returned through the out-parameters, for nesting.
bool set_alloc_trap(uint64_t trap_at, AllocTrap* trap, uint64_t* previous_trap_at,
                    AllocTrap** previous_trap);

// Number of threads that found no free block (their counts are shared).
uint64_t alloc_block_overflows();

// Memory the counter blocks hold: their pages written so far, up to the
// highest block ever taken (the array is reserved up front). Relaxed
// loads; safe anywhere.
uint64_t alloc_counters_memory_bytes();

}  // namespace cpprof::capture
