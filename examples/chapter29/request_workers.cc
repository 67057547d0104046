// A request handler that leaks a thread per request, and its fix
// (request_workers.h).
#include "request_workers.h"

#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

namespace chapter29 {
namespace {

std::atomic<int> g_waiting{0};
std::atomic<uint64_t> g_recorded{0};
std::atomic<uint64_t> g_next_request{1};

}  // namespace

uint64_t wait_for_result(PendingResult& pending) {
  g_waiting.fetch_add(1, std::memory_order_relaxed);
  std::unique_lock lock(pending.mu);
  pending.published.wait(lock, [&] { return pending.done; });
  g_waiting.fetch_sub(1, std::memory_order_relaxed);
  return pending.value;
}

std::thread start_worker_for_request(std::shared_ptr<PendingResult> pending) {
  return std::thread([pending = std::move(pending)] {
    pthread_setname_np(pthread_self(), "worker");
    g_recorded.fetch_add(wait_for_result(*pending), std::memory_order_relaxed);
  });
}

void publish_result(PendingResult& pending, uint64_t value) {
  {
    std::lock_guard lock(pending.mu);
    pending.value = value;
    pending.done = true;
  }
  pending.published.notify_all();
}

void handle_request_leaky() {
  auto pending = std::make_shared<PendingResult>();
  start_worker_for_request(pending).detach();
  // The request is answered here, and the result the worker waits for is
  // never published: nothing will ever signal `pending`.
}

void handle_request_fixed() {
  auto pending = std::make_shared<PendingResult>();
  std::thread worker = start_worker_for_request(pending);
  publish_result(*pending, g_next_request.fetch_add(1, std::memory_order_relaxed));
  worker.join();
}

int waiting_workers() { return g_waiting.load(std::memory_order_relaxed); }

uint64_t recorded_results() { return g_recorded.load(std::memory_order_relaxed); }

}  // namespace chapter29
