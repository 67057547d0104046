// Per-thread perf_event `cpu-clock` events as a CPU sampling trigger.
//
// A software cpu-clock event (PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK)
// opened for one thread runs an hrtimer while that thread is on a CPU and
// overflows every `period_ns` of its CPU time. With O_ASYNC, F_SETSIG and
// an F_OWNER_TID owner, every overflow sends the sampling signal to that
// thread (si_code POLL_IN); no mmap ring is needed. Unlike CPU-time timers,
// which the kernel checks once per tick (250 Hz here), the hrtimer fires at
// the asked rate: 1000 Hz gives 1000 signals per CPU-second.
//
// Each event is an open file descriptor in the host's table. perf_event_open
// returns the lowest free number, which would push the host's own later
// descriptors up (a host using select() breaks above 1023), so each event fd
// is moved at once into a range high under the RLIMIT_NOFILE soft limit
// (perf_fd_range) and the low number is closed again.
//
// open_perf_event and close_perf_event make system calls only (no
// allocation, no locks): they run on exiting threads and in the
// thread-start hook. perf_events_usable allocates.
#pragma once

#include <cstdint>
#include <string>

namespace cpprof::sources {

// Descriptors [base, limit) that event fds may occupy; empty when the soft
// limit is too small to place them high.
struct PerfFdRange {
  int base = 0;
  int limit = 0;
  int size() const { return limit - base; }
};

// Where event fds go for a soft RLIMIT_NOFILE of `soft_limit`:
// - at most 256 of them, and at most a quarter of the limit;
// - ending 16 below the soft limit (programs that place descriptors at the
//   top of their range, counting down from the limit, keep it; a host that
//   runs out still has the last few), and below 16384: the kernel's fd
//   table grows to cover the highest descriptor and never shrinks (8 bytes
//   a slot), so under a soft limit of 1048576 the range would otherwise
//   cost 8 MiB of kernel memory;
// - never below 256, where the host's own descriptors live. A soft limit
//   under 272 leaves no room: such processes are sampled with timers.
// Examples: 1024 -> [752, 1008); 20000 -> [16128, 16384); 300 -> [256, 284).
PerfFdRange perf_fd_range(uint64_t soft_limit);

// perf_fd_range for the process's soft limit now.
PerfFdRange current_perf_fd_range();

// True if this process may open cpu-clock events (tried on the calling
// thread); otherwise false with the reason in `why`, e.g. under
// kernel.perf_event_paranoid=3 without CAP_PERFMON (EACCES), or a seccomp
// filter (EPERM, ENOSYS), or a kernel without perf events (ENOENT, ENOSYS).
bool perf_events_usable(std::string* why);

// Opens a cpu-clock event on thread `tid` that sends `signo` to that thread
// every `period_ns` of its CPU time, with its descriptor placed in `range`
// (close-on-exec). Returns the descriptor, or -errno: -EMFILE when `range`
// is full. Async-signal-safe.
int open_perf_event(int tid, int signo, int64_t period_ns, PerfFdRange range);

// Stops the event, then closes `fd`. Stopping comes first: a process forked
// without our atfork handler may hold a copy of the descriptor, and the
// event lives, and signals our thread, until the last copy is closed.
// Async-signal-safe.
void close_perf_event(int fd);

// Whether events are opened with exclude_kernel (see open_perf_event in
// perf_events.cc): then CPU time spent in the kernel is not sampled.
bool perf_events_exclude_kernel();

}  // namespace cpprof::sources
