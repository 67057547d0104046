// A host that owns its signals, for signal_dispositions_test:
//
//   signal_host dispositions    prints "disposition SIG HANDLER FLAGS" for
//                               every signal, at the start of main and again
//                               once the (preloaded or linked) server has run
//                               and served a request (the test sends one)
//   signal_host sigpipe [--ignore]
//                               writes to a socket whose peer is closed: by
//                               default SIGPIPE's default action ends the
//                               process; with --ignore it prints "EPIPE"
//   signal_host sigprof [--now]
//                               burns CPU in host_burn and answers lines on
//                               stdin: "install" installs its own SIGPROF
//                               handler and an ITIMER_PROF every 10 ms of
//                               CPU, then prints "installed"; "count" prints
//                               "count OWN OTHER", the SIGPROFs its handler
//                               saw from its timer (si_code SI_KERNEL) and
//                               from anything else (cpprof's timers or perf
//                               events, had they kept SIGPROF). --now
//                               installs before "ready". EOF ends it.
// Prints "ready" when it waits for the test (dispositions: until stdin has
// a line).
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "site.h"

namespace {

void print_dispositions(const char* when) {
  for (int signo = 1; signo < NSIG; ++signo) {
    struct sigaction action {};
    if (sigaction(signo, nullptr, &action) != 0) continue;
    const void* handler = (action.sa_flags & SA_SIGINFO) != 0
                              ? reinterpret_cast<void*>(action.sa_sigaction)
                              : reinterpret_cast<void*>(action.sa_handler);
    std::printf("%s %d %p %x\n", when, signo, handler, static_cast<unsigned>(action.sa_flags));
  }
  std::fflush(stdout);
}

std::atomic<long> g_own_sigprofs{0};
std::atomic<long> g_other_sigprofs{0};

void on_sigprof(int, siginfo_t* info, void*) {
  (info->si_code == SI_KERNEL ? g_own_sigprofs : g_other_sigprofs)
      .fetch_add(1, std::memory_order_relaxed);
}

// What a program with its own ITIMER_PROF profiler does when it starts it.
void install_sigprof() {
  struct sigaction action {};
  action.sa_sigaction = on_sigprof;
  action.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&action.sa_mask);
  sigaction(SIGPROF, &action, nullptr);
  itimerval every_10ms{{0, 10000}, {0, 10000}};
  setitimer(ITIMER_PROF, &every_10ms, nullptr);
}

// Burns about 10 ms of CPU.
SITE void host_burn() {
  timespec start{};
  clock_gettime(CLOCK_MONOTONIC, &start);
  volatile uint64_t x = 1;
  for (;;) {
    for (int i = 0; i < 10000; ++i) x = x * 3 + 1;
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    if ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) > 10000000L)
      return;
  }
}

// Answers one line from the test; false at EOF.
bool answer(std::string& pending) {
  char chunk[256];
  const ssize_t n = read(STDIN_FILENO, chunk, sizeof chunk);
  if (n <= 0) return false;
  pending.append(chunk, static_cast<size_t>(n));
  for (size_t nl; (nl = pending.find('\n')) != std::string::npos; pending.erase(0, nl + 1)) {
    const std::string line = pending.substr(0, nl);
    if (line == "install") {
      install_sigprof();
      std::printf("installed\n");
    } else if (line == "count") {
      std::printf("count %ld %ld\n", g_own_sigprofs.load(), g_other_sigprofs.load());
    }
  }
  std::fflush(stdout);
  return true;
}

int sigprof_host(bool now) {
  if (now) install_sigprof();
  std::printf("ready\n");
  std::fflush(stdout);
  std::string pending;
  for (;;) {
    host_burn();
    pollfd in{STDIN_FILENO, POLLIN, 0};
    if (poll(&in, 1, 0) > 0 && !answer(pending)) break;
  }
  itimerval off{};
  setitimer(ITIMER_PROF, &off, nullptr);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "dispositions") {
    print_dispositions("start");
    std::printf("ready\n");
    std::fflush(stdout);
    char line[64];
    if (read(STDIN_FILENO, line, sizeof line) < 0) return 1;  // a line or EOF: go on
    print_dispositions("later");
    return 0;
  }
  if (mode == "sigprof") return sigprof_host(argc > 2 && std::strcmp(argv[2], "--now") == 0);
  if (mode == "sigpipe") {
    if (argc > 2 && std::strcmp(argv[2], "--ignore") == 0) signal(SIGPIPE, SIG_IGN);
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) return 1;
    close(fds[1]);
    std::printf("ready\n");
    std::fflush(stdout);
    if (write(fds[0], "x", 1) < 0 && errno == EPIPE) {
      std::printf("EPIPE\n");
      return 0;
    }
    return 2;
  }
  return 1;
}
