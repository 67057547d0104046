#include "api/runtime.h"

#include <mutex>

namespace cpprof::api {

Runtime& runtime(int cpu_hz) {
  static Runtime* rt = [cpu_hz] {
    auto* r = new Runtime;  // never deleted, see runtime.h
    r->cpu =
        std::make_unique<sources::CpuProfiler>(r->symbolizer, sources::CpuOptions{.hz = cpu_hz});
    r->registry = make_registry(*r);
    return r;
  }();
  return *rt;
}

}  // namespace cpprof::api
