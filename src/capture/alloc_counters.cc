#include "capture/alloc_counters.h"

#include <pthread.h>

#include "capture/heap_buckets.h"
#include "capture/heap_sampler.h"
#include "capture/sampled_region.h"
#include "capture/signal_safe.h"
#include "capture/unwind.h"

namespace cpprof::capture {

[[gnu::tls_model("initial-exec")]] constinit thread_local AllocCounterBlock* t_alloc_block =
    nullptr;

namespace {

constexpr size_t kBlocks = 4096;
constinit AllocCounterBlock g_blocks[kBlocks];
std::atomic<size_t> g_high_water{0};  // blocks at or above were never taken
std::atomic<uint64_t> g_overflows{0};

[[gnu::tls_model("initial-exec")]] constinit thread_local bool t_internal = false;

// Counts of released blocks and of threads without one, host [0] and
// cpprof's own [1]. Written under g_fold_lock with g_fold_seq odd while a
// block is being folded, so that readers see the block or the retired sum,
// never both or neither.
struct SharedTotals {
  std::atomic<uint64_t> allocs{0};
  std::atomic<uint64_t> frees{0};
  std::atomic<uint64_t> bytes{0};
};
constinit SharedTotals g_retired[2];
constinit SharedTotals g_shared[2];
std::atomic<uint64_t> g_fold_seq{0};
std::atomic<bool> g_fold_lock{false};

AllocCounterBlock* claim_block() {
  for (size_t i = 0; i < kBlocks; ++i) {
    AllocCounterBlock& block = g_blocks[i];
    bool expected = false;
    if (!block.in_use.load(std::memory_order_relaxed) &&
        block.in_use.compare_exchange_strong(expected, true, std::memory_order_acquire)) {
      block.trap_at = ~uint64_t{0};
      block.trap = nullptr;
      block.sampling = false;
      block.stack_known = false;
      block.stack_lo = block.stack_hi = 0;
      block.internal.store(t_internal, std::memory_order_relaxed);
      init_heap_sampling(&block, i);
      size_t high = g_high_water.load(std::memory_order_relaxed);
      while (high < i + 1 &&
             !g_high_water.compare_exchange_weak(high, i + 1, std::memory_order_release)) {
      }
      return &block;
    }
  }
  g_overflows.fetch_add(1, std::memory_order_relaxed);
  return nullptr;
}

// The calling thread's block, attaching one if it has none yet.
AllocCounterBlock* attach() {
  AllocCounterBlock* block = t_alloc_block;
  if (reinterpret_cast<uintptr_t>(block) > kExitedBlock) return block;
  if (reinterpret_cast<uintptr_t>(block) == kExitedBlock) return nullptr;
  block = claim_block();
  t_alloc_block = block != nullptr ? block : reinterpret_cast<AllocCounterBlock*>(kExitedBlock);
  return block;
}

void add(std::atomic<uint64_t>& counter, uint64_t value) {
  counter.fetch_add(value, std::memory_order_relaxed);
}

}  // namespace

void count_alloc_slow(size_t size) {
  if (attach() != nullptr) {
    count_alloc(size);  // now on the fast path
    return;
  }
  SharedTotals& shared = g_shared[t_internal ? 1 : 0];
  add(shared.allocs, 1);
  add(shared.bytes, size);
}

void count_free_slow() {
  if (attach() != nullptr) {
    count_free();
    return;
  }
  add(g_shared[t_internal ? 1 : 0].frees, 1);
}

void spring_alloc_trap(AllocCounterBlock* block, size_t size) {
  AllocTrap* trap = block->trap;
  block->trap_at = ~uint64_t{0};  // once
  if (trap == nullptr || trap->sprung) return;
  // The walk starts at our caller (the hook), from this frame's record:
  // built with frame pointers, [fp] is the caller's fp and fp + 16 its SP.
  const auto* frame = static_cast<const uintptr_t*>(__builtin_frame_address(0));
  MachineState state;
  state.pc = reinterpret_cast<uintptr_t>(__builtin_return_address(0));
  state.sp = reinterpret_cast<uintptr_t>(frame) + 2 * sizeof(uintptr_t);
  state.fp = frame[0];
  WalkResult walk =
      walk_stack(state, trap->stack_lo, trap->stack_hi, trap->frames, AllocTrap::kMaxFrames);
  trap->depth = walk.depth;
  trap->size = size;
  trap->sprung = true;
}

AllocCounterBlock* current_alloc_counters() { return attach(); }

AllocTotals thread_alloc_totals() {
  AllocCounterBlock* block = t_alloc_block;
  if (reinterpret_cast<uintptr_t>(block) <= kExitedBlock) return {};
  return {block->allocs.load(std::memory_order_relaxed),
          block->frees.load(std::memory_order_relaxed),
          block->bytes.load(std::memory_order_relaxed)};
}

AllocTotals process_alloc_totals(bool internal) {
  const int side = internal ? 1 : 0;
  for (;;) {
    const uint64_t seq = g_fold_seq.load(std::memory_order_acquire);
    if (seq % 2 != 0) continue;  // a fold is under way: a few instructions
    AllocTotals sum;
    for (const SharedTotals* part : {&g_retired[side], &g_shared[side]}) {
      sum.allocs += part->allocs.load(std::memory_order_relaxed);
      sum.frees += part->frees.load(std::memory_order_relaxed);
      sum.bytes += part->bytes.load(std::memory_order_relaxed);
    }
    const size_t high = g_high_water.load(std::memory_order_acquire);
    for (size_t i = 0; i < high; ++i) {
      const AllocCounterBlock& block = g_blocks[i];
      if (!block.in_use.load(std::memory_order_acquire)) continue;
      if (block.internal.load(std::memory_order_relaxed) != internal) continue;
      sum.allocs += block.allocs.load(std::memory_order_relaxed);
      sum.frees += block.frees.load(std::memory_order_relaxed);
      sum.bytes += block.bytes.load(std::memory_order_relaxed);
    }
    std::atomic_thread_fence(std::memory_order_acquire);
    if (g_fold_seq.load(std::memory_order_relaxed) == seq) return sum;
  }
}

void mark_thread_allocs_internal() {
  t_internal = true;
  AllocCounterBlock* block = t_alloc_block;
  if (reinterpret_cast<uintptr_t>(block) > kExitedBlock) {
    block->internal.store(true, std::memory_order_relaxed);
    block->sample_left = INT64_MAX;  // cpprof never samples its own work
  }
}

namespace {

// Moves `block`'s counts into the retired totals and frees it. The caller
// holds g_fold_lock.
void fold(AllocCounterBlock* block) {
  const uint64_t seq = g_fold_seq.load(std::memory_order_relaxed);
  g_fold_seq.store(seq + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  SharedTotals& retired = g_retired[block->internal.load(std::memory_order_relaxed) ? 1 : 0];
  add(retired.allocs, block->allocs.load(std::memory_order_relaxed));
  add(retired.frees, block->frees.load(std::memory_order_relaxed));
  add(retired.bytes, block->bytes.load(std::memory_order_relaxed));
  block->allocs.store(0, std::memory_order_relaxed);
  block->frees.store(0, std::memory_order_relaxed);
  block->bytes.store(0, std::memory_order_relaxed);
  block->in_use.store(false, std::memory_order_relaxed);
  g_fold_seq.store(seq + 2, std::memory_order_release);
}

// In a fork child only the forking thread lives on: the other threads'
// blocks would stay taken forever, and a fold that was under way in the
// parent would leave the lock held. The child is single-threaded here.
void after_fork_in_child() {
  unlock_sampled_region_after_fork();
  unlock_heap_buckets_after_fork();
  g_fold_lock.store(false, std::memory_order_relaxed);
  if (g_fold_seq.load(std::memory_order_relaxed) % 2 != 0) g_fold_seq.fetch_add(1);
  const size_t high = g_high_water.load(std::memory_order_relaxed);
  for (size_t i = 0; i < high; ++i) {
    AllocCounterBlock* block = &g_blocks[i];
    if (block != t_alloc_block && block->in_use.load(std::memory_order_relaxed)) fold(block);
  }
}

// The sampled paths' locks: held by the forking thread across fork(), so
// that no other thread holds one when the child's copy is made. Registered
// first, so these prepare handlers run last, after cpprof's own mutexes
// are taken (a thread holding one of those may still allocate).
void before_fork() {
  lock_heap_buckets_for_fork();
  lock_sampled_region_for_fork();
}

void after_fork_in_parent() {
  unlock_sampled_region_after_fork();
  unlock_heap_buckets_after_fork();
}

[[gnu::constructor(101)]] void register_fork_handler() {
  pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child);
}

}  // namespace

InternalAllocScope::InternalAllocScope()
    : saved_block_(t_alloc_block), saved_internal_(t_internal) {
  // The tag sends every count through the slow path to the shared counters.
  t_alloc_block = reinterpret_cast<AllocCounterBlock*>(kExitedBlock);
  t_internal = true;
}

InternalAllocScope::~InternalAllocScope() {
  t_alloc_block = saved_block_;
  t_internal = saved_internal_;
}

void release_thread_alloc_counters() {
  AllocCounterBlock* block = t_alloc_block;
  t_alloc_block = reinterpret_cast<AllocCounterBlock*>(kExitedBlock);
  if (reinterpret_cast<uintptr_t>(block) <= kExitedBlock) return;
  while (g_fold_lock.exchange(true, std::memory_order_acquire)) {
  }
  fold(block);
  g_fold_lock.store(false, std::memory_order_release);
}

bool set_alloc_trap(uint64_t trap_at, AllocTrap* trap, uint64_t* previous_trap_at,
                    AllocTrap** previous_trap) {
  AllocCounterBlock* block = attach();
  if (block == nullptr) return false;
  if (previous_trap_at != nullptr) *previous_trap_at = block->trap_at;
  if (previous_trap != nullptr) *previous_trap = block->trap;
  block->trap = trap;
  block->trap_at = trap_at;
  return true;
}

uint64_t alloc_block_overflows() { return g_overflows.load(std::memory_order_relaxed); }

uint64_t alloc_counters_memory_bytes() {
  return pages_spanned(g_blocks,
                       g_high_water.load(std::memory_order_relaxed) * sizeof(AllocCounterBlock));
}

}  // namespace cpprof::capture
