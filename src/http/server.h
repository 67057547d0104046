// The /debug/pprof/ HTTP server: Boost.Beast over Boost.Asio on one thread
// of its own, with a second worker thread for finishing and encoding
// profiles so that a slow symbolization never stalls other requests.
//
// Routes (Go's net/http/pprof is the reference):
//   /debug/pprof/            HTML index of the registry
//   /debug/pprof/<name>      a registry entry; seconds=N, debug=N
//   /debug/pprof/cmdline     the command line, NUL-separated (text/plain)
//   /debug/pprof/symbol      Go's symbol protocol (GET: count, POST/GET query: lookups)
//   /debug/pprof/ui/<asset>  embedded UI assets
// A window (seconds=N) holds no thread: it is an asio timer.
//
// Threads: "cpprof-http" runs every socket and timer (asio io_context);
// "cpprof-worker" finishes, encodes and symbolizes, and posts each response
// back. registry.h says which callbacks run where; ServerConfig's
// index_stats runs on the io thread and symbol_name on the worker.
//
// Thread-safety: start() and stop() from one controlling thread, never from
// a server thread (stop() joins them); the destructor calls stop().
//
// fork(): a child does not serve; see forget_servers_after_fork.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "http/registry.h"

namespace cpprof::http {

struct ServerConfig {
  std::string host = "127.0.0.1";
  uint16_t port = 6060;       // 0 picks a free port; port() tells which
  bool allow_remote = false;  // refuse non-loopback addresses unless set
  std::string token;          // if set, every request needs "Authorization: Bearer <token>"
  int max_seconds = 3600;     // upper bound of seconds=N
  int max_windows = 16;       // concurrent windows beyond this get 503
  // Connections at once. A new one beyond this closes the connection that
  // has waited longest for a request; if every connection is being
  // answered, the new one gets 503 and is closed.
  int max_connections = 64;
  // A request must arrive in full within this long of the connection being
  // opened or going idle (keep-alive), so slow clients cannot hold slots.
  int idle_timeout_seconds = 30;
  // Starts a thread that runs `body`. The default is std::thread; the library
  // passes one that marks the thread as cpprof's own (never sampled).
  std::function<std::thread(std::string name, std::function<void()> body)> spawn_thread;
  // Name of the function containing `address` ("" if unknown), for /symbol.
  std::function<std::string(uint64_t address)> symbol_name;
  // Extra "key: value" rows for the index page (cpprof's own costs, totals).
  std::function<std::vector<std::pair<std::string, std::string>>()> index_stats;
};

class Server {
 public:
  Server(ServerConfig config, std::shared_ptr<const Registry> registry);
  ~Server();  // stops
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts serving. False with `error` set on a bad or refused
  // address or a port already in use.
  bool start(std::string* error);
  // Closes the listener and every connection, drops open windows, joins threads.
  void stop();
  // The bound port (after start()).
  uint16_t port() const;

 private:
  struct Impl;
  // Started by another process: this one is a fork child of it.
  bool inherited() const;

  std::unique_ptr<Impl> impl_;
};

// For a fork child, while only the forking thread runs: closes the
// child's copies of every server's listening socket and connections (a
// daemon must not keep the parent's port bound and accepting with nobody
// serving it, nor hold clients' connections open). The child's Server
// objects then stop without joining or destroying anything.
void forget_servers_after_fork();

}  // namespace cpprof::http
