#include "cpprof/server.h"

#include <unistd.h>

#include <atomic>
#include <string>
#include <utility>

#include "api/address.h"
#include "api/alloc_rate.h"
#include "api/alloc_status.h"
#include "api/fork_safety.h"
#include "api/log.h"
#include "api/own_costs.h"
#include "api/runtime.h"
#include "capture/alloc_counters.h"
#include "capture/thread_hooks.h"
#include "capture/thread_table.h"
#include "cpprof/alloc_stats.h"
#include "http/server.h"
#include "sources/cpu/unwind_tables.h"
#include "sources/threads/internal_thread.h"
#include "sources/threads/thread_dump.h"

namespace cpprof {

struct Server::Impl {
  std::string error;
  std::string host;
  std::unique_ptr<http::Server> http;
};

namespace {

std::vector<std::pair<std::string, std::string>> index_stats(api::Runtime& rt) {
  sources::CpuStats cpu = rt.cpu->stats();
  int64_t own = 0;
  for (capture::ThreadSlot& slot : capture::thread_table()) {
    if (slot.tid.load(std::memory_order_relaxed) == 0) continue;
    if (slot.internal.load(std::memory_order_relaxed)) ++own;
  }
  const int64_t live = sources::host_thread_count();
  std::vector<std::pair<std::string, std::string>> rows;
  if (alloc_counting_available()) {
    const AllocStats allocs = alloc_stats();
    rows = {
        {"allocations", std::to_string(allocs.allocs)},
        {"bytes allocated", std::to_string(allocs.bytes)},
        {"frees", std::to_string(allocs.frees)},
        {"allocation rate", rt.alloc_rate.update(allocs.allocs, api::monotonic_ns())},
        {"cpprof's own allocations", std::to_string(capture::process_alloc_totals(true).allocs)},
    };
  } else {
    rows = {{"allocations", "not counted (" + api::alloc_counting_refusal() + ")"}};
  }
  std::vector<std::pair<std::string, std::string>> more = {
      {"threads running", live < 0 ? std::string("unknown (no /proc)") : std::to_string(live)},
      {"threads created", std::to_string(capture::host_threads_created()) +
                              " (through pthread_create since cpprof loaded)"},
      {"cpprof's own threads", std::to_string(own)},
      {"CPU sampling rate", std::to_string(1000000000 / rt.cpu->period_ns()) + " Hz"},
      {"CPU sampling mode", cpu.mode},
      {"perf event fds open", std::to_string(cpu.perf_fds_open)},
      {"CPU profiles in progress", std::to_string(cpu.windows_open)},
      {"CPU samples taken", std::to_string(cpu.samples)},
      {"CPU samples dropped", std::to_string(cpu.dropped)},
      {"heap samples dropped", api::describe_heap_samples_dropped()},
      {"cpprof's sample buffer", std::to_string(cpu.ring_bytes / 1024) + " KiB"},
      {"cpprof's memory", api::describe_own_memory(api::own_memory(cpu.ring_bytes))},
  };
  rows.insert(rows.end(), more.begin(), more.end());
  return rows;
}

}  // namespace

Server::Server(Options options) {
  // What starting a server allocates on the host's thread is cpprof's.
  capture::InternalAllocScope own;
  impl_ = std::make_unique<Impl>();
  api::install_fork_handlers();
  // Heap samples walk their stacks with the published unwind rows: publish
  // them now, not only when a CPU profile first runs.
  sources::refresh_process_unwind_tables();
  api::HostPort where;
  if (!api::parse_host_port(options.address, &where, &impl_->error)) {
    api::log_line(options.log, "not serving: " + impl_->error);
    return;
  }
  api::Runtime& rt = api::runtime(options);

  http::ServerConfig config;
  config.host = where.host;
  config.port = where.port;
  config.allow_remote = options.allow_remote;
  config.token = options.token;
  config.spawn_thread = [](std::string name, std::function<void()> body) {
    return sources::spawn_internal_thread(std::move(name), std::move(body));
  };
  config.symbol_name = [&rt](uint64_t address) -> std::string {
    // The innermost function, inlined or not, as Go's runtime.FuncForPC names it.
    std::vector<symbolize::Frame> frames = rt.symbolizer.symbolize(address);
    return frames.empty() ? std::string() : frames.front().function;
  };
  config.index_stats = [&rt] { return index_stats(rt); };

  impl_->host = where.host;
  impl_->http = std::make_unique<http::Server>(std::move(config), rt.registry);
  if (!impl_->http->start(&impl_->error)) {
    impl_->http.reset();
    api::log_line(options.log, "not serving: " + impl_->error);
    return;
  }
  api::log_line(options.log, "serving " + url() + " (pid " + std::to_string(getpid()) + ")");
  static std::atomic<bool> told{false};
  if (!alloc_counting_available() && !told.exchange(true)) {
    api::log_line(options.log, "allocations are not counted: " + api::alloc_counting_refusal());
  }
}

Server::~Server() {
  capture::InternalAllocScope own;
  if (impl_->http) impl_->http->stop();
  impl_.reset();
}

bool Server::ok() const { return impl_->http != nullptr; }
const std::string& Server::error() const { return impl_->error; }
uint16_t Server::port() const { return impl_->http ? impl_->http->port() : 0; }

std::string Server::url() const {
  bool v6 = impl_->host.find(':') != std::string::npos;
  std::string host = v6 ? "[" + impl_->host + "]" : impl_->host;
  return "http://" + host + ":" + std::to_string(port()) + "/debug/pprof/";
}

}  // namespace cpprof
