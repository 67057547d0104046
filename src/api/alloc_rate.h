// The allocation rate shown on the index page: allocations per second over
// about the last ten seconds, from the process counters read at each look.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <utility>

namespace cpprof::api {

class AllocRate {
 public:
  // Starts with a reading now, so the first look has a rate.
  AllocRate();

  // Records `allocs` (the process total) at `now_ns` (CLOCK_MONOTONIC) and
  // describes the rate since the reading closest to ten seconds ago, e.g.
  // "1234/s over the last 10 s". Thread-safe.
  std::string update(uint64_t allocs, int64_t now_ns);

 private:
  std::mutex mu_;
  std::deque<std::pair<int64_t, uint64_t>> readings_;  // (time, allocs), oldest first
};

// CLOCK_MONOTONIC in nanoseconds.
int64_t monotonic_ns();

}  // namespace cpprof::api
