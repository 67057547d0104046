// cpprof::Server: serves Go-compatible /debug/pprof/ endpoints from this
// process for as long as the object lives.
//
//   cpprof::Server server({.address = "127.0.0.1:6060"});
//   // go tool pprof http://127.0.0.1:6060/debug/pprof/profile?seconds=10
//
// Creating a Server starts two threads of cpprof's own (HTTP and worker);
// profiling itself costs nothing until a profile is requested. A process
// may run several Servers (on different ports); they share one sampler.
// Thread-safe: construct and destroy from any thread, but not concurrently
// on the same object.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cpprof/export.h"
#include "cpprof/options.h"

namespace cpprof {

class CPPROF_EXPORT Server {
 public:
  // Starts serving. Never throws for a bad address or a busy port: ok() is
  // then false and error() says why (a profiler must not take its host down).
  explicit Server(Options options = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // True if the server is listening.
  bool ok() const;
  // Why it is not listening; empty when ok().
  const std::string& error() const;
  // The port it listens on (useful with port 0).
  uint16_t port() const;
  // The index page, e.g. "http://127.0.0.1:6060/debug/pprof/".
  std::string url() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cpprof
