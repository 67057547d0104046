// Per-thread CPU-time timers: one POSIX timer per thread on that thread's
// CPU-time clock, delivering the sampling signal to that thread only
// (SIGEV_THREAD_ID), as Go does since 1.18. A thread that burns CPU gets
// samples in proportion; an idle thread costs nothing.
//
// Timers are created from any thread for any thread (the clock id of a
// thread can be formed from its tid), following the ThreadSlot timer-state
// protocol of capture/thread_table.h. Not for signal handlers.
#pragma once

#include <cstdint>

#include "capture/thread_table.h"

namespace cpprof::sources {

// Arms a timer firing every `period_ns` of the thread's CPU time, sending
// `signo`. No-op for internal or exiting threads or if already armed.
// Returns false if the kernel refused (the thread may just have exited).
bool arm_thread_timer(capture::ThreadSlot* slot, int signo, int64_t period_ns);

// Deletes the slot's timer if it has one. With `final`, the slot can never
// be armed again (its thread is exiting). Safe against a concurrent arm:
// waits only for another disarm/arm in progress, which never blocks.
void disarm_thread_timer(capture::ThreadSlot* slot, bool final);

// Timers currently armed (for the index page's own costs).
int64_t armed_thread_timers();

}  // namespace cpprof::sources
