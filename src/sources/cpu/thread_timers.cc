#include "sources/cpu/thread_timers.h"

#include <sched.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <atomic>

namespace cpprof::sources {
namespace {

std::atomic<int64_t> g_armed{0};      // POSIX timers
std::atomic<int64_t> g_perf_open{0};  // perf event descriptors
// The PerfFdRange, base << 32 | limit, in one word so that it never tears.
std::atomic<uint64_t> g_perf_range{0};

// The kernel's clock id for a thread's CPU time, as glibc's
// pthread_getcpuclockid forms it: ~tid << 3 | CPUCLOCK_PERTHREAD | CPUCLOCK_SCHED.
clockid_t thread_cpu_clock(int tid) {
  return static_cast<clockid_t>((~static_cast<unsigned>(tid) << 3) | 4u | 2u);
}

PerfFdRange perf_range() {
  uint64_t packed = g_perf_range.load(std::memory_order_relaxed);
  return {static_cast<int>(packed >> 32), static_cast<int>(packed & 0xffffffffu)};
}

// A perf event for `tid` within the range and its cap; -1 if none.
int open_capped_perf_event(int tid, int signo, int64_t period_ns) {
  PerfFdRange range = perf_range();
  if (g_perf_open.fetch_add(1, std::memory_order_relaxed) >= range.size()) {
    g_perf_open.fetch_sub(1, std::memory_order_relaxed);
    return -1;
  }
  int fd = open_perf_event(tid, signo, period_ns, range);
  if (fd < 0) {
    g_perf_open.fetch_sub(1, std::memory_order_relaxed);
    return -1;
  }
  return fd;
}

bool create_cpu_timer(int tid, int signo, int64_t period_ns, timer_t* out) {
  sigevent event{};
  event.sigev_notify = SIGEV_THREAD_ID;
  event.sigev_signo = signo;
  event._sigev_un._tid = tid;
  timer_t timer{};
  if (timer_create(thread_cpu_clock(tid), &event, &timer) != 0) return false;
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
    return false;
  }
  *out = timer;
  return true;
}

}  // namespace

bool arm_thread_timer(capture::ThreadSlot* slot, int signo, int64_t period_ns, bool perf) {
  if (slot->internal.load(std::memory_order_acquire)) return true;
  int expected = capture::kTimerIdle;
  if (!slot->timer_state.compare_exchange_strong(expected, capture::kTimerBusy,
                                                 std::memory_order_acq_rel)) {
    return expected != capture::kTimerDead;  // armed already, or being handled
  }
  int tid = slot->tid.load(std::memory_order_acquire);
  int next = capture::kTimerIdle;
  if (tid != 0 && perf) {
    int fd = open_capped_perf_event(tid, signo, period_ns);
    if (fd >= 0) {
      slot->timer.store(static_cast<uintptr_t>(fd), std::memory_order_relaxed);
      next = capture::kPerfArmed;
    }
  }
  timer_t timer{};
  if (tid != 0 && next == capture::kTimerIdle && create_cpu_timer(tid, signo, period_ns, &timer)) {
    slot->timer.store(reinterpret_cast<uintptr_t>(timer), std::memory_order_relaxed);
    g_armed.fetch_add(1, std::memory_order_relaxed);
    next = capture::kTimerArmed;
  }
  slot->timer_state.store(next, std::memory_order_release);
  return next != capture::kTimerIdle;
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
    uintptr_t timer = slot->timer.load(std::memory_order_relaxed);
    if (state == capture::kTimerArmed) {
      timer_delete(reinterpret_cast<timer_t>(timer));
      g_armed.fetch_sub(1, std::memory_order_relaxed);
    } else if (state == capture::kPerfArmed) {
      close_perf_event(static_cast<int>(timer));
      g_perf_open.fetch_sub(1, std::memory_order_relaxed);
    }
    slot->timer_state.store(final ? capture::kTimerDead : capture::kTimerIdle,
                            std::memory_order_release);
    return;
  }
}

void set_perf_fd_range(PerfFdRange range) {
  uint64_t packed = static_cast<uint64_t>(static_cast<uint32_t>(range.base)) << 32 |
                    static_cast<uint32_t>(range.limit);
  g_perf_range.store(packed, std::memory_order_relaxed);
}

void forget_thread_timers_after_fork() {
  for (capture::ThreadSlot& slot : capture::thread_table()) {
    if (slot.tid.load(std::memory_order_relaxed) == 0) continue;
    int state = slot.timer_state.load(std::memory_order_relaxed);
    if (state == capture::kTimerDead) continue;
    // Only close: PERF_EVENT_IOC_DISABLE would act on the event the
    // descriptor shares with the parent and stop the parent's sampling.
    if (state == capture::kPerfArmed) close(static_cast<int>(slot.timer.load()));
    slot.timer.store(0, std::memory_order_relaxed);
    slot.timer_state.store(capture::kTimerIdle, std::memory_order_release);
  }
  g_armed.store(0, std::memory_order_relaxed);
  g_perf_open.store(0, std::memory_order_relaxed);
}

int64_t armed_thread_timers() { return g_armed.load(std::memory_order_relaxed); }

int64_t open_perf_events() { return g_perf_open.load(std::memory_order_relaxed); }

}  // namespace cpprof::sources
