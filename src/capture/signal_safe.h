// Small primitives that are safe inside signal handlers and malloc hooks.
//
// Everything in src/capture/ may run in such contexts: no allocation, no
// locks, no stdio, no exceptions, initial-exec TLS only.
#pragma once

#include <cerrno>

// For functions that read raw stack memory on purpose (frame records, words
// at SP): AddressSanitizer's stack redzones are no error for them.
#define CPPROF_READS_RAW_STACK __attribute__((no_sanitize_address))

namespace cpprof::capture {

// Saves errno on entry and restores it on exit, so a handler that makes a
// system call never changes what the interrupted code sees.
class ErrnoGuard {
 public:
  ErrnoGuard() : saved_(errno) {}
  ~ErrnoGuard() { errno = saved_; }
  ErrnoGuard(const ErrnoGuard&) = delete;
  ErrnoGuard& operator=(const ErrnoGuard&) = delete;

 private:
  int saved_;
};

// The kernel thread id of the caller, by system call (glibc's gettid() is
// fine too, but this states that no cache or lock is involved).
int current_tid();

}  // namespace cpprof::capture
