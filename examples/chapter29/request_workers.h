// A request handler that leaks a thread on every request, and its fix:
// the C++ form of Go's leaked goroutine (a goroutine blocked forever on a
// channel nobody will use again).
//
// Each request starts a worker thread, named "worker", that waits on a
// condition variable for the request's result so that it can record it.
// The leaky handler detaches the worker and returns without ever
// publishing a result, so the worker waits forever: one more blocked thread
// (and its stack) per request. The fixed handler publishes the result and
// joins the worker before returning.
//
// wait_for_result and start_worker_for_request are never inlined, so that
// they name the leak in a stack: a blocked worker's stack is
// wait_for_result called from the thread body defined in
// start_worker_for_request.
//
// Thread-safe: any number of threads may handle requests at once.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

namespace chapter29 {

// What a worker waits for: the result its request should publish.
struct PendingResult {
  std::mutex mu;
  std::condition_variable published;
  bool done = false;   // guarded by mu
  uint64_t value = 0;  // guarded by mu
};

// Blocks until `pending` is done and returns its value.
[[gnu::noinline]] uint64_t wait_for_result(PendingResult& pending);

// Starts a thread named "worker" that waits for `pending` and records it.
[[gnu::noinline]] std::thread start_worker_for_request(std::shared_ptr<PendingResult> pending);

// Sets `pending`'s value, marks it done and wakes its worker.
void publish_result(PendingResult& pending, uint64_t value);

// Starts a worker and detaches it; never publishes: the worker never ends.
void handle_request_leaky();

// Starts a worker, publishes the result and joins the worker.
void handle_request_fixed();

// Workers currently blocked in wait_for_result (leaked ones included).
int waiting_workers();

// The sum of the results workers have recorded.
uint64_t recorded_results();

}  // namespace chapter29
