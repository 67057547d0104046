#include "support/cpu_time.h"

#include <time.h>

#include <fstream>
#include <string>

namespace cpprof::test {

int64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

[[gnu::noinline]] int64_t spin_cpu_ns(int64_t ns) {
  int64_t start = thread_cpu_ns();
  volatile uint64_t x = 1;
  int64_t used = 0;
  while ((used = thread_cpu_ns() - start) < ns) {
    for (int i = 0; i < 10000; ++i) x = x * 3 + 1;
  }
  return used;
}

int live_timers() {
  std::ifstream in("/proc/self/timers");
  if (!in) return -1;
  int n = 0;
  for (std::string line; std::getline(in, line);) n += line.rfind("ID:", 0) == 0;
  return n;
}

}  // namespace cpprof::test
