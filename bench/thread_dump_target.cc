// The process bench/run_thread_dump.sh dumps: N threads parked the way
// servers park them, linked with cpprof (serving on a free port):
//
//   thread_dump_target THREADS
//
// Seven in ten wait on a condition variable (futex), two in ten in read()
// on a pipe, one in ten in a nanosleep() loop that counts EINTR (a call
// interrupted by a signal: what a dump that signals blocked threads does
// to them). Each parks under a few frames of its own (park_* -> depth_*),
// so every stack has something to walk. Prints "port N" and "ready";
// when stdin closes, prints "eintr N" and exits.
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <thread>
#include <vector>

#include "cpprof/server.h"

namespace {

std::atomic<bool> g_stop{false};
std::atomic<int> g_parked{0};
std::atomic<long> g_eintr{0};
std::mutex g_mutex;
std::condition_variable g_wake;
int g_pipe[2];

[[gnu::noinline]] void park_futex() {
  std::unique_lock<std::mutex> lock(g_mutex);
  g_parked.fetch_add(1);
  g_wake.wait(lock, [] { return g_stop.load(); });
}

[[gnu::noinline]] void park_read() {
  g_parked.fetch_add(1);
  char byte;
  while (read(g_pipe[0], &byte, 1) < 0) {
  }
}

[[gnu::noinline]] void park_sleep() {
  g_parked.fetch_add(1);
  while (!g_stop.load()) {
    timespec nap{0, 100000000};
    if (nanosleep(&nap, nullptr) != 0 && errno == EINTR) g_eintr.fetch_add(1);
  }
}

[[gnu::noinline]] void depth_3(int kind) {
  if (kind < 7) {
    park_futex();
  } else if (kind < 9) {
    park_read();
  } else {
    park_sleep();
  }
}
[[gnu::noinline]] void depth_2(int kind) { depth_3(kind); }
[[gnu::noinline]] void depth_1(int kind) { depth_2(kind); }

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1000;
  if (pipe(g_pipe) != 0) return 1;
  cpprof::Server server({.address = "127.0.0.1:0", .log = "off"});
  if (!server.ok()) return 1;
  std::printf("port %u\n", server.port());
  std::fflush(stdout);
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (int i = 0; i < threads; ++i) {
    pool.emplace_back(depth_1, i % 10);
  }
  while (g_parked.load() < threads) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::printf("ready\n");
  std::fflush(stdout);
  char buffer[64];
  while (read(STDIN_FILENO, buffer, sizeof buffer) > 0) {
  }
  g_stop = true;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    g_wake.notify_all();
  }
  close(g_pipe[1]);
  for (std::thread& t : pool) t.join();
  std::printf("eintr %ld\n", g_eintr.load());
  return 0;
}
