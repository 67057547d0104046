#include "capture/thread_table.h"

#include <time.h>

#include "capture/signal_safe.h"

namespace cpprof::capture {
namespace {

constinit ThreadTable g_table;

struct CachedSlot {
  ThreadSlot* slot;
  uint64_t generation;
};
// initial-exec: never allocates on first touch, even in a late dlopen'ed copy.
[[gnu::tls_model("initial-exec")]] constinit thread_local CachedSlot t_cached{nullptr, 0};

uint64_t realtime_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

ThreadTable& thread_table() { return g_table; }

uint64_t ThreadTable::memory_bytes() const {
  return pages_spanned(slots_, high_water_.load(std::memory_order_acquire) * sizeof(ThreadSlot));
}

namespace {

bool try_claim(ThreadSlot& slot, int tid) {
  int expected = 0;
  if (slot.tid.load(std::memory_order_relaxed) != 0) return false;
  return slot.tid.compare_exchange_strong(expected, tid, std::memory_order_acq_rel);
}

}  // namespace

ThreadSlot* ThreadTable::register_thread(int tid, bool* created) {
  if (ThreadSlot* existing = find(tid)) {
    if (created != nullptr) *created = false;
    return existing;
  }
  if (created != nullptr) *created = true;
  return claim(tid, /*internal=*/false);
}

ThreadSlot* ThreadTable::claim(int tid, bool internal) {
  ThreadSlot* claimed = nullptr;
  while (claimed == nullptr) {
    size_t used = high_water_.load(std::memory_order_acquire);
    for (size_t i = 0; i < used && claimed == nullptr; ++i) {
      if (try_claim(slots_[i], tid)) claimed = &slots_[i];
    }
    if (claimed != nullptr) break;
    if (used >= kCapacity) {
      overflows_.fetch_add(1, std::memory_order_relaxed);
      return nullptr;
    }
    // Grow by one slot; a racing registrant may take it first, then retry.
    high_water_.compare_exchange_strong(used, used + 1, std::memory_order_acq_rel);
  }
  ThreadSlot& slot = *claimed;
  slot.generation.fetch_add(1, std::memory_order_relaxed);
  slot.internal.store(internal, std::memory_order_relaxed);
  slot.hooked.store(false, std::memory_order_relaxed);
  slot.pthread.store(0, std::memory_order_relaxed);
  slot.stack_lo.store(0, std::memory_order_relaxed);
  slot.stack_hi.store(0, std::memory_order_relaxed);
  slot.timer.store(0, std::memory_order_relaxed);
  slot.start_time_ns.store(realtime_ns(), std::memory_order_relaxed);
  slot.timer_state.store(kTimerIdle, std::memory_order_release);
  registered_.fetch_add(1, std::memory_order_relaxed);
  return claimed;
}

ThreadSlot* ThreadTable::find(int tid) {
  size_t used = high_water_.load(std::memory_order_acquire);
  for (size_t i = 0; i < used; ++i) {
    if (slots_[i].tid.load(std::memory_order_acquire) == tid) return &slots_[i];
  }
  return nullptr;
}

void ThreadTable::release(ThreadSlot* slot) {
  slot->timer_state.store(kTimerDead, std::memory_order_relaxed);
  slot->generation.fetch_add(1, std::memory_order_relaxed);
  slot->tid.store(0, std::memory_order_release);
}

ThreadSlot* current_thread_slot() {
  CachedSlot cached = t_cached;
  if (cached.slot != nullptr &&
      cached.slot->generation.load(std::memory_order_relaxed) == cached.generation) {
    return cached.slot;
  }
  ThreadSlot* slot = g_table.find(current_tid());
  if (slot != nullptr) set_current_thread_slot(slot);
  return slot;
}

void set_current_thread_slot(ThreadSlot* slot) {
  t_cached = {slot, slot ? slot->generation.load(std::memory_order_relaxed) : 0};
}

}  // namespace cpprof::capture
