// A host that forks, for fork_test:
//
//   fork_host stress N [T]   T threads (default 3) allocate in a loop; at EOF on
//                            stdin, fork N times; each child runs a
//                            malloc-heavy task (and a thread) and exits. Prints
//                            "forked N clean C hung H failed F", then exits
//                            on SIGUSR1.
//   fork_host daemon         double fork: the launched process forks A and
//                            returns from main; A forks B and exits; B prints
//                            "daemon PID", then allocates and burns CPU in
//                            daemon_work until stdin reaches EOF.
//   fork_host children K     forks K children that exec `fork_host wait`,
//                            prints "children K", waits for stdin EOF, reaps
//                            them and prints "reaped K clean C".
//   fork_host wait           waits for stdin EOF (an exec'd child).
//
// Built twice: plain (for LD_PRELOAD and `cpprof run`) and linked with
// cpprof, where main also owns a cpprof::Server (port 0) that the forked
// children inherit and destroy when they return from main.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "site.h"

#ifdef CPPROF_LINKED
#include "cpprof/server.h"
#endif

namespace {

std::atomic<bool> g_stop{false};
int g_child_exit = 0;  // what a forked child returns from main

// Mixed sizes, some large enough for cpprof's sampled region.
size_t size_for(uint64_t i) {
  return i % 97 == 0 ? 70000 + (i % 5) * 40000 : 16 + (i * 7919) % 2048;
}

SITE void allocate_forever() {
  uint64_t i = 0;
  std::vector<void*> held(64, nullptr);
  while (!g_stop.load(std::memory_order_relaxed)) {
    void*& slot = held[i % held.size()];
    std::free(slot);
    slot = std::malloc(size_for(i));
    std::memset(slot, 1, 16);
    auto* boxed = new std::string(static_cast<size_t>(40 + i % 200), 'x');
    delete boxed;
    ++i;
  }
  for (void* p : held) std::free(p);
}

// The child's work: many allocations of every kind, a thread of its own.
SITE uint64_t child_task() {
  uint64_t sum = 0;
  std::vector<std::unique_ptr<std::string>> kept;
  for (uint64_t i = 0; i < 20000; ++i) {
    void* p = std::malloc(size_for(i * 31));
    std::memset(p, static_cast<int>(i), 8);
    sum += static_cast<unsigned char*>(p)[3];
    std::free(p);
    kept.push_back(std::make_unique<std::string>(static_cast<size_t>(30 + i % 100), 'c'));
    if (kept.size() > 256) kept.clear();
  }
  std::thread helper([&sum] {
    std::vector<int> grow;
    for (int i = 0; i < 100000; ++i) grow.push_back(i);
    sum += static_cast<uint64_t>(grow.back());
  });
  helper.join();
  return sum;
}

void wait_for_eof() {
  char line[64];
  while (std::fgets(line, sizeof line, stdin) != nullptr) {
  }
}

// Waits up to 20 s for `pid`; its status, or -1 if it hung (then killed).
int reap(pid_t pid) {
  for (int waited_ms = 0; waited_ms < 20000; ++waited_ms) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return status;
    poll(nullptr, 0, 1);
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return -1;
}

// Returns true in a forked child, which returns from main.
bool stress(int forks, int threads_allocating) {
  sigset_t usr1;  // blocked in every thread: sigwait takes it at the end
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &usr1, nullptr);
  // Not destroyed in a child, where they were never running.
  static auto* threads = new std::vector<std::thread>;
  for (int i = 0; i < threads_allocating; ++i) threads->emplace_back(allocate_forever);
  std::printf("ready\n");
  std::fflush(stdout);
  wait_for_eof();
  int clean = 0, hung = 0, failed = 0;
  for (int n = 0; n < forks; ++n) {
    const pid_t pid = fork();
    if (pid == 0) {
      // Returns from main: the linked build's Server is destroyed here too.
      g_child_exit = child_task() == 0 ? 3 : 0;
      return true;
    }
    const int status = reap(pid);
    if (status < 0) {
      ++hung;
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      ++clean;
    } else {
      ++failed;
    }
  }
  g_stop.store(true);
  for (std::thread& t : *threads) t.join();
  std::printf("forked %d clean %d hung %d failed %d\n", forks, clean, hung, failed);
  std::fflush(stdout);
  // Serving on until the test has asked what it wants: it sends SIGUSR1.
  int signo = 0;
  sigwait(&usr1, &signo);
  return false;
}

SITE uint64_t daemon_work() {
  uint64_t x = 1;
  std::vector<std::unique_ptr<char[]>> kept;
  while (true) {
    pollfd in{STDIN_FILENO, POLLIN, 0};
    if (poll(&in, 1, 0) == 1) {
      char buf[64];
      if (read(STDIN_FILENO, buf, sizeof buf) <= 0) break;
    }
    for (int i = 0; i < 200000; ++i) x = x * 6364136223846793005ull + 1442695040888963407ull;
    kept.push_back(std::make_unique<char[]>(4096));
    if (kept.size() > 1024) kept.clear();
  }
  return x;
}

// Returns true in the daemon, which must return from main when done.
bool daemonize() {
  const pid_t a = fork();
  if (a != 0) {
    waitpid(a, nullptr, 0);
    return false;  // the launched process returns from main
  }
  setsid();
  const pid_t b = fork();
  if (b != 0) _exit(0);
  std::printf("daemon %d\n", static_cast<int>(getpid()));
  std::fflush(stdout);
  return daemon_work() != 0;
}

int children(int count, const char* self) {
  std::vector<pid_t> pids;
  for (int i = 0; i < count; ++i) {
    const pid_t pid = fork();
    if (pid == 0) {
      execl(self, self, "wait", static_cast<char*>(nullptr));
      _exit(127);
    }
    pids.push_back(pid);
  }
  std::printf("children %d\n", count);
  std::fflush(stdout);
  wait_for_eof();
  int clean = 0;
  for (pid_t pid : pids) {
    const int status = reap(pid);
    if (status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) ++clean;
  }
  std::printf("reaped %d clean %d\n", count, clean);
  std::fflush(stdout);
  return 0;
}

int run(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "stress" && argc > 2) {
    return stress(std::atoi(argv[2]), argc > 3 ? std::atoi(argv[3]) : 3) ? g_child_exit : 0;
  }
  if (mode == "daemon") return daemonize() ? 0 : 0;
  if (mode == "children" && argc > 2) return children(std::atoi(argv[2]), "/proc/self/exe");
  if (mode == "wait") {
    wait_for_eof();
    return 0;
  }
  std::fprintf(stderr, "usage: fork_host stress N [T] | daemon | children K | wait\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
#ifdef CPPROF_LINKED
  cpprof::Server profiling({.address = "127.0.0.1:0"});
  std::printf("linked server on %u\n", profiling.port());
  std::fflush(stdout);
#endif
  return run(argc, argv);  // forked children return here too
}
