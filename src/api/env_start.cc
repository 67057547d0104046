// Starting a server when the library loads, if CPPROF_HTTP asks for one:
// how a binary built without cpprof gets profiled (LD_PRELOAD, cpprof run).
// Without CPPROF_HTTP, loading the library starts no thread and arms no timer.
// CPPROF_OUT=DIR profiles the whole run into files at exit (exit_profiles.h).
// Under `cpprof run`, only the launched process serves (CPPROF_RUN_PID).
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "api/exit_profiles.h"
#include "api/log.h"
#include "capture/alloc_counters.h"
#include "capture/heap_sampler.h"
#include "cpprof/options.h"
#include "cpprof/server.h"

namespace cpprof::api {
namespace {

// `cpprof run` names the process it launched (its pid survives exec): the
// children that inherit the environment (a shell script's commands, a
// compiler driver's passes) stay quiet instead of fighting for the port.
bool launched_process_is_elsewhere() {
  const char* run_pid = std::getenv("CPPROF_RUN_PID");
  return run_pid != nullptr && *run_pid != '\0' && std::atoi(run_pid) != getpid();
}

// A non-negative integer, all of `text`; false otherwise.
bool parse_count(const char* text, int64_t* value) {
  if (text == nullptr || *text == '\0') return false;
  char* end = nullptr;
  errno = 0;
  const long long parsed = std::strtoll(text, &end, 10);
  if (errno != 0 || *end != '\0' || parsed < 0) return false;
  *value = parsed;
  return true;
}

// Heap sampling runs in every process that loads cpprof, server or not:
// the rate and seed apply from here on (allocations before this used the
// default rate).
void configure_heap_sampling() {
  const char* rate_text = std::getenv("CPPROF_HEAP_RATE");
  int64_t rate = 0;
  if (rate_text != nullptr && *rate_text != '\0') {
    if (parse_count(rate_text, &rate)) {
      capture::set_heap_sample_rate(rate);
    } else {
      const char* log = std::getenv("CPPROF_LOG");
      log_line(log != nullptr && *log != '\0' ? log : "stderr",
               std::string("CPPROF_HEAP_RATE=") + rate_text +
                   ": expected a number of bytes (0 turns heap profiling off); "
                   "keeping the default");
    }
  }
  int64_t seed = 0;
  if (parse_count(std::getenv("CPPROF_HEAP_SEED"), &seed)) {
    capture::set_heap_sample_seed(static_cast<uint64_t>(seed));
  }
}

[[gnu::constructor]] void start_from_environment() {
  // First, on the thread's own counters: a new rate redraws its distance.
  configure_heap_sampling();
  // Reading the environment and starting the server allocate on the host's
  // main thread: cpprof's work, not the program's (counts and heap samples).
  capture::InternalAllocScope own;
  if (launched_process_is_elsewhere()) return;
  const char* http = std::getenv("CPPROF_HTTP");
  const char* out = std::getenv("CPPROF_OUT");
  const bool serve = http != nullptr && *http != '\0';
  const bool write_at_exit = out != nullptr && *out != '\0';
  if (!serve && !write_at_exit) return;
  std::string error;
  Options options = options_from_environment(Options{}, &error);
  if (!error.empty()) {
    log_line(options.log, (serve ? "not serving: " : "no profiles at exit: ") + error);
    return;
  }
  // Never destroyed: the host's exit must not wait for, or race with, our threads.
  if (serve) new Server(options);
  if (write_at_exit) start_exit_profiles(out, options);
}

}  // namespace
}  // namespace cpprof::api
