// The process-wide state behind every cpprof::Server: one symbolizer, one
// CPU sampler (there is one signal handler per process) and the registry
// of profiles. Created on first use and never destroyed: cpprof's threads
// may still run while the host's static destructors do, so nothing they
// touch may go away before the process does.
#pragma once

#include <memory>
#include <string>

#include "api/alloc_rate.h"
#include "cpprof/options.h"
#include "http/registry.h"
#include "sources/cpu/cpu_profiler.h"
#include "symbolize/symbolizer.h"

namespace cpprof::api {

// The process's one symbolizer (never destroyed), shared by the runtime and
// the API functions that symbolize without a server (cpprof::threads()).
symbolize::Symbolizer& process_symbolizer();

struct Runtime {
  symbolize::Symbolizer& symbolizer = process_symbolizer();
  std::unique_ptr<sources::CpuProfiler> cpu;
  std::shared_ptr<const http::Registry> registry;
  std::string log;       // where the runtime's own lines go (the first Server's Options::log)
  AllocRate alloc_rate;  // the index page's allocation rate, measured from start-up
};

// The runtime; the first call fixes the CPU rate and mode and the log
// destination from `options`. Thread-safe.
Runtime& runtime(const Options& options);

// The runtime if some Server created it, else nullptr. Thread-safe.
Runtime* runtime_if_created();

// The registry entries of every profile cpprof serves.
std::shared_ptr<const http::Registry> make_registry(Runtime& rt);

}  // namespace cpprof::api
