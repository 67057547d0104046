// A shared library for the unwinding tests, loaded with dlopen() after the
// profiler started. Built twice: as the long-lived plugin (plugin_hot_loop)
// and as the library another thread loads and unloads in a loop
// (churn_hot_loop).
#include <time.h>

#include <cstdint>

#ifndef CPPROF_PLUGIN_FUNCTION
#error "define CPPROF_PLUGIN_FUNCTION"
#endif

namespace {

int64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

}  // namespace

// Spins for `ns` of this thread's CPU time; returns a value so the loop stays.
extern "C" __attribute__((visibility("default"), noinline)) uint64_t CPPROF_PLUGIN_FUNCTION(
    int64_t ns) {
  int64_t start = thread_cpu_ns();
  uint64_t x = static_cast<uint64_t>(start);
  do {
    for (int i = 0; i < 20000; ++i) x = x * 6364136223846793005ull + 1442695040888963407ull;
  } while (thread_cpu_ns() - start < ns);
  return x;
}
