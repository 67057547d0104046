// ThreadTable: every thread of the process that cpprof knows of, in a fixed
// array reserved up front (no allocation, no lock).
//
// Slots are claimed with a compare-and-swap on `tid` and released when the
// thread exits, so a signal handler can look its own thread up while
// other threads come and go. Threads reach the table three ways: the
// interposed pthread_create (thread_hooks.cc) registers every new thread
// from inside it; scan_existing_threads() adds threads that predate the
// library (from /proc/self/task); cpprof's own threads are marked internal
// and are never sampled.
//
// The per-slot timer state is a small lock-free protocol shared by the CPU
// sampler (which arms and disarms timers from its control thread) and the
// exiting thread (which must delete its timer before its slot is reused):
// whoever moves the state from kIdle/kArmed to kBusy owns the timer until
// it stores the next state. An exiting thread waits for kBusy to clear; the
// sampler never waits for a thread, so the two cannot deadlock. The timer
// is either a POSIX timer or a perf event descriptor; the armed state says
// which, so one atomic load tells the owner how to delete it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace cpprof::capture {

// States of ThreadSlot::timer_state.
enum TimerState : int {
  kTimerIdle = 0,   // no timer
  kTimerBusy = 1,   // someone is creating or deleting the timer
  kTimerArmed = 2,  // `timer` holds a live timer
  kTimerDead = 3,   // the thread is exiting: never arm again
  kPerfArmed = 4,   // `timer` holds the descriptor of a perf event
};

struct ThreadSlot {
  std::atomic<int> tid{0};              // 0: free slot
  std::atomic<uint64_t> generation{0};  // bumped on every claim, for readers that cache slots
  std::atomic<bool> internal{false};    // one of cpprof's own threads
  std::atomic<bool> hooked{false};      // started through our pthread_create: releases itself
  std::atomic<uint64_t> pthread{0};  // pthread_t, 0 if unknown (threads not made by pthread_create)
  std::atomic<uintptr_t> stack_lo{0};  // stack bounds for the unwinder; 0 if unknown
  std::atomic<uintptr_t> stack_hi{0};
  // Starts "dead": a slot becomes armable only when register_thread has
  // finished filling it in and stores kTimerIdle.
  std::atomic<int> timer_state{kTimerDead};
  std::atomic<uintptr_t> timer{0};  // timer_t when kTimerArmed, perf event fd when kPerfArmed
  std::atomic<uint64_t> start_time_ns{0};  // CLOCK_REALTIME when registered
};

static_assert(std::atomic<int>::is_always_lock_free);
static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(std::atomic<uintptr_t>::is_always_lock_free);

class ThreadTable {
 public:
  static constexpr size_t kCapacity = 4096;

  // Claims a fresh slot for `tid`, marked internal or not, and returns it;
  // nullptr if the table is full (counted in overflows()). A thread that
  // registers itself always takes a fresh slot: any older slot with its tid
  // is stale (a reused tid, or a scan's entry) and the scan retires it.
  // Async-signal-safe.
  ThreadSlot* claim(int tid, bool internal);

  // The slot of `tid` if there is one, else a fresh one; `created` says
  // which. For the /proc scan. Async-signal-safe.
  ThreadSlot* register_thread(int tid, bool* created = nullptr);

  // Finds the slot of `tid`, or nullptr. Async-signal-safe.
  ThreadSlot* find(int tid);

  // Frees `slot` (the thread has exited). Its timer must be gone.
  void release(ThreadSlot* slot);

  // The slot array, for iteration: a slot is in use when tid != 0.
  ThreadSlot* begin() { return slots_; }
  ThreadSlot* end() { return slots_ + high_water_.load(std::memory_order_acquire); }

  // Threads that could not be registered because the table was full.
  uint64_t overflows() const { return overflows_.load(std::memory_order_relaxed); }
  // Threads registered since start (including exited ones).
  uint64_t registered_total() const { return registered_.load(std::memory_order_relaxed); }
  // Memory the slots hold: their pages written so far, up to the high-water
  // mark (the array is reserved up front). Async-signal-safe.
  uint64_t memory_bytes() const;

 private:
  ThreadSlot slots_[kCapacity];
  std::atomic<size_t> high_water_{0};  // slots at or above this were never used
  std::atomic<uint64_t> overflows_{0};
  std::atomic<uint64_t> registered_{0};
};

// The process's table. A plain global (zero-initialised, constinit): it must
// exist before any constructor runs, since threads may start at any time.
ThreadTable& thread_table();

// The calling thread's slot, cached in initial-exec TLS; looks the thread up
// (one gettid system call) the first time. nullptr if not registered.
// Async-signal-safe.
ThreadSlot* current_thread_slot();

// Remembers `slot` as the calling thread's (used right after registering).
void set_current_thread_slot(ThreadSlot* slot);

}  // namespace cpprof::capture
