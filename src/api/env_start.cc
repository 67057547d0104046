// Starting a server when the library loads, if CPPROF_HTTP asks for one:
// how a binary built without cpprof gets profiled (LD_PRELOAD, cpprof run).
// Without CPPROF_HTTP, loading the library starts no thread and arms no timer.
// CPPROF_OUT=DIR profiles the whole run into files at exit (exit_profiles.h).
// Only the launched process serves (CPPROF_RUN_PID, set by `cpprof run` or
// by the first process that serves), unless CPPROF_CHILDREN=1: then every
// process that inherits the environment, exec'd or forked, serves on a free
// port of its own and says which in the log.
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "api/address.h"
#include "api/exit_profiles.h"
#include "api/fork_safety.h"
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

// CPPROF_CHILDREN=1 (`cpprof run --children`): every process serves.
bool children_serve() {
  const char* children = std::getenv("CPPROF_CHILDREN");
  return children != nullptr && *children != '\0' && std::string(children) != "0";
}

// `address` with its port replaced by 0: a free one, for a child.
std::string on_a_free_port(const std::string& address) {
  HostPort where;
  std::string error;
  if (!parse_host_port(address, &where, &error)) return address;
  const bool v6 = where.host.find(':') != std::string::npos;
  return (v6 ? "[" + where.host + "]" : where.host) + ":0";
}

// Serves as `options` say; in a child of the launched process (with
// CPPROF_CHILDREN), on a free port instead.
void serve(Options options, bool child) {
  capture::InternalAllocScope own;
  if (child) options.address = on_a_free_port(options.address);
  new Server(options);  // never destroyed: the host's exit must not wait for our threads
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
  const bool child = launched_process_is_elsewhere();
  if (child && !children_serve()) return;
  const char* http = std::getenv("CPPROF_HTTP");
  const char* out = std::getenv("CPPROF_OUT");
  const bool serve_http = http != nullptr && *http != '\0';
  const bool write_at_exit = out != nullptr && *out != '\0';
  if (!serve_http && !write_at_exit) return;
  std::string error;
  Options options = options_from_environment(Options{}, &error);
  if (!error.empty()) {
    log_line(options.log, (serve_http ? "not serving: " : "no profiles at exit: ") + error);
    return;
  }
  install_fork_handlers();
  if (serve_http) {
    // The processes this one starts know it is the one serving on the address.
    if (std::getenv("CPPROF_RUN_PID") == nullptr) {
      setenv("CPPROF_RUN_PID", std::to_string(getpid()).c_str(), 1);
    }
    serve(options, child);
    if (children_serve()) set_fork_child_server([options] { serve(options, true); });
  }
  if (write_at_exit) start_exit_profiles(out, options);
}

}  // namespace
}  // namespace cpprof::api
