// A program with threads in known places, for the thread profile tests:
//
//   thread_burner [--blocked-a N] [--blocked-b N] [--spinning-c N]
//                 [--eintr] [--churn]
//
//   thread_blocked_a   N threads blocked in read() on a pipe nobody writes
//   thread_blocked_b   N threads waiting on a condition variable (futex)
//   thread_spinning_c  N threads spinning, never blocking
//   --eintr            threads in loops that treat EINTR as an error,
//                      blocked in epoll_wait, poll, nanosleep and read (long
//                      timeouts), and one in 1 ms nanosleeps (often running
//                      when looked at); each EINTR is counted
//   --churn            a thread that keeps starting short-lived threads
//                      (each sleeps 0-2 ms and exits), ten at a time
//
// Every thread is started from thread_spawn_all, so threadcreate finds it
// there. Prints "ready" once every thread has reached its place. Exits when
// stdin closes, printing "eintr N" (the EINTRs seen) and "churned N"; the
// exit code is 3 if any EINTR was seen. Built twice: linked with cpprof
// (CPPROF_LINKED: serves on a free port and prints "port N") and plain,
// for LD_PRELOAD and `cpprof run`.
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <thread>
#include <vector>

#ifdef CPPROF_LINKED
#include "cpprof/server.h"
#endif

#include "site.h"

namespace {

std::atomic<int> g_arrived{0};
std::atomic<bool> g_stop{false};
std::atomic<long> g_eintr{0};
std::atomic<long> g_churned{0};
int g_never[2];  // a pipe nobody writes to (until exit)
std::mutex g_mutex;
std::condition_variable g_never_signalled;

void name_thread(const char* name) { pthread_setname_np(pthread_self(), name); }

SITE void thread_blocked_a() {
  name_thread("blocked-a");
  g_arrived.fetch_add(1);
  char byte;
  while (read(g_never[0], &byte, 1) < 0 && errno == EINTR) g_eintr.fetch_add(1);
}

SITE void thread_blocked_b() {
  name_thread("blocked-b");
  std::unique_lock<std::mutex> lock(g_mutex);
  g_arrived.fetch_add(1);
  g_never_signalled.wait(lock, [] { return g_stop.load(); });
}

SITE void thread_spinning_c() {
  name_thread("spinning-c");
  g_arrived.fetch_add(1);
  volatile unsigned long x = 0;
  while (!g_stop.load(std::memory_order_relaxed)) x = x + 1;
}

// The blocking calls a thread dump must never interrupt.
SITE void eintr_epoll_wait() {
  name_thread("in-epoll");
  int epfd = epoll_create1(0);
  epoll_event event{};
  event.events = EPOLLIN;
  epoll_ctl(epfd, EPOLL_CTL_ADD, g_never[0], &event);
  g_arrived.fetch_add(1);
  while (!g_stop.load()) {
    epoll_event out{};
    if (epoll_wait(epfd, &out, 1, 60000) < 0 && errno == EINTR) g_eintr.fetch_add(1);
    if (out.events != 0) break;
  }
  close(epfd);
}

SITE void eintr_poll() {
  name_thread("in-poll");
  g_arrived.fetch_add(1);
  while (!g_stop.load()) {
    pollfd fd{g_never[0], POLLIN, 0};
    if (poll(&fd, 1, 60000) < 0 && errno == EINTR) g_eintr.fetch_add(1);
    if (fd.revents != 0) break;
  }
}

SITE void eintr_nanosleep() {
  name_thread("in-nanosleep");
  g_arrived.fetch_add(1);
  while (!g_stop.load()) {
    timespec nap{0, 200000000};
    if (nanosleep(&nap, nullptr) < 0 && errno == EINTR) g_eintr.fetch_add(1);
  }
}

// Wakes every millisecond: often running when a dump looks at it, so a
// dump that signalled running threads would catch it entering nanosleep.
SITE void eintr_short_sleeps() {
  name_thread("in-short-sleeps");
  g_arrived.fetch_add(1);
  while (!g_stop.load()) {
    timespec nap{0, 1000000};
    if (nanosleep(&nap, nullptr) < 0 && errno == EINTR) g_eintr.fetch_add(1);
  }
}

SITE void eintr_read() {
  name_thread("in-read");
  g_arrived.fetch_add(1);
  char byte;
  while (read(g_never[0], &byte, 1) < 0) {
    if (errno == EINTR) g_eintr.fetch_add(1);
  }
}

SITE void churn_one() {
  timespec nap{0, static_cast<long>(std::rand() % 2000) * 1000};
  nanosleep(&nap, nullptr);
  g_churned.fetch_add(1);
}

SITE void churn() {
  name_thread("churn");
  g_arrived.fetch_add(1);
  while (!g_stop.load()) {
    std::vector<std::thread> batch;
    for (int i = 0; i < 10; ++i) batch.emplace_back(churn_one);
    for (std::thread& t : batch) t.join();
  }
}

SITE void thread_spawn_all(std::vector<std::thread>* threads, int a, int b, int c, bool eintr,
                           bool with_churn) {
  for (int i = 0; i < a; ++i) threads->emplace_back(thread_blocked_a);
  for (int i = 0; i < b; ++i) threads->emplace_back(thread_blocked_b);
  for (int i = 0; i < c; ++i) threads->emplace_back(thread_spinning_c);
  if (eintr) {
    threads->emplace_back(eintr_epoll_wait);
    threads->emplace_back(eintr_poll);
    threads->emplace_back(eintr_nanosleep);
    threads->emplace_back(eintr_read);
    threads->emplace_back(eintr_short_sleeps);
  }
  if (with_churn) threads->emplace_back(churn);
}

}  // namespace

int main(int argc, char** argv) {
  int a = 0, b = 0, c = 0;
  bool eintr = false, with_churn = false;
  for (int i = 1; i < argc; ++i) {
    const char* arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (std::strcmp(arg, "--blocked-a") == 0 && has_value) a = std::atoi(argv[++i]);
    if (std::strcmp(arg, "--blocked-b") == 0 && has_value) b = std::atoi(argv[++i]);
    if (std::strcmp(arg, "--spinning-c") == 0 && has_value) c = std::atoi(argv[++i]);
    if (std::strcmp(arg, "--eintr") == 0) eintr = true;
    if (std::strcmp(arg, "--churn") == 0) with_churn = true;
  }
  if (pipe(g_never) != 0) return 1;
#ifdef CPPROF_LINKED
  cpprof::Server server({.address = "127.0.0.1:0", .log = "off"});
  if (!server.ok()) {
    std::fprintf(stderr, "thread_burner: %s\n", server.error().c_str());
    return 1;
  }
  std::printf("port %u\n", server.port());
  std::fflush(stdout);
#endif
  std::vector<std::thread> threads;
  thread_spawn_all(&threads, a, b, c, eintr, with_churn);
  const int expected = a + b + c + (eintr ? 5 : 0) + (with_churn ? 1 : 0);
  while (g_arrived.load() < expected) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::printf("ready\n");
  std::fflush(stdout);
  char buffer[64];
  while (read(STDIN_FILENO, buffer, sizeof buffer) > 0) {
  }
  g_stop.store(true);
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    g_never_signalled.notify_all();
  }
  if (write(g_never[1], "x", 1) != 1) return 1;  // wakes the readers, pollers and epoll
  close(g_never[1]);
  for (std::thread& t : threads) t.join();
  std::printf("eintr %ld\nchurned %ld\n", g_eintr.load(), g_churned.load());
  std::fflush(stdout);
  return g_eintr.load() > 0 ? 3 : 0;
}
