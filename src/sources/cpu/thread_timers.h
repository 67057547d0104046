// Per-thread sampling triggers: on each thread, either a POSIX timer on the
// thread's CPU-time clock delivering the sampling signal to that thread only
// (SIGEV_THREAD_ID), as Go does since 1.18, or a perf_event cpu-clock event
// (perf_events.h) whose overflows send the same signal to the same thread.
// A thread that burns CPU gets samples in proportion; an idle thread costs
// nothing. Timers fire at most once per kernel tick (each signal then
// carries overruns); perf events fire at the asked rate.
//
// Both are created from any thread for any thread (a thread's CPU clock id
// and its perf event are formed from its tid), following the ThreadSlot
// timer-state protocol of capture/thread_table.h: a slot in kTimerArmed
// holds a timer_t, one in kPerfArmed a perf event descriptor. Perf events
// are capped by the size of the descriptor range set with
// set_perf_fd_range; threads beyond it get timers (each sample is weighted
// by the periods it stands for, so mixing the two keeps totals right).
//
// Not for signal handlers, except where a function says so.
#pragma once

#include <cstdint>

#include "capture/thread_table.h"
#include "sources/cpu/perf_events.h"

namespace cpprof::sources {

// Arms a trigger firing every `period_ns` of the thread's CPU time, sending
// `signo`. With `perf`, a perf event is tried first and a CPU-time timer
// only if that fails (range full, refused). No-op for internal or exiting
// threads or if already armed. Returns false if the kernel refused both
// (the thread may just have exited). Makes system calls only: fit for the
// thread-start hook.
bool arm_thread_timer(capture::ThreadSlot* slot, int signo, int64_t period_ns, bool perf = false);

// Deletes the slot's timer or closes its perf event, if it has one. With
// `final`, the slot can never be armed again (its thread is exiting). Safe
// against a concurrent arm: waits only for another disarm/arm in progress,
// which never blocks. Async-signal-safe (timer_delete, ioctl, close): it
// runs on the exiting thread.
void disarm_thread_timer(capture::ThreadSlot* slot, bool final);

// Where perf event descriptors go; its size caps how many are open at once.
// Set when sampling starts (the soft RLIMIT_NOFILE may have changed).
void set_perf_fd_range(PerfFdRange range);

// For a child right after fork(), while only the forking thread runs:
// closes the child's copies of the parent's perf event descriptors without
// stopping the events (they are the parent's, and signal the parent's
// threads), forgets the parent's timer ids (POSIX timers are not
// inherited), and leaves every slot armable. Async-signal-safe.
void forget_thread_timers_after_fork();

// CPU-time timers currently armed, and perf event descriptors currently
// open (for the index page's own costs).
int64_t armed_thread_timers();
int64_t open_perf_events();

}  // namespace cpprof::sources
