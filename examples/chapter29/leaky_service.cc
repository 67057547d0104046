// A service that leaks a thread per request, with profiling on: watch the
// blocked workers pile up in /debug/pprof/goroutine?debug=1.
//
//   chapter29_leaky_service [--http HOST:PORT] [--interval-ms MS]
//                           [--requests N] [--seconds S] [--fixed]
//
// Handles one simulated request every MS milliseconds (default 200), N of
// them (default 0: no limit), and exits after S seconds (default 0: at
// SIGINT or SIGTERM). Every request starts a worker thread; with --fixed the
// handler lets its worker finish, without it the worker waits forever
// (request_workers.h). Once a second it prints a line
//   requests: 25 waiting workers: 25
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "cpprof/server.h"
#include "request_workers.h"

namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop.store(true); }

void report(long requests) {
  std::printf("requests: %ld waiting workers: %d\n", requests, chapter29::waiting_workers());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::string http = "127.0.0.1:6060";
  long interval_ms = 200;
  long max_requests = 0;
  long seconds = 0;
  bool fixed = false;
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (std::strcmp(argv[i], "--http") == 0 && has_value) {
      http = argv[++i];
    } else if (std::strcmp(argv[i], "--interval-ms") == 0 && has_value) {
      interval_ms = std::atol(argv[++i]);
    } else if (std::strcmp(argv[i], "--requests") == 0 && has_value) {
      max_requests = std::atol(argv[++i]);
    } else if (std::strcmp(argv[i], "--seconds") == 0 && has_value) {
      seconds = std::atol(argv[++i]);
    } else if (std::strcmp(argv[i], "--fixed") == 0) {
      fixed = true;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--http HOST:PORT] [--interval-ms MS] [--requests N] [--seconds S] "
                   "[--fixed]\n",
                   argv[0]);
      return 2;
    }
  }
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);

  cpprof::Server server({.address = http});
  if (!server.ok()) {
    std::fprintf(stderr, "leaky_service: cannot serve: %s\n", server.error().c_str());
    return 1;
  }
  std::printf("leaky service (%s handler) running; profiles at %s\n", fixed ? "fixed" : "leaky",
              server.url().c_str());
  std::printf("try: curl '%sgoroutine?debug=1'\n", server.url().c_str());
  std::fflush(stdout);

  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  Clock::time_point next_report = start + std::chrono::seconds(1);
  long requests = 0;
  while (!g_stop.load()) {
    const Clock::time_point now = Clock::now();
    if (seconds > 0 && now - start >= std::chrono::seconds(seconds)) break;
    if (max_requests == 0 || requests < max_requests) {
      if (fixed) {
        chapter29::handle_request_fixed();
      } else {
        chapter29::handle_request_leaky();
      }
      ++requests;
    }
    if (now >= next_report) {
      report(requests);
      next_report += std::chrono::seconds(1);
    }
    const bool idle = max_requests != 0 && requests >= max_requests;
    std::this_thread::sleep_for(std::chrono::milliseconds(idle ? 100 : interval_ms));
  }
  report(requests);
  // Leaked workers are still blocked; returning from main ends them with
  // the process.
  return 0;
}
