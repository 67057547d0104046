// dump_threads() in this process: how each kind of thread is captured, and
// that a thread which cannot be captured without disturbing it is listed,
// marked, and left alone.
#include "sources/threads/thread_dump.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "capture/cpu_signal.h"
#include "sources/cpu/perf_events.h"
#include "sources/threads/thread_profiles.h"
#include "support/deny_perf.h"
#include "symbolize/symbolizer.h"

namespace cpprof::sources {
namespace {

std::atomic<bool> g_stop{false};
std::atomic<int> g_spinning{0};

[[gnu::noinline]] void spin_here() {
  g_spinning.fetch_add(1);
  volatile unsigned long x = 0;
  while (!g_stop.load(std::memory_order_relaxed)) x = x + 1;
}

[[gnu::noinline]] void spin_with_the_signal_blocked(std::atomic<uint64_t>* signals_seen) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, capture::cpu_signal());
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  spin_here();
  sigset_t pending;
  sigpending(&pending);
  signals_seen->store(sigismember(&pending, capture::cpu_signal()) ? 1 : 0);
}

[[gnu::noinline]] void sleep_in_pipe(int fd) {
  char byte;
  while (read(fd, &byte, 1) < 0) {
  }
}

const ThreadRecord* find(const ThreadDump& dump, int tid) {
  for (const ThreadRecord& record : dump.threads) {
    if (record.tid == tid) return &record;
  }
  return nullptr;
}

bool stack_has(const ThreadRecord& record, symbolize::Symbolizer& symbolizer,
               const std::string& function) {
  for (uint64_t address : record.stack) {
    for (const symbolize::Frame& frame : symbolizer.symbolize(address - 1)) {
      if (frame.function.find(function) != std::string::npos) return true;
    }
  }
  return false;
}

// Three threads: one blocked in read(), one spinning, one spinning with
// the CPU signal blocked. Dumps them, then stops them; `pending_after`
// tells whether a capture signal was left pending on the masked one.
struct Scenario {
  ThreadDump dump;
  int tids[3] = {0, 0, 0};
  bool signal_left_pending = true;
};

Scenario run_scenario() {
  Scenario scenario;
  int fds[2];
  if (pipe(fds) != 0) return scenario;
  std::atomic<int> tids[3] = {0, 0, 0};
  std::atomic<uint64_t> pending_after{2};
  g_stop = false;
  g_spinning = 0;
  std::thread blocked([&] {
    tids[0] = gettid();
    sleep_in_pipe(fds[0]);
  });
  std::thread running([&] {
    tids[1] = gettid();
    spin_here();
  });
  std::thread masked([&] {
    tids[2] = gettid();
    spin_with_the_signal_blocked(&pending_after);
  });
  while (g_spinning.load() < 2 || tids[0] == 0) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the reader reaches read()
  scenario.dump = dump_threads();
  g_stop = true;
  if (write(fds[1], "x", 1) != 1) std::abort();
  blocked.join();
  running.join();
  masked.join();
  for (int i = 0; i < 3; ++i) scenario.tids[i] = tids[i];
  scenario.signal_left_pending = pending_after.load() != 0;
  close(fds[0]);
  close(fds[1]);
  return scenario;
}

TEST(ThreadDump, CapturesBlockedThreadsFromProcAndRunningOnesByPerfSampling) {
  std::string why;
  if (!perf_events_usable(&why)) GTEST_SKIP() << "perf events not permitted here: " << why;
  const Scenario scenario = run_scenario();
  symbolize::Symbolizer symbolizer;
  const ThreadRecord* b = find(scenario.dump, scenario.tids[0]);
  const ThreadRecord* r = find(scenario.dump, scenario.tids[1]);
  const ThreadRecord* m = find(scenario.dump, scenario.tids[2]);
  ASSERT_NE(b, nullptr);
  ASSERT_NE(r, nullptr);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(b->source, StackSource::kBlocked);
  EXPECT_EQ(syscall_name(b->syscall), "read");
  EXPECT_EQ(b->state, 'S');
#ifndef CPPROF_SANITIZE  // ASan's read interceptor: see goroutine_profile_test.cc
  EXPECT_TRUE(stack_has(*b, symbolizer, "sleep_in_pipe")) << thread_traceback(*b, symbolizer);
#endif
  EXPECT_EQ(r->source, StackSource::kLive);
  EXPECT_TRUE(stack_has(*r, symbolizer, "spin_here")) << thread_traceback(*r, symbolizer);
  // Sampling sends nothing: a thread that blocks every signal is captured too.
  EXPECT_EQ(m->source, StackSource::kLive);
  EXPECT_TRUE(stack_has(*m, symbolizer, "spin_here")) << thread_traceback(*m, symbolizer);
  EXPECT_FALSE(scenario.signal_left_pending);
  // Where each was created: the scenario.
  EXPECT_FALSE(b->created_by.empty());
  EXPECT_EQ(b->creator_tid, gettid());
}

// Without perf events, running threads are asked with the CPU signal; one
// that blocks it is listed, marked, and never sent it.
TEST(ThreadDumpDeathTest, WithoutPerfEventsAsksBySignalAndLeavesAMaskedThreadAlone) {
  EXPECT_EXIT(
      {
        if (!test::deny_perf_event_open(EACCES)) _exit(2);
        const Scenario scenario = run_scenario();
        symbolize::Symbolizer symbolizer;
        const ThreadRecord* r = find(scenario.dump, scenario.tids[1]);
        const ThreadRecord* m = find(scenario.dump, scenario.tids[2]);
        if (r == nullptr || m == nullptr) _exit(3);
        if (r->source != StackSource::kLive || !stack_has(*r, symbolizer, "spin_here")) _exit(4);
        if (m->source != StackSource::kNone || !m->stack.empty()) _exit(5);
        if (thread_traceback(*m, symbolizer).find("# running with the capture signal blocked") ==
            std::string::npos) {
          _exit(6);
        }
        _exit(scenario.signal_left_pending ? 7 : 0);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(ThreadDump, WithoutStacksListsEveryThreadCheaply) {
  DumpOptions options;
  options.stacks = false;
  const ThreadDump dump = dump_threads(options);
  const ThreadRecord* self = find(dump, gettid());
  ASSERT_NE(self, nullptr);
  EXPECT_TRUE(self->stack.empty());
  EXPECT_FALSE(self->name.empty());
  EXPECT_EQ(host_thread_count(), static_cast<int64_t>(dump.threads.size()));
}

TEST(ThreadDump, NamesStatesAndSystemCalls) {
  EXPECT_EQ(thread_state_name('S'), "sleeping");
  EXPECT_EQ(thread_state_name('D'), "disk wait");
  EXPECT_EQ(thread_state_name('R'), "running");
  EXPECT_EQ(syscall_name(SYS_epoll_wait), "epoll_wait");
  EXPECT_EQ(syscall_name(SYS_futex), "futex");
  EXPECT_EQ(syscall_name(99999), "syscall 99999");
}

}  // namespace
}  // namespace cpprof::sources
