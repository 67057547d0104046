// CPU-time helpers shared by the CPU-sampling tests: this thread's CPU
// clock, burning a given amount of it, and the process's POSIX timers.
#pragma once

#include <cstdint>

namespace cpprof::test {

// CLOCK_THREAD_CPUTIME_ID in nanoseconds.
int64_t thread_cpu_ns();

// Burns at least `ns` of this thread's CPU time in a plain loop (not a
// system call, so that samples land in user code); returns what it used.
int64_t spin_cpu_ns(int64_t ns);

// POSIX timers this process holds (/proc/self/timers lists one "ID:" each);
// -1 if that file cannot be read.
int live_timers();

}  // namespace cpprof::test
