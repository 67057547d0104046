// Starting a server when the library loads, if CPPROF_HTTP asks for one:
// how a binary built without cpprof gets profiled (LD_PRELOAD, cpprof run).
// Without CPPROF_HTTP, loading the library starts no thread and arms no timer.
#include <cstdlib>
#include <string>

#include "api/log.h"
#include "cpprof/options.h"
#include "cpprof/server.h"

namespace cpprof::api {
namespace {

[[gnu::constructor]] void start_from_environment() {
  const char* http = std::getenv("CPPROF_HTTP");
  if (http == nullptr || *http == '\0') return;
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
