// The CPU-profiling signal handler. Everything it calls is async-signal-safe
// and allocation-free: it reads the interrupted registers, walks the frame
// pointers inside the thread's stack and pushes one RawSample into the ring.
#pragma once

#include <signal.h>

#include "capture/sample_ring.h"

namespace cpprof::capture {

// The signal CPU timers send, unless the program handles it itself.
inline constexpr int kCpuSignal = SIGPROF;

// Installs the handler (once; later calls only change the ring) and sends
// samples to `ring`; returns the signal it handles, or 0 (with the reason
// in `refusal`). That is SIGPROF, unless the program already has its own
// SIGPROF handler (its own profiler, ITIMER_PROF timing...): then a free
// real-time signal (default disposition, from SIGRTMAX-1 down), so the
// program's handler keeps working. The handler stays installed for the
// life of the process: removing it while a timer signal is still pending
// would let that signal's default action kill the host.
int install_cpu_signal_handler(SampleRing* ring, const char** refusal);

// Installs the handler as above without touching the ring (for thread
// captures, which need the handler but not CPU sampling). Same result. If
// the program has replaced the handler since (cpu_signal_taken), installs
// it for another free signal, which cpu_signal() then names.
int ensure_cpu_signal_handler(const char** refusal);

// Whether the program has replaced cpprof's handler for `signo` (a signal
// an install returned) since it was installed: with a handler of its own
// (say it starts an ITIMER_PROF profiler mid-run), SIG_IGN or SIG_DFL.
// cpprof then gives `signo` up for good: later installs pick another free
// signal and never take it back, so the program's handler is never
// overwritten. One sigaction() call. Async-signal-safe.
bool cpu_signal_taken(int signo);

// The signal the handler is installed for; kCpuSignal before any install.
// Async-signal-safe.
int cpu_signal();

// While disabled, the handler returns at once (late signals after a window).
void set_cpu_sampling_enabled(bool enabled);

// Signals that arrived while enabled on threads cpprof does not sample
// (its own), and signals seen in total; for the index page's own costs.
uint64_t cpu_signals_seen();

}  // namespace cpprof::capture
