#include "sources/cpu/thread_timers.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "capture/signal_safe.h"
#include "capture/thread_table.h"
#include "support/cpu_time.h"

namespace cpprof::sources {
namespace {

using test::live_timers;
using test::spin_cpu_ns;
using test::thread_cpu_ns;

constexpr int kTestSignal = SIGUSR2;
constexpr int kThreads = 4;

std::atomic<int> g_tids[kThreads];
std::atomic<int> g_hits[kThreads];

void count_signal(int) {
  int tid = capture::current_tid();
  for (int i = 0; i < kThreads; ++i) {
    if (g_tids[i].load() == tid) ++g_hits[i];
  }
}

class ThreadTimers : public ::testing::Test {
 protected:
  void SetUp() override {
    struct sigaction action {};
    action.sa_handler = count_signal;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    ASSERT_EQ(sigaction(kTestSignal, &action, &previous_), 0);
    for (int i = 0; i < kThreads; ++i) g_tids[i] = g_hits[i] = 0;
    std::string why;
    perf_usable_ = perf_events_usable(&why);
    why_ = why;
  }
  void TearDown() override { sigaction(kTestSignal, &previous_, nullptr); }

  struct sigaction previous_ {};
  bool perf_usable_ = false;
  std::string why_;
};

// Threads that register, wait until told, burn `burn_ns` of CPU one after
// the other (so that each has a CPU to itself: CPU-time timers fire seldom
// under contention), then wait until released; their slots stay valid in
// between.
class Workers {
 public:
  explicit Workers(int n) {
    for (int i = 0; i < n; ++i) {
      threads_.emplace_back([this, i] {
        g_tids[i] = capture::current_tid();
        slots_[i] = capture::current_thread_slot();
        ++ready_;
        while (!burn_ || done_ != i) std::this_thread::sleep_for(std::chrono::microseconds(200));
        spin_cpu_ns(burn_ns_);
        ++done_;
        while (!release_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      });
    }
    while (ready_ < n) std::this_thread::yield();
  }
  ~Workers() {
    burn_ = true;  // with burn_ns_ 0 if burn() was never called
    release_ = true;
    for (std::thread& t : threads_) t.join();
  }
  capture::ThreadSlot* slot(int i) { return slots_[i]; }
  void burn(int64_t ns) {
    burn_ns_ = ns;
    burn_ = true;
    while (done_ < static_cast<int>(threads_.size())) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

 private:
  std::vector<std::thread> threads_;
  capture::ThreadSlot* slots_[kThreads] = {};
  std::atomic<int> ready_{0};
  std::atomic<int> done_{0};
  std::atomic<bool> burn_{false};
  std::atomic<bool> release_{false};
  std::atomic<int64_t> burn_ns_{0};
};

TEST_F(ThreadTimers, APerfArmedSlotHoldsAHighDescriptorThatDisarmCloses) {
  if (!perf_usable_) GTEST_SKIP() << why_;
  PerfFdRange range = current_perf_fd_range();
  set_perf_fd_range(range);
  Workers workers(1);
  capture::ThreadSlot* slot = workers.slot(0);
  ASSERT_NE(slot, nullptr);
  ASSERT_TRUE(arm_thread_timer(slot, kTestSignal, 1000000, /*perf=*/true));
  ASSERT_EQ(slot->timer_state.load(), capture::kPerfArmed);
  int fd = static_cast<int>(slot->timer.load());
  EXPECT_GE(fd, range.base);
  EXPECT_LT(fd, range.limit);
  EXPECT_EQ(open_perf_events(), 1);
  EXPECT_EQ(armed_thread_timers(), 0);
  workers.burn(200000000);
  EXPECT_GE(g_hits[0].load(), 180) << "1000 Hz for 0.2 CPU-seconds";
  disarm_thread_timer(slot, /*final=*/false);
  EXPECT_EQ(slot->timer_state.load(), capture::kTimerIdle);
  EXPECT_EQ(fcntl(fd, F_GETFD), -1) << "the descriptor outlived its disarm";
  EXPECT_EQ(open_perf_events(), 0);
}

TEST_F(ThreadTimers, ThreadsBeyondTheCapGetCpuTimeTimersAndAllAreSampled) {
  if (!perf_usable_) GTEST_SKIP() << why_;
  PerfFdRange whole = current_perf_fd_range();
  ASSERT_GT(whole.size(), 2);
  set_perf_fd_range({whole.base, whole.base + 2});  // a cap of two
  Workers workers(kThreads);
  int perf = 0;
  int timers = 0;
  for (int i = 0; i < kThreads; ++i) {
    ASSERT_TRUE(arm_thread_timer(workers.slot(i), kTestSignal, 1000000, /*perf=*/true));
    int state = workers.slot(i)->timer_state.load();
    perf += state == capture::kPerfArmed;
    timers += state == capture::kTimerArmed;
  }
  EXPECT_EQ(perf, 2);
  EXPECT_EQ(timers, kThreads - 2);
  EXPECT_EQ(open_perf_events(), 2);
  EXPECT_EQ(armed_thread_timers(), kThreads - 2);
  workers.burn(100000000);
  for (int i = 0; i < kThreads; ++i) {
    // Timers deliver at most once per kernel tick (>= 100 Hz anywhere).
    EXPECT_GE(g_hits[i].load(), 8) << "thread " << i << " was not sampled";
  }
  for (int i = 0; i < kThreads; ++i) disarm_thread_timer(workers.slot(i), false);
  EXPECT_EQ(open_perf_events(), 0);
  EXPECT_EQ(armed_thread_timers(), 0);
  set_perf_fd_range(whole);
}

TEST_F(ThreadTimers, WithoutPerfASlotGetsATimer) {
  set_perf_fd_range(current_perf_fd_range());
  Workers workers(1);
  ASSERT_TRUE(arm_thread_timer(workers.slot(0), kTestSignal, 1000000, /*perf=*/false));
  EXPECT_EQ(workers.slot(0)->timer_state.load(), capture::kTimerArmed);
  EXPECT_EQ(open_perf_events(), 0);
  disarm_thread_timer(workers.slot(0), false);
  EXPECT_EQ(armed_thread_timers(), 0);
}

TEST_F(ThreadTimers, AFinalDisarmClosesTheDescriptorAndTheSlotStaysUnarmable) {
  if (!perf_usable_) GTEST_SKIP() << why_;
  set_perf_fd_range(current_perf_fd_range());
  Workers workers(1);
  capture::ThreadSlot* slot = workers.slot(0);
  ASSERT_TRUE(arm_thread_timer(slot, kTestSignal, 1000000, true));
  int fd = static_cast<int>(slot->timer.load());
  disarm_thread_timer(slot, /*final=*/true);  // as the exiting thread does
  EXPECT_EQ(fcntl(fd, F_GETFD), -1);
  EXPECT_FALSE(arm_thread_timer(slot, kTestSignal, 1000000, true));
  EXPECT_EQ(open_perf_events(), 0);
}

}  // namespace
}  // namespace cpprof::sources
