// A test program that burns CPU in three functions, 60% / 30% / 10% of each
// worker thread's CPU time, measured with the thread's CPU clock so that
// the split holds however the threads are scheduled.
//
//   cpu_burner [--threads N]
//
// Built twice: linked with cpprof (CPPROF_LINKED: serves on a free port and
// prints "port N") and plain, for LD_PRELOAD and `cpprof run`. Prints
// "ready" once the workers run; exits when stdin closes.
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#ifdef CPPROF_LINKED
#include "cpprof/server.h"
#endif

namespace {

std::atomic<bool> g_stop{false};
std::atomic<uint64_t> g_sink{0};

int64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

// Spins until this thread has used `ns` more CPU time. The clock is read
// every few thousand iterations, so nearly all samples land in the caller's
// own loop below.
[[gnu::always_inline]] inline void spin_for(int64_t ns, uint64_t seed) {
  int64_t end = thread_cpu_ns() + ns;
  uint64_t x = seed;
  do {
    for (int i = 0; i < 20000; ++i) x = x * 6364136223846793005ull + 1442695040888963407ull;
  } while (thread_cpu_ns() < end);
  g_sink.fetch_add(x, std::memory_order_relaxed);
}

[[gnu::noinline]] void burn_sixty(int64_t unit_ns) { spin_for(6 * unit_ns, 1); }
[[gnu::noinline]] void burn_thirty(int64_t unit_ns) { spin_for(3 * unit_ns, 2); }
[[gnu::noinline]] void burn_ten(int64_t unit_ns) { spin_for(unit_ns, 3); }

void worker() {
  constexpr int64_t kUnit = 2000000;  // 2 ms: one round is 20 ms of CPU
  while (!g_stop.load(std::memory_order_relaxed)) {
    burn_sixty(kUnit);
    burn_thirty(kUnit);
    burn_ten(kUnit);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) threads = std::atoi(argv[++i]);
  }
#ifdef CPPROF_LINKED
  cpprof::Server server({.address = "127.0.0.1:0", .log = "off"});
  if (!server.ok()) {
    std::fprintf(stderr, "cpu_burner: %s\n", server.error().c_str());
    return 1;
  }
  std::printf("port %u\n", server.port());
#endif
  std::vector<std::thread> workers;
  for (int i = 0; i < threads; ++i) workers.emplace_back(worker);
  std::printf("ready\n");
  std::fflush(stdout);
  char buffer[64];
  while (read(STDIN_FILENO, buffer, sizeof(buffer)) > 0) {
  }
  g_stop = true;
  for (std::thread& t : workers) t.join();
  return 0;
}
