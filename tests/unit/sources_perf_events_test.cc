#include "sources/cpu/perf_events.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <thread>

#include "support/cpu_time.h"
#include "support/deny_perf.h"

namespace cpprof::sources {
namespace {

using test::live_timers;
using test::spin_cpu_ns;
using test::thread_cpu_ns;

constexpr int kTestSignal = SIGUSR2;

std::atomic<int> g_tid_a{0};
std::atomic<int> g_tid_b{0};
std::atomic<int> g_hits_a{0};
std::atomic<int> g_hits_b{0};
std::atomic<int> g_hits_other{0};
std::atomic<int> g_last_code{0};

void count_signal(int, siginfo_t* info, void*) {
  int tid = static_cast<int>(syscall(SYS_gettid));
  if (tid == g_tid_a.load()) {
    ++g_hits_a;
  } else if (tid == g_tid_b.load()) {
    ++g_hits_b;
  } else {
    ++g_hits_other;
  }
  g_last_code = info->si_code;
}

class PerfEvents : public ::testing::Test {
 protected:
  void SetUp() override {
    struct sigaction action {};
    action.sa_sigaction = count_signal;
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&action.sa_mask);
    ASSERT_EQ(sigaction(kTestSignal, &action, &previous_), 0);
    g_tid_a = g_tid_b = 0;
    g_hits_a = g_hits_b = g_hits_other = 0;
    std::string why;
    if (!perf_events_usable(&why)) GTEST_SKIP() << why;
  }
  void TearDown() override { sigaction(kTestSignal, &previous_, nullptr); }

  struct sigaction previous_ {};
};

int self_tid() { return static_cast<int>(syscall(SYS_gettid)); }

// The number the next open() would get.
int lowest_free_fd() {
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  close(fd);
  return fd;
}

TEST(PerfFdRange, PlacesEventsHighUnderTheSoftLimit) {
  PerfFdRange common = perf_fd_range(1024);
  EXPECT_EQ(common.base, 752);
  EXPECT_EQ(common.limit, 1008);
  PerfFdRange here = perf_fd_range(20000);
  EXPECT_EQ(here.base, 16128);
  EXPECT_EQ(here.limit, 16384);
  PerfFdRange small = perf_fd_range(512);
  EXPECT_EQ(small.size(), 128) << "a quarter of the limit";
  EXPECT_EQ(small.limit, 496);
}

TEST(PerfFdRange, NeverGoesBelowTheFloorAndLeavesNoRoomUnderASmallLimit) {
  PerfFdRange tight = perf_fd_range(300);
  EXPECT_EQ(tight.base, 256);
  EXPECT_EQ(tight.limit, 284);
  for (uint64_t soft : {0ull, 16ull, 100ull, 256ull, 272ull}) {
    EXPECT_EQ(perf_fd_range(soft).size(), 0) << soft;
  }
  for (uint64_t soft = 273; soft < 70000; soft += 97) {
    PerfFdRange r = perf_fd_range(soft);
    ASSERT_GE(r.base, 256) << soft;
    ASSERT_LE(r.limit, static_cast<int64_t>(soft) - 16) << soft;
    ASSERT_LE(r.size(), 256) << soft;
  }
}

TEST(PerfFdRange, StaysUnderTheCeilingForHugeLimits) {
  for (uint64_t soft : {uint64_t{1} << 20, uint64_t{RLIM_INFINITY}}) {
    PerfFdRange r = perf_fd_range(soft);
    EXPECT_EQ(r.limit, 16384) << soft;
    EXPECT_EQ(r.size(), 256) << soft;
  }
}

TEST_F(PerfEvents, DescriptorLandsInTheRangeAndTheHostsNextFdDoesNotMove) {
  PerfFdRange range = current_perf_fd_range();
  ASSERT_GT(range.size(), 0);
  int next_before = lowest_free_fd();
  int fd = open_perf_event(self_tid(), kTestSignal, 1000000, range);
  ASSERT_GE(fd, 0) << "errno " << -fd;
  EXPECT_GE(fd, range.base);
  EXPECT_LT(fd, range.limit);
  EXPECT_GE(fd, 256) << "never a low number";
  EXPECT_NE(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0) << "must not leak into exec'd programs";
  EXPECT_EQ(lowest_free_fd(), next_before) << "the low descriptor was not given back";
  close_perf_event(fd);
  EXPECT_EQ(fcntl(fd, F_GETFD), -1);
}

TEST_F(PerfEvents, AFullRangeIsRefusedWithoutLeakingADescriptor) {
  PerfFdRange whole = current_perf_fd_range();
  ASSERT_GT(whole.size(), 2);
  PerfFdRange two{whole.base, whole.base + 2};
  int a = open_perf_event(self_tid(), kTestSignal, 1000000, two);
  int b = open_perf_event(self_tid(), kTestSignal, 1000000, two);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  int next_before = lowest_free_fd();
  EXPECT_EQ(open_perf_event(self_tid(), kTestSignal, 1000000, two), -EMFILE);
  EXPECT_EQ(fcntl(two.limit, F_GETFD), -1) << "a descriptor was left above the range";
  EXPECT_EQ(lowest_free_fd(), next_before);
  EXPECT_EQ(open_perf_event(self_tid(), kTestSignal, 1000000, PerfFdRange{}), -EMFILE);
  close_perf_event(a);
  close_perf_event(b);
}

TEST_F(PerfEvents, DeliverEveryPeriodToTheirThreadOnly) {
  // Opened from this thread for thread A, as the sampler does; B burns
  // alongside without an event.
  std::atomic<bool> go{false};
  std::atomic<int> fd{-1};
  constexpr int64_t kBurnNs = 500000000;
  std::thread a([&] {
    g_tid_a = self_tid();
    while (!go) {
    }
    spin_cpu_ns(kBurnNs);
  });
  std::thread b([&] {
    g_tid_b = self_tid();
    while (!go) {
    }
    spin_cpu_ns(kBurnNs);
  });
  while (g_tid_a == 0 || g_tid_b == 0) std::this_thread::yield();
  fd = open_perf_event(g_tid_a, kTestSignal, 1000000, current_perf_fd_range());
  go = true;
  a.join();
  b.join();
  ASSERT_GE(fd.load(), 0) << "errno " << -fd.load();
  close_perf_event(fd);
  // 1000 Hz for 0.5 CPU-seconds: 500 signals (a few land after the check).
  EXPECT_GE(g_hits_a.load(), 450);
  EXPECT_LE(g_hits_a.load(), 520);
  EXPECT_EQ(g_hits_b.load(), 0);
  EXPECT_EQ(g_hits_other.load(), 0);
  EXPECT_EQ(g_last_code.load(), POLL_IN) << "si_code tells the handler it is no timer";
}

TEST_F(PerfEvents, ClosingStopsTheEventEvenWhileACopyOfTheDescriptorLives) {
  g_tid_a = self_tid();
  int fd = open_perf_event(self_tid(), kTestSignal, 1000000, current_perf_fd_range());
  ASSERT_GE(fd, 0);
  spin_cpu_ns(50000000);
  EXPECT_GT(g_hits_a.load(), 20);
  // As a child forked without our atfork handler would hold it.
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  ASSERT_GE(copy, 0);
  close_perf_event(fd);
  int after_close = g_hits_a.load();
  spin_cpu_ns(100000000);
  EXPECT_LE(g_hits_a.load() - after_close, 1) << "the copy kept the event signalling";
  close(copy);
}

// A perf_event_open that fails as under kernel.perf_event_paranoid=3 (or a
// seccomp profile): the probe says so and events cannot be opened.
TEST(PerfEventsDenied, ProbeSaysWhyAndOpeningFails) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        if (!test::deny_perf_event_open(EACCES)) _exit(2);
        std::string why;
        if (perf_events_usable(&why)) _exit(3);
        fprintf(stderr, "%s\n", why.c_str());
        int fd = open_perf_event(self_tid(), kTestSignal, 1000000, current_perf_fd_range());
        _exit(fd == -EACCES ? 0 : 4);
      },
      ::testing::ExitedWithCode(0), "perf_event_open.*Permission denied.*perf_event_paranoid");
}

}  // namespace
}  // namespace cpprof::sources
