#include "sources/cpu/cpu_profiler.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "support/cpu_time.h"
#include "symbolize/symbolizer.h"

namespace cpprof::sources {
namespace {

using test::live_timers;
using test::spin_cpu_ns;
using test::thread_cpu_ns;

using namespace std::chrono_literals;

[[gnu::noinline]] void spin_cpu(std::chrono::milliseconds cpu) {
  timespec start{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start);
  volatile uint64_t x = 1;
  for (;;) {
    for (int i = 0; i < 10000; ++i) x = x * 3 + 1;
    timespec now{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    auto used = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
    if (used >= cpu.count()) return;
  }
}

TEST(CpuProfiler, ThreadsComingAndGoingDuringAWindowLeaveNoTimerBehind) {
  if (live_timers() != 0) GTEST_SKIP() << "/proc/self/timers unavailable or not empty";
  symbolize::Symbolizer symbolizer;
  CpuProfiler cpu(symbolizer, {.hz = 1000});
  std::string error;
  auto window = cpu.open_window(&error);
  ASSERT_NE(window, nullptr) << error;
  std::atomic<bool> stop{false};
  std::thread churn([&] {
    while (!stop) {
      std::vector<std::thread> batch;
      for (int i = 0; i < 8; ++i) batch.emplace_back([] { spin_cpu(2ms); });
      for (auto& t : batch) t.join();
    }
  });
  spin_cpu(300ms);
  std::this_thread::sleep_for(300ms);
  stop = true;
  churn.join();
  profile::Profile p = cpu.finish(window);
  EXPECT_FALSE(p.samples.empty());
  EXPECT_EQ(live_timers(), 0) << "a timer outlived its window";
}

TEST(CpuProfiler, RefusesToTakeSigprofFromAProgramThatHandlesIt) {
  struct sigaction host {};
  host.sa_handler = [](int) {};
  sigemptyset(&host.sa_mask);
  ASSERT_EQ(sigaction(SIGPROF, &host, nullptr), 0);
  symbolize::Symbolizer symbolizer;
  CpuProfiler cpu(symbolizer, {});
  std::string error;
  EXPECT_EQ(cpu.open_window(&error), nullptr);
  EXPECT_NE(error.find("own SIGPROF handler"), std::string::npos) << error;
  struct sigaction now {};
  sigaction(SIGPROF, nullptr, &now);
  EXPECT_EQ(now.sa_handler, host.sa_handler) << "the program's handler was replaced";
  signal(SIGPROF, SIG_DFL);
}

TEST(CpuProfiler, AChildForkedDuringAWindowDoesNotSample) {
  symbolize::Symbolizer symbolizer;
  CpuProfiler cpu(symbolizer, {.hz = 1000});
  std::string error;
  auto window = cpu.open_window(&error);
  ASSERT_NE(window, nullptr) << error;
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // A new thread in the child must get no timer, and no window opens.
    std::thread t([] { spin_cpu(50ms); });
    std::this_thread::sleep_for(20ms);
    int timers = live_timers();
    t.join();
    std::string child_error;
    bool refused = cpu.open_window(&child_error) == nullptr;
    _exit(timers == 0 && refused ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  spin_cpu(50ms);
  EXPECT_FALSE(cpu.finish(window).samples.empty()) << "the parent keeps sampling";
}

}  // namespace
}  // namespace cpprof::sources
