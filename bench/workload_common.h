// What the benchmark workloads share: clocks, resource usage, their
// command-line numbers and the start FIFO. Header-only: the workloads link
// nothing of cpprof's, so the unprofiled run carries no cpprof code.
#pragma once

#include <fcntl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace bench {

inline int64_t timespec_ns(const timespec& ts) { return ts.tv_sec * 1000000000LL + ts.tv_nsec; }
inline int64_t timeval_ns(const timeval& tv) {
  return tv.tv_sec * 1000000000LL + tv.tv_usec * 1000LL;
}

inline int64_t clock_ns(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return timespec_ns(ts);
}

// User and system CPU time of the whole process.
struct Usage {
  int64_t user_ns;
  int64_t sys_ns;
};

inline Usage process_usage() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return {timeval_ns(ru.ru_utime), timeval_ns(ru.ru_stime)};
}

// xorshift64: the workloads' seeded randomness.
inline uint64_t next_random(uint64_t* state) {
  *state ^= *state << 13;
  *state ^= *state >> 7;
  *state ^= *state << 17;
  return *state;
}

// `text` as a number in [lo, hi]; otherwise `usage_error` (which exits).
inline long parse_number(const char* text, long lo, long hi, const char* what,
                         void (*usage_error)(const char* message)) {
  char* end = nullptr;
  long value = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || value < lo || value > hi) {
    usage_error((std::string("bad value for ") + what + ": " + text).c_str());
  }
  return value;
}

// Blocks (using no CPU) until a driver writes to the FIFO at `path`.
inline void wait_for_start(const char* program, const char* path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    std::fprintf(stderr, "%s: open start fifo: %s\n", program, std::strerror(errno));
    std::exit(2);
  }
  char byte = 0;
  ssize_t got;
  do {
    got = read(fd, &byte, 1);
  } while (got < 0 && errno == EINTR);
  close(fd);
}

}  // namespace bench
