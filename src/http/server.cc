#include "http/server.h"

#include <pthread.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>

#include <boost/asio/executor_work_guard.hpp>

#include "http/listen_address.h"
#include "http/listener.h"
#include "http/server_state.h"
#include "http/session.h"

namespace cpprof::http {
namespace {

namespace asio = boost::asio;

// Runs `io` until stop(). A handler that throws (a user callback, say)
// costs that request, not the server.
void run_until_stopped(asio::io_context& io) {
  auto guard = asio::make_work_guard(io);
  while (!io.stopped()) {
    try {
      io.run();
    } catch (...) {
    }
  }
}

// Names the thread (15 characters at most, Linux's limit) before running
// `body`, whoever spawns it.
std::function<void()> named(std::string name, std::function<void()> body) {
  return [name = std::move(name), body = std::move(body)] {
    pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
    body();
  };
}

std::thread default_spawn(std::string /*name*/, std::function<void()> body) {
  return std::thread(std::move(body));
}

}  // namespace

struct Server::Impl {
  ServerConfig config;
  std::shared_ptr<const Registry> registry;
  std::mutex mu;  // serializes start() and stop()
  // Declared before `listener`: the listener's socket belongs to state's io.
  std::unique_ptr<ServerState> state;
  std::shared_ptr<Listener> listener;
  std::thread io_thread;
  std::thread worker_thread;
  uint16_t port = 0;
  bool running = false;

  void stop_locked();
};

Server::Server(ServerConfig config, std::shared_ptr<const Registry> registry)
    : impl_(std::make_unique<Impl>()) {
  impl_->config = std::move(config);
  impl_->registry = registry ? std::move(registry) : std::make_shared<Registry>();
}

Server::~Server() { stop(); }

bool Server::start(std::string* error) {
  std::string ignored;
  if (error == nullptr) error = &ignored;
  std::lock_guard<std::mutex> lock(impl_->mu);
  Impl& impl = *impl_;
  if (impl.running) {
    *error = "cpprof: the server is already running";
    return false;
  }
  asio::ip::address address;
  if (!resolve_listen_address(impl.config.host, impl.config.allow_remote, &address, error)) {
    return false;
  }
  // Nonsense limits would lock every client out or time out at once.
  ServerConfig config = impl.config;
  config.max_seconds = std::max(config.max_seconds, 1);
  config.max_windows = std::max(config.max_windows, 0);
  config.max_connections = std::max(config.max_connections, 1);
  if (config.idle_timeout_seconds <= 0) config.idle_timeout_seconds = 30;
  impl.state = std::make_unique<ServerState>(std::move(config), impl.registry);
  impl.listener = std::make_shared<Listener>(*impl.state);
  if (!impl.listener->open(address, impl.config.port, error)) {
    impl.listener.reset();
    impl.state.reset();
    return false;
  }
  impl.port = impl.listener->port();
  impl.listener->start();
  auto spawn = impl.config.spawn_thread ? impl.config.spawn_thread : default_spawn;
  ServerState* state = impl.state.get();
  try {
    impl.io_thread =
        spawn("cpprof-http", named("cpprof-http", [state] { run_until_stopped(state->io); }));
    impl.worker_thread = spawn(
        "cpprof-worker", named("cpprof-worker", [state] { run_until_stopped(state->worker); }));
  } catch (const std::exception& e) {
    *error = std::string("cpprof: cannot start the server's threads: ") + e.what();
    impl.running = true;
    impl.stop_locked();
    return false;
  }
  impl.running = true;
  return true;
}

void Server::stop() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->stop_locked();
}

void Server::Impl::stop_locked() {
  if (!running) return;
  const std::thread::id self = std::this_thread::get_id();
  if (self == io_thread.get_id() || self == worker_thread.get_id()) {
    // Joining ourselves cannot work, and leaving the threads running on
    // freed state would corrupt the host later; say so loudly instead.
    std::fputs("cpprof: http::Server::stop() called on the server's own thread\n", stderr);
    std::abort();
  }
  ServerState* s = state.get();
  Listener* l = listener.get();
  // Close everything on the io thread, where sockets and timers live; open
  // windows are abandoned there, dropping their collections.
  asio::post(s->io, [s, l] {
    l->close();
    for (const std::weak_ptr<Session>& weak : s->sessions) {
      if (std::shared_ptr<Session> session = weak.lock()) session->close();
    }
    s->sessions.clear();
    s->io.stop();
  });
  if (io_thread.joinable()) io_thread.join();
  // A job in progress completes; queued ones are destroyed with the state.
  s->worker.stop();
  if (worker_thread.joinable()) worker_thread.join();
  listener.reset();
  state.reset();
  running = false;
}

uint16_t Server::port() const { return impl_->port; }

}  // namespace cpprof::http
