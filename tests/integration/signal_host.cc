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
// Prints "ready" when it waits for the test (dispositions: until stdin has
// a line).
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

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
