// Live stack capture of other threads, for the goroutine profile.
//
// The requester (a dump, off any hot path) fills one cell per thread and
// sends that thread the CPU signal with a queued value naming the cell;
// the handler sees the value, walks its own stack into the cell and marks
// it answered. Only threads that are running are asked this way: a signal
// that lands in a blocking system call would make it fail with EINTR, so
// blocked threads are read from /proc instead (sources/threads).
//
// Cells live in a fixed array. Their state word carries the request's
// generation, so a signal that arrives after its request timed out (or a
// second one for the same cell) finds a different generation and does
// nothing. The handler side is async-signal-safe and allocation-free.
#pragma once

#include <signal.h>

#include <cstddef>
#include <cstdint>

namespace cpprof::capture {

inline constexpr size_t kCaptureFrames = 64;

// One thread to capture, and what came back.
struct CaptureRequest {
  int tid = 0;
  uintptr_t stack_lo = 0;  // the thread's stack bounds (0, 0: unknown, the walk gives the PC)
  uintptr_t stack_hi = 0;
  // Out: the interrupted PC, then return addresses, outwards.
  uint64_t frames[kCaptureFrames] = {};
  uint32_t depth = 0;
  bool answered = false;
};

// Asks every thread in `requests` for its stack and waits until all have
// answered or `timeout_ns` has passed; unanswered ones keep answered ==
// false. Requests beyond the cell array's size are not sent. Returns false
// (nothing sent, `refusal` set) when the signal handler is not available.
// One caller at a time; not for signal handlers.
bool capture_live_stacks(CaptureRequest* requests, size_t count, int64_t timeout_ns,
                         const char** refusal);

// For the CPU signal handler, first thing: if this signal is a capture
// request, answers it and returns true; otherwise returns false at once.
bool answer_capture_request(const siginfo_t* info, const void* ucontext);

}  // namespace cpprof::capture
