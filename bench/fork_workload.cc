// fork() cost in a multi-threaded program: what a profiler's fork handlers
// (locks held across fork, the child's clean-up) add to each fork.
//
//   fork_workload [FORKS] [THREADS]
//
// THREADS (default 2) threads allocate and free in a loop; the main thread
// forks FORKS times (default 2000); each child exits at once with _exit(0)
// and the parent waits for it. Prints, in microseconds, the median, mean and
// 99th percentile of fork() as the parent sees it (prepare and parent
// handlers included) and of the whole round trip (fork, the child's
// handlers and exit, waitpid).
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "workload_common.h"

namespace {

std::atomic<bool> g_stop{false};

void allocate_until_stopped(uint64_t seed) {
  std::vector<void*> held(256, nullptr);
  uint64_t state = seed;
  while (!g_stop.load(std::memory_order_relaxed)) {
    const uint64_t r = bench::next_random(&state);
    void*& slot = held[r % held.size()];
    std::free(slot);
    slot = std::malloc(16 + (r >> 20) % 4096);
  }
  for (void* p : held) std::free(p);
}

void usage_error(const char* message) {
  std::fprintf(stderr, "fork_workload: %s\nusage: fork_workload [FORKS] [THREADS]\n", message);
  std::exit(2);
}

struct Summary {
  double median_us, mean_us, p99_us;
};

Summary summarize(std::vector<int64_t> ns) {
  std::sort(ns.begin(), ns.end());
  double sum = 0;
  for (int64_t v : ns) sum += static_cast<double>(v);
  return {ns[ns.size() / 2] / 1e3, sum / static_cast<double>(ns.size()) / 1e3,
          ns[ns.size() * 99 / 100] / 1e3};
}

}  // namespace

int main(int argc, char** argv) {
  const long forks =
      argc > 1 ? bench::parse_number(argv[1], 10, 1000000, "FORKS", usage_error) : 2000;
  const long threads = argc > 2 ? bench::parse_number(argv[2], 0, 64, "THREADS", usage_error) : 2;
  std::vector<std::thread> workers;
  for (long i = 0; i < threads; ++i) workers.emplace_back(allocate_until_stopped, 0x9e3779b9u + i);
  std::vector<int64_t> in_parent, round_trip;
  in_parent.reserve(forks);
  round_trip.reserve(forks);
  for (long i = 0; i < forks; ++i) {
    const int64_t start = bench::clock_ns(CLOCK_MONOTONIC);
    const pid_t pid = fork();
    if (pid == 0) _exit(0);
    const int64_t forked = bench::clock_ns(CLOCK_MONOTONIC);
    if (pid < 0 || waitpid(pid, nullptr, 0) != pid) usage_error("fork failed");
    const int64_t reaped = bench::clock_ns(CLOCK_MONOTONIC);
    in_parent.push_back(forked - start);
    round_trip.push_back(reaped - start);
  }
  g_stop.store(true);
  for (std::thread& t : workers) t.join();
  const Summary f = summarize(in_parent), r = summarize(round_trip);
  std::printf(
      "fork_us median %.1f mean %.1f p99 %.1f round_trip_us median %.1f mean %.1f p99 %.1f\n",
      f.median_us, f.mean_us, f.p99_us, r.median_us, r.mean_us, r.p99_us);
  return 0;
}
