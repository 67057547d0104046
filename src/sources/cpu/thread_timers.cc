#include "sources/cpu/thread_timers.h"

#include <sched.h>
#include <signal.h>
#include <time.h>

#include <atomic>

namespace cpprof::sources {
namespace {

std::atomic<int64_t> g_armed{0};

// The kernel's clock id for a thread's CPU time, as glibc's
// pthread_getcpuclockid forms it: ~tid << 3 | CPUCLOCK_PERTHREAD | CPUCLOCK_SCHED.
clockid_t thread_cpu_clock(int tid) {
  return static_cast<clockid_t>((~static_cast<unsigned>(tid) << 3) | 4u | 2u);
}

}  // namespace

bool arm_thread_timer(capture::ThreadSlot* slot, int signo, int64_t period_ns) {
  if (slot->internal.load(std::memory_order_acquire)) return true;
  int expected = capture::kTimerIdle;
  if (!slot->timer_state.compare_exchange_strong(expected, capture::kTimerBusy,
                                                 std::memory_order_acq_rel)) {
    return expected != capture::kTimerDead;  // armed already, or being handled
  }
  int tid = slot->tid.load(std::memory_order_acquire);
  sigevent event{};
  event.sigev_notify = SIGEV_THREAD_ID;
  event.sigev_signo = signo;
  event._sigev_un._tid = tid;
  timer_t timer{};
  bool ok = tid != 0 && timer_create(thread_cpu_clock(tid), &event, &timer) == 0;
  if (ok) {
    itimerspec spec{};
    spec.it_interval.tv_sec = period_ns / 1000000000;
    spec.it_interval.tv_nsec = period_ns % 1000000000;
    // Start each thread at a different phase of the period so threads that
    // started together do not all fire on the same tick.
    int64_t first = period_ns / 2 + (tid % 97) * (period_ns / 194);
    spec.it_value.tv_sec = first / 1000000000;
    spec.it_value.tv_nsec = first % 1000000000;
    if (timer_settime(timer, 0, &spec, nullptr) != 0) {
      timer_delete(timer);
      ok = false;
    }
  }
  if (ok) {
    slot->timer.store(reinterpret_cast<uintptr_t>(timer), std::memory_order_relaxed);
    g_armed.fetch_add(1, std::memory_order_relaxed);
  }
  slot->timer_state.store(ok ? capture::kTimerArmed : capture::kTimerIdle,
                          std::memory_order_release);
  return ok;
}

void disarm_thread_timer(capture::ThreadSlot* slot, bool final) {
  for (;;) {
    int state = slot->timer_state.load(std::memory_order_acquire);
    if (state == capture::kTimerDead) return;
    if (state == capture::kTimerBusy) {
      sched_yield();  // an arm or disarm is finishing on another thread
      continue;
    }
    if (!slot->timer_state.compare_exchange_weak(state, capture::kTimerBusy,
                                                 std::memory_order_acq_rel)) {
      continue;
    }
    if (state == capture::kTimerArmed) {
      timer_delete(reinterpret_cast<timer_t>(slot->timer.load(std::memory_order_relaxed)));
      g_armed.fetch_sub(1, std::memory_order_relaxed);
    }
    slot->timer_state.store(final ? capture::kTimerDead : capture::kTimerIdle,
                            std::memory_order_release);
    return;
  }
}

int64_t armed_thread_timers() { return g_armed.load(std::memory_order_relaxed); }

}  // namespace cpprof::sources
