// Starting a server when the library loads, if CPPROF_HTTP asks for one:
// how a binary built without cpprof gets profiled (LD_PRELOAD, cpprof run).
// Without CPPROF_HTTP, loading the library starts no thread and arms no timer.
// Under `cpprof run`, only the launched process serves (CPPROF_RUN_PID).
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "api/log.h"
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

[[gnu::constructor]] void start_from_environment() {
  const char* http = std::getenv("CPPROF_HTTP");
  if (http == nullptr || *http == '\0' || launched_process_is_elsewhere()) return;
  std::string error;
  Options options = options_from_environment(Options{}, &error);
  if (!error.empty()) {
    log_line(options.log, "not serving: " + error);
    return;
  }
  // Never destroyed: the host's exit must not wait for, or race with, our threads.
  new Server(std::move(options));
}

}  // namespace
}  // namespace cpprof::api
