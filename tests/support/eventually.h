// eventually(): polls a condition in tests that wait for something the
// server does on its own threads, with a deadline instead of a fixed sleep.
#pragma once

#include <chrono>
#include <thread>

namespace cpprof::test {

// Polls `condition` every 10 ms for up to `limit`; true as soon as it holds.
template <class Condition>
bool eventually(Condition condition,
                std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace cpprof::test
