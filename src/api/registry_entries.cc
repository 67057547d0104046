#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "api/heap_entries.h"
#include "api/log.h"
#include "api/runtime.h"
#include "api/thread_entries.h"
#include "sources/heap/heap_count.h"

namespace cpprof::api {
namespace {

// Logs `message` the first time only: one line for the operator, not one per scrape.
void log_once(std::atomic<bool>& logged, const std::string& log, const std::string& message) {
  if (!logged.exchange(true)) log_line(log, message);
}

// A CPU profile request's window.
class CpuCollection final : public http::Collection {
 public:
  CpuCollection(sources::CpuProfiler& cpu, std::shared_ptr<sources::CpuProfiler::Window> window,
                std::string log)
      : cpu_(cpu), window_(std::move(window)), log_(std::move(log)) {}

  // Sampling that had to stop during the window (the program took the
  // signal) answers with the reason, not with a profile cut short: the
  // server turns the exception into an error response.
  profile::Profile finish() override {
    std::string error;
    profile::Profile profile = cpu_.finish(window_, &error);
    if (error.empty()) return profile;
    static std::atomic<bool> logged{false};
    log_once(logged, log_, "CPU profile ended early: " + error);
    throw http::CollectionRefused({503, "could not finish the CPU profile: " + error});
  }

 private:
  sources::CpuProfiler& cpu_;
  std::shared_ptr<sources::CpuProfiler::Window> window_;
  const std::string log_;
};

http::ProfileEntry cpu_entry(Runtime& rt) {
  http::ProfileEntry entry;
  entry.name = "profile";
  entry.description =
      "CPU profile. You can specify the duration in the seconds GET parameter. After you get "
      "the profile file, use the go tool pprof command to investigate the profile.";
  entry.default_seconds = 30;
  sources::CpuProfiler* cpu = rt.cpu.get();
  std::string log = rt.log;
  entry.open = [cpu, log](http::Refusal* refusal) -> std::unique_ptr<http::Collection> {
    std::string error;
    auto window = cpu->open_window(&error);
    if (window == nullptr) {
      refusal->status = 503;
      refusal->message = "could not enable CPU profiling: " + error;
      static std::atomic<bool> logged{false};
      log_once(logged, log, refusal->message);
      return nullptr;
    }
    return std::make_unique<CpuCollection>(*cpu, std::move(window), log);
  };
  return entry;
}

}  // namespace

std::shared_ptr<const http::Registry> make_registry(Runtime& rt) {
  auto registry = std::make_shared<http::Registry>();
  registry->add(cpu_entry(rt));
  add_heap_entries(*registry, rt.symbolizer, sources::take_heap_snapshot,
                   sources::heap_stack_count);
  add_thread_entries(*registry, rt.symbolizer);
  return registry;
}

}  // namespace cpprof::api
