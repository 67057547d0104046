// What every part of a running server shares: configuration, registry, the
// two io_contexts (one per server thread) and the limits' counters.
//
// Lifetime: owned by Server::Impl from start() to stop(). Sessions and
// requests hold plain references; they cannot outlive it because every
// handler that owns them is run or destroyed when the io_contexts are
// (members are destroyed bottom-up: worker jobs first, then io handlers).
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "http/registry.h"
#include "http/server.h"

namespace cpprof::http {

class Session;

// Largest request head and body we read; beyond them 431 / 413.
inline constexpr size_t kMaxHeaderBytes = 16 * 1024;
inline constexpr size_t kMaxBodyBytes = 64 * 1024;
// How long writing one response may take before the client is dropped.
inline constexpr int kWriteTimeoutSeconds = 120;

// One of the max_windows concurrent windows; released when destroyed.
class WindowSlot {
 public:
  // A slot, or nullopt when `max` are taken.
  static std::optional<WindowSlot> try_acquire(std::atomic<int>& in_use, int max) {
    int n = in_use.load(std::memory_order_relaxed);
    while (n < max) {
      if (in_use.compare_exchange_weak(n, n + 1, std::memory_order_relaxed)) {
        return WindowSlot(&in_use);
      }
    }
    return std::nullopt;
  }
  WindowSlot(WindowSlot&& other) noexcept : in_use_(std::exchange(other.in_use_, nullptr)) {}
  WindowSlot& operator=(WindowSlot&&) = delete;
  ~WindowSlot() {
    if (in_use_ != nullptr) in_use_->fetch_sub(1, std::memory_order_relaxed);
  }

 private:
  explicit WindowSlot(std::atomic<int>* in_use) : in_use_(in_use) {}
  std::atomic<int>* in_use_;
};

struct ServerState {
  ServerState(ServerConfig server_config, std::shared_ptr<const Registry> profiles)
      : config(std::move(server_config)), registry(std::move(profiles)) {}

  // Runs `fn` on the worker thread (finishing, encoding, symbolizing).
  template <class Fn>
  void on_worker(Fn&& fn) {
    boost::asio::post(worker, std::forward<Fn>(fn));
  }
  // Runs `fn` on the io thread (everything that touches sockets and timers).
  template <class Fn>
  void on_io(Fn&& fn) {
    boost::asio::post(io, std::forward<Fn>(fn));
  }

  const ServerConfig config;
  const std::shared_ptr<const Registry> registry;
  std::atomic<int> windows_in_use{0};
  // Live connections, for max_connections and for closing them in stop().
  // Io thread only; expired entries are pruned on each accept.
  std::vector<std::weak_ptr<Session>> sessions;
  boost::asio::io_context io;
  boost::asio::io_context worker;
};

}  // namespace cpprof::http
