// Small primitives that are safe inside signal handlers and malloc hooks.
//
// Everything in src/capture/ may run in such contexts: no allocation, no
// locks, no stdio, no exceptions, initial-exec TLS only.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>

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

// Bytes of the 4 KiB pages that [begin, begin + bytes) lies on: what the
// used part of a structure reserved up front holds in memory (pages never
// written take none). For cpprof's own costs on the index page.
inline uint64_t pages_spanned(const void* begin, size_t bytes) {
  if (bytes == 0) return 0;
  constexpr uintptr_t kPage = 4096;
  const auto lo = reinterpret_cast<uintptr_t>(begin) & ~(kPage - 1);
  const auto hi = (reinterpret_cast<uintptr_t>(begin) + bytes + kPage - 1) & ~(kPage - 1);
  return hi - lo;
}

}  // namespace cpprof::capture
