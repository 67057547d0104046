#include "api/alloc_rate.h"

#include <time.h>

#include <cmath>

#include "cpprof/alloc_stats.h"

namespace cpprof::api {
namespace {
constexpr int64_t kWindowNs = 10'000'000'000;
}

int64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

AllocRate::AllocRate() { readings_.emplace_back(monotonic_ns(), alloc_stats().allocs); }

std::string AllocRate::update(uint64_t allocs, int64_t now_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  // Keep the newest reading at least a window old, and everything after it.
  while (readings_.size() > 1 && now_ns - readings_[1].first >= kWindowNs) readings_.pop_front();
  const auto [then_ns, then_allocs] = readings_.front();
  readings_.emplace_back(now_ns, allocs);
  const double seconds = static_cast<double>(now_ns - then_ns) / 1e9;
  if (seconds < 0.001 || allocs < then_allocs) return "-";
  const double rate = static_cast<double>(allocs - then_allocs) / seconds;
  return std::to_string(std::llround(rate)) + "/s over the last " +
         std::to_string(std::llround(seconds)) + " s";
}

}  // namespace cpprof::api
