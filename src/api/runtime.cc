#include "api/runtime.h"

#include <atomic>
#include <mutex>

namespace cpprof::api {

namespace {

sources::CpuMode cpu_mode(CpuMode mode) {
  switch (mode) {
    case CpuMode::kPerf:
      return sources::CpuMode::kPerf;
    case CpuMode::kTimer:
      return sources::CpuMode::kTimer;
    case CpuMode::kAuto:
      break;
  }
  return sources::CpuMode::kAuto;
}

}  // namespace

symbolize::Symbolizer& process_symbolizer() {
  static symbolize::Symbolizer* symbolizer = new symbolize::Symbolizer;  // see runtime.h
  return *symbolizer;
}

namespace {
std::atomic<Runtime*> g_runtime{nullptr};
}  // namespace

Runtime* runtime_if_created() { return g_runtime.load(std::memory_order_acquire); }

Runtime& runtime(const Options& options) {
  static Runtime* rt = [&options] {
    auto* r = new Runtime;  // never deleted, see runtime.h
    r->log = options.log;
    r->cpu = std::make_unique<sources::CpuProfiler>(
        r->symbolizer,
        sources::CpuOptions{.hz = options.cpu_hz, .mode = cpu_mode(options.cpu_mode)});
    r->registry = make_registry(*r);
    g_runtime.store(r, std::memory_order_release);
    return r;
  }();
  return *rt;
}

}  // namespace cpprof::api
