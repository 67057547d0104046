#include "http/server.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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

// The ports this process's servers listen on, so that a fork child can find
// the sockets it inherited (the listener and open connections all have one
// of these as their local port).
constexpr int kMaxServers = 16;
std::atomic<uint16_t> g_ports[kMaxServers];

void remember_port(uint16_t port) {
  for (std::atomic<uint16_t>& slot : g_ports) {
    uint16_t empty = 0;
    if (slot.compare_exchange_strong(empty, port)) return;
  }
}

void forget_port(uint16_t port) {
  for (std::atomic<uint16_t>& slot : g_ports) {
    uint16_t mine = port;
    if (slot.compare_exchange_strong(mine, 0)) return;
  }
}

// Whether `fd` is a TCP socket whose local port is one of our servers'.
bool is_our_socket(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return false;
  uint16_t port = 0;
  if (address.ss_family == AF_INET) {
    port = ntohs(reinterpret_cast<sockaddr_in*>(&address)->sin_port);
  } else if (address.ss_family == AF_INET6) {
    port = ntohs(reinterpret_cast<sockaddr_in6*>(&address)->sin6_port);
  } else {
    return false;
  }
  int type = 0;
  socklen_t type_length = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_length) != 0 || type != SOCK_STREAM) {
    return false;
  }
  for (const std::atomic<uint16_t>& slot : g_ports) {
    if (port != 0 && slot.load(std::memory_order_relaxed) == port) return true;
  }
  return false;
}

// Kept, never destroyed: servers a fork child inherited (their threads are
// the parent's, so they can be neither joined nor destroyed).
std::vector<const void*>* g_inherited = nullptr;

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
  pid_t owner = 0;  // the process that started it; a fork child inherits it

  void stop_locked();
};

Server::Server(ServerConfig config, std::shared_ptr<const Registry> registry)
    : impl_(std::make_unique<Impl>()) {
  impl_->config = std::move(config);
  impl_->registry = registry ? std::move(registry) : std::make_shared<Registry>();
}

Server::~Server() { stop(); }

bool Server::inherited() const { return impl_->running && impl_->owner != getpid(); }

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
  impl.owner = getpid();
  remember_port(impl.port);
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
  if (inherited()) {
    // In a fork child: leave the parent's server (its sockets were closed
    // here when the child started, see forget_servers_after_fork).
    if (g_inherited == nullptr) g_inherited = new std::vector<const void*>;
    g_inherited->push_back(impl_.release());
    impl_ = std::make_unique<Impl>();
    return;
  }
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
  forget_port(port);
  running = false;
}

void forget_servers_after_fork() {
  bool any = false;
  for (const std::atomic<uint16_t>& slot : g_ports)
    any |= slot.load(std::memory_order_relaxed) != 0;
  if (!any) return;  // nothing served here: no descriptor to look for
  const int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return;
  const int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  alignas(8) char entries[4096];
  long n = 0;
  while (null >= 0 && (n = syscall(SYS_getdents64, dir, entries, sizeof entries)) > 0) {
    for (long at = 0; at < n;) {
      uint16_t record = 0;
      std::memcpy(&record, entries + at + 16, sizeof record);  // d_reclen
      const char* name = entries + at + 19;                    // d_name
      at += record;
      if (name[0] < '0' || name[0] > '9') continue;
      const int fd = std::atoi(name);
      if (fd == dir || fd == null || !is_our_socket(fd)) continue;
      dup3(null, fd, O_CLOEXEC);  // the fd stays valid (asio's), the socket is gone
    }
  }
  if (null >= 0) close(null);
  close(dir);
  for (std::atomic<uint16_t>& slot : g_ports) slot.store(0, std::memory_order_relaxed);
}

uint16_t Server::port() const { return impl_->port; }

}  // namespace cpprof::http
