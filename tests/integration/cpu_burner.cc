// A test program that burns CPU in three functions, 60% / 30% / 10% of each
// worker thread's CPU time, measured with the thread's CPU clock so that
// the split holds however the threads are scheduled.
//
//   cpu_burner [--threads N] [--hz N (linked build only)] [--block-signals]
//              [--deny-perf] [--inlined]
//
// Built twice: linked with cpprof (CPPROF_LINKED: serves on a free port and
// prints "port N"; takes CPPROF_CPU_MODE from the environment as the
// preloaded library does) and plain, for LD_PRELOAD and `cpprof run`.
// --deny-perf makes perf_event_open fail with EACCES from the start, as
// kernel.perf_event_paranoid=3 would. Prints "ready" once the workers run;
// exits when stdin closes.
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "support/deny_perf.h"

#ifdef CPPROF_LINKED
#include <string>

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

// Spins until this thread has used `ns` more CPU time, less what the last
// call overshot (`carry`), so that each function's total is exact over
// time. Reading a thread's CPU clock is a system call, so it is read only
// every ~100 µs: the samples land in the caller's loop, not in the kernel.
[[gnu::always_inline]] inline void spin_for(int64_t ns, int64_t* carry, uint64_t seed) {
  int64_t start = thread_cpu_ns();
  int64_t target = ns - *carry;
  uint64_t x = seed;
  int64_t elapsed = 0;
  do {
    for (int i = 0; i < 100000; ++i) x = x * 6364136223846793005ull + 1442695040888963407ull;
    elapsed = thread_cpu_ns() - start;
  } while (elapsed < target);
  *carry = elapsed - target;
  g_sink.fetch_add(x, std::memory_order_relaxed);
}

thread_local int64_t t_carry[3];
[[gnu::noinline]] void burn_sixty(int64_t unit_ns) { spin_for(6 * unit_ns, &t_carry[0], 1); }
[[gnu::noinline]] void burn_thirty(int64_t unit_ns) { spin_for(3 * unit_ns, &t_carry[1], 2); }
[[gnu::noinline]] void burn_ten(int64_t unit_ns) { spin_for(unit_ns, &t_carry[2], 3); }

void worker(int index) {
  // A round is 10 units. Its length (13.7 ms for the first thread) is out
  // of step with the sampling periods (10 ms, 1 ms) and the kernel tick
  // (4 ms), so successive samples fall at evenly spread points of the
  // round; a round of 20 ms would alias with 10 ms sampling and always be
  // sampled at the same point.
  const int64_t unit_ns = 1370000 + 160000 * index;
  while (!g_stop.load(std::memory_order_relaxed)) {
    burn_sixty(unit_ns);
    burn_thirty(unit_ns);
    burn_ten(unit_ns);
  }
}

// --inlined: the workers spin in burn_inlined_hot, always inlined into
// burn_inlined_caller. inlined_frames_test finds the two lines that follow
// the "inlined-frames-test:" comments in this file, and expects them in
// the profile.
[[gnu::always_inline]] inline uint64_t burn_inlined_hot(uint64_t x) {
  // inlined-frames-test: the hot line
  for (int i = 0; i < 100000; ++i) x = x * 6364136223846793005ull + 1442695040888963407ull;
  return x;
}

[[gnu::noinline]] void burn_inlined_caller(int64_t ns) {
  const int64_t start = thread_cpu_ns();
  uint64_t x = 7;
  while (thread_cpu_ns() - start < ns) {
    // inlined-frames-test: the call line
    x = burn_inlined_hot(x);
  }
  g_sink.fetch_add(x, std::memory_order_relaxed);
}

void inlined_worker(int /*index*/) {
  while (!g_stop.load(std::memory_order_relaxed)) burn_inlined_caller(10000000);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  int hz = 100;
  bool block_signals = false;  // start workers with every signal blocked, as liblzma does
  bool inlined = false;        // burn in inlined code instead (see burn_inlined_hot)
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) threads = std::atoi(argv[++i]);
    if (std::strcmp(argv[i], "--hz") == 0 && i + 1 < argc) hz = std::atoi(argv[++i]);
    if (std::strcmp(argv[i], "--block-signals") == 0) block_signals = true;
    if (std::strcmp(argv[i], "--inlined") == 0) inlined = true;
    if (std::strcmp(argv[i], "--deny-perf") == 0 && !cpprof::test::deny_perf_event_open(EACCES)) {
      std::perror("cpu_burner: seccomp");
      return 1;
    }
  }
#ifdef CPPROF_LINKED
  cpprof::Options options{.address = "127.0.0.1:0", .cpu_hz = hz, .log = "off"};
  std::string env_error;
  options.cpu_mode = cpprof::options_from_environment(options, &env_error).cpu_mode;
  if (!env_error.empty()) {
    std::fprintf(stderr, "cpu_burner: %s\n", env_error.c_str());
    return 1;
  }
  cpprof::Server server(options);
  if (!server.ok()) {
    std::fprintf(stderr, "cpu_burner: %s\n", server.error().c_str());
    return 1;
  }
  std::printf("port %u\n", server.port());
#else
  (void)hz;  // the preloaded library takes CPPROF_CPU_HZ instead
#endif
  sigset_t all;
  sigset_t previous;
  sigfillset(&all);
  if (block_signals) pthread_sigmask(SIG_SETMASK, &all, &previous);
  std::vector<std::thread> workers;
  for (int i = 0; i < threads; ++i) workers.emplace_back(inlined ? inlined_worker : worker, i);
  if (block_signals) pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  std::printf("ready\n");
  std::fflush(stdout);
  char buffer[64];
  while (read(STDIN_FILENO, buffer, sizeof(buffer)) > 0) {
  }
  g_stop = true;
  for (std::thread& t : workers) t.join();
  return 0;
}
