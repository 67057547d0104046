#include "sources/cpu/cpu_profiler.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "capture/cpu_signal.h"
#include "sources/cpu/thread_timers.h"
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

std::atomic<int> g_host_sigprofs{0};

TEST(CpuProfiler, SamplesOnAnotherSignalWhenTheProgramHandlesSigprof) {
  // The program profiles itself with ITIMER_PROF, as GNU sort's handlers
  // or a home-made profiler would own SIGPROF.
  struct sigaction host {};
  host.sa_handler = [](int) { g_host_sigprofs.fetch_add(1, std::memory_order_relaxed); };
  sigemptyset(&host.sa_mask);
  host.sa_flags = SA_RESTART;
  ASSERT_EQ(sigaction(SIGPROF, &host, nullptr), 0);
  itimerval every_10ms{{0, 10000}, {0, 10000}};
  ASSERT_EQ(setitimer(ITIMER_PROF, &every_10ms, nullptr), 0);

  symbolize::Symbolizer symbolizer;
  CpuProfiler cpu(symbolizer, {.hz = 200});
  std::string error;
  auto window = cpu.open_window(&error);
  ASSERT_NE(window, nullptr) << error;
  EXPECT_NE(capture::cpu_signal(), SIGPROF);
  EXPECT_GE(capture::cpu_signal(), SIGRTMIN);
  EXPECT_NE(cpu.stats().mode.find("the program handles SIGPROF"), std::string::npos)
      << cpu.stats().mode;
  spin_cpu_ns(300000000);
  profile::Profile p = cpu.finish(window);

  itimerval off{};
  setitimer(ITIMER_PROF, &off, nullptr);
  EXPECT_FALSE(p.samples.empty()) << "no samples on the other signal";
  EXPECT_GT(g_host_sigprofs.load(), 10) << "the program's own SIGPROF handler stopped firing";
  struct sigaction now {};
  sigaction(SIGPROF, nullptr, &now);
  EXPECT_EQ(now.sa_handler, host.sa_handler) << "the program's handler was replaced";
  signal(SIGPROF, SIG_IGN);  // a late ITIMER_PROF signal must not kill the test
}

std::atomic<int> g_takeover_signals{0};

// The program's own handler, installed on cpprof's signal during a window.
void count_takeover_signal(int) { g_takeover_signals.fetch_add(1, std::memory_order_relaxed); }

class SignalTakeover : public ::testing::TestWithParam<CpuMode> {};

TEST_P(SignalTakeover, GivesTheSignalUpAndSamplesOnAnotherNextTime) {
  symbolize::Symbolizer symbolizer;
  CpuProfiler cpu(symbolizer, {.hz = 200, .mode = GetParam()});
  std::string error;
  auto window = cpu.open_window(&error);
  if (window == nullptr && GetParam() == CpuMode::kPerf) GTEST_SKIP() << error;
  ASSERT_NE(window, nullptr) << error;
  const int taken = capture::cpu_signal();
  spin_cpu(300ms);
  // The program takes the signal, without a timer of its own: every signal
  // its handler sees from now on is one of cpprof's.
  struct sigaction host {};
  host.sa_handler = count_takeover_signal;
  sigemptyset(&host.sa_mask);
  host.sa_flags = SA_RESTART;
  ASSERT_EQ(sigaction(taken, &host, nullptr), 0);
  spin_cpu(400ms);  // the drain thread looks every 100 ms
  EXPECT_EQ(armed_thread_timers() + open_perf_events(), 0) << "cpprof's triggers outlived it";
  EXPECT_EQ(cpu.stats().windows_open, 0);
  const int seen = g_takeover_signals.load();
  spin_cpu(300ms);
  EXPECT_EQ(g_takeover_signals.load(), seen) << "cpprof still signals the program's handler";

  profile::Profile p = cpu.finish(window, &error);
  EXPECT_NE(error.find("installed its own"), std::string::npos) << error;
  const int next = capture::cpu_signal();
  EXPECT_NE(next, taken);
  EXPECT_NE(error.find("the next profile samples on signal " + std::to_string(next)),
            std::string::npos)
      << error;
  // (CPU-time timers on a busy machine may give none in 300 ms: perf only.)
  if (GetParam() == CpuMode::kPerf) {
    EXPECT_FALSE(p.samples.empty()) << "the samples from before are kept";
  }

  window = cpu.open_window(&error);
  ASSERT_NE(window, nullptr) << error;
  EXPECT_EQ(capture::cpu_signal(), next);
  spin_cpu(800ms);
  p = cpu.finish(window, &error);
  EXPECT_EQ(error, "");
  EXPECT_FALSE(p.samples.empty()) << "no samples on signal " << next;
  EXPECT_EQ(g_takeover_signals.load(), seen) << "the next window signalled the program's handler";
  struct sigaction now {};
  sigaction(taken, nullptr, &now);
  EXPECT_EQ(now.sa_handler, host.sa_handler) << "cpprof took the program's handler back";
}

INSTANTIATE_TEST_SUITE_P(Modes, SignalTakeover, ::testing::Values(CpuMode::kPerf, CpuMode::kTimer),
                         [](const auto& param_info) {
                           return param_info.param == CpuMode::kPerf ? "Perf" : "Timer";
                         });

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
