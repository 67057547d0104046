#include "capture/heap_sampler.h"

#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cmath>

#include "capture/alloc_hooks.h"
#include "capture/heap_buckets.h"
#include "capture/sampled_region.h"
#include "capture/signal_safe.h"
#include "capture/thread_hooks.h"
#include "capture/thread_table.h"
#include "capture/unwind.h"

// The top of the main thread's stack, set by the loader (glibc exports it).
extern "C" void* __libc_stack_end;

namespace cpprof::capture {
namespace {

std::atomic<int64_t> g_rate{kDefaultHeapRate};
std::atomic<uint64_t> g_seed{0};
std::atomic<uint64_t> g_taken{0};
std::atomic<uint64_t> g_dropped{0};

uint64_t next_random(AllocCounterBlock* block) {
  // xorshift64*: plenty for sampling distances.
  uint64_t x = block->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  block->rng = x;
  return x * 0x2545f4914f6cdd1dull;
}

// Bytes to the next sample: ceil of an exponential variate with mean
// `rate`, so that an allocation of s bytes is sampled with probability
// exactly 1 - exp(-s/rate) (heap_sample_due samples when the count reaches
// zero). Rate 1: every allocation; 0: none.
int64_t next_distance(AllocCounterBlock* block) {
  const int64_t rate = g_rate.load(std::memory_order_relaxed);
  if (rate <= 0) return INT64_MAX;
  if (rate == 1) return 0;
  // Uniform in (0, 1]: never log(0).
  const double u = static_cast<double>((next_random(block) >> 11) + 1) * 0x1.0p-53;
  const double distance = std::ceil(-std::log(u) * static_cast<double>(rate));
  return distance < 9.0e18 ? static_cast<int64_t>(distance) : INT64_MAX;
}

// The calling thread's stack bounds, looked up once per block: from its
// thread-table slot (every thread started through pthread_create has
// one), or for the main thread from the loader. Unknown bounds give
// one-frame stacks, never a read outside the stack.
void find_stack(AllocCounterBlock* block) {
  if (ThreadSlot* slot = current_thread_slot()) {
    block->stack_lo = slot->stack_lo.load(std::memory_order_relaxed);
    block->stack_hi = slot->stack_hi.load(std::memory_order_acquire);
  }
  if (block->stack_hi == 0 && current_tid() == getpid() && __libc_stack_end != nullptr) {
    block->stack_hi = reinterpret_cast<uintptr_t>(__libc_stack_end);
  }
  // Not found yet (a thread sampled while it registers itself): ask again
  // at the next sample.
  block->stack_known = block->stack_hi != 0;
}

}  // namespace

void set_heap_sample_rate(int64_t rate) {
  g_rate.store(rate, std::memory_order_relaxed);
  // The calling thread's distance was drawn at the old rate (the main
  // thread's at start-up, before CPPROF_HEAP_RATE was read): draw again.
  if (AllocCounterBlock* block = current_alloc_counters()) {
    block->sample_left =
        block->internal.load(std::memory_order_relaxed) ? INT64_MAX : next_distance(block);
  }
}

int64_t heap_sample_rate() { return g_rate.load(std::memory_order_relaxed); }

void set_heap_sample_seed(uint64_t seed) {
  g_seed.store(seed, std::memory_order_relaxed);
  AllocCounterBlock* block = current_alloc_counters();
  if (block != nullptr && seed != 0) {
    block->rng = seed | 1;
    if (!block->internal.load(std::memory_order_relaxed)) block->sample_left = next_distance(block);
  }
}

void init_heap_sampling(AllocCounterBlock* block, size_t index) {
  uint64_t seed = g_seed.load(std::memory_order_relaxed);
  if (seed == 0) {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    seed = static_cast<uint64_t>(now.tv_nsec) ^ (static_cast<uint64_t>(now.tv_sec) << 32);
  }
  // Distinct, never-zero states per block.
  block->rng = (seed ^ ((index + 1) * 0x9e3779b97f4a7c15ull)) | 1;
  // cpprof never samples its own threads.
  block->sample_left =
      block->internal.load(std::memory_order_relaxed) ? INT64_MAX : next_distance(block);
}

bool heap_sample_due_slow(size_t size) {
  if (reinterpret_cast<uintptr_t>(t_alloc_block) != kNoBlock) return false;
  if (current_alloc_counters() == nullptr) return false;
  return heap_sample_due(size);
}

void* sample_allocation(size_t size, size_t alignment) {
  AllocCounterBlock* block = t_alloc_block;
  if (block->internal.load(std::memory_order_relaxed)) {
    block->sample_left = INT64_MAX;
    return nullptr;
  }
  block->sample_left = next_distance(block);
  if (block->sampling || g_rate.load(std::memory_order_relaxed) <= 0) return nullptr;
  block->sampling = true;
  if (!block->stack_known) find_stack(block);
  // Walk from this frame's caller (the hook), as the allocation trap does.
  const auto* frame = static_cast<const uintptr_t*>(__builtin_frame_address(0));
  MachineState state;
  state.pc = reinterpret_cast<uintptr_t>(__builtin_return_address(0));
  state.sp = reinterpret_cast<uintptr_t>(frame) + 2 * sizeof(uintptr_t);
  state.fp = frame[0];
  constexpr size_t kMaxFrames = 64;
  uint64_t frames[kMaxFrames];
  const size_t depth =
      walk_stack(state, block->stack_lo, block->stack_hi, frames, kMaxFrames).depth;
  // cpprof's frames are not the program's: the hooks on top, and the
  // pthread_create trampoline near the bottom of every thread.
  size_t kept = 0;
  for (size_t i = 0; i < depth; ++i) {
    if (kept == 0 && in_alloc_hooks(frames[i])) continue;
    if (in_thread_start_trampoline(frames[i])) continue;
    frames[kept++] = frames[i];
  }
  const uint32_t bucket = heap_bucket_for(frames, kept, size);
  void* ptr = sampled_alloc(size, alignment, bucket);
  if (ptr != nullptr) {
    heap_bucket_alloc(bucket, size);
    count_alloc(size);
    g_taken.fetch_add(1, std::memory_order_relaxed);
  } else {
    g_dropped.fetch_add(1, std::memory_order_relaxed);
  }
  block->sampling = false;
  return ptr;
}

void free_sampled(void* ptr) {
  uint32_t bucket = 0;
  uint64_t requested = 0;
  sampled_free(ptr, &bucket, &requested);
  heap_bucket_free(bucket, requested);
  count_free();
}

uint64_t heap_samples_taken() { return g_taken.load(std::memory_order_relaxed); }
uint64_t heap_samples_dropped() { return g_dropped.load(std::memory_order_relaxed); }

}  // namespace cpprof::capture
