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
#include "sources/threads/thread_profiles.h"
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

TEST(ThreadDump, CapturesBlockedAndRunningThreadsAndLeavesAMaskedOneAlone) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::atomic<int> tids[3] = {0, 0, 0};
  std::atomic<uint64_t> pending_after{2};
  g_stop = false;
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

  const ThreadDump dump = dump_threads();
  symbolize::Symbolizer symbolizer;
  const ThreadRecord* b = find(dump, tids[0]);
  const ThreadRecord* r = find(dump, tids[1]);
  const ThreadRecord* m = find(dump, tids[2]);
  ASSERT_NE(b, nullptr);
  ASSERT_NE(r, nullptr);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(b->source, StackSource::kBlocked);
  EXPECT_EQ(syscall_name(b->syscall), "read");
  EXPECT_EQ(b->state, 'S');
  EXPECT_TRUE(stack_has(*b, symbolizer, "sleep_in_pipe")) << thread_traceback(*b, symbolizer);
  EXPECT_EQ(r->source, StackSource::kLive);
  EXPECT_TRUE(stack_has(*r, symbolizer, "spin_here")) << thread_traceback(*r, symbolizer);
  // The masked thread is listed, marked, and was never sent the signal.
  EXPECT_EQ(m->source, StackSource::kNone);
  EXPECT_TRUE(m->stack.empty());
  EXPECT_NE(m->note.find("not interrupted"), std::string::npos) << m->note;
  EXPECT_NE(thread_traceback(*m, symbolizer).find("# running with the capture signal blocked"),
            std::string::npos);
  // Where each was created: this test's body.
  EXPECT_FALSE(b->created_by.empty());
  EXPECT_EQ(b->creator_tid, gettid());

  g_stop = true;
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  blocked.join();
  running.join();
  masked.join();
  EXPECT_EQ(pending_after.load(), 0u) << "a capture signal was left pending on the masked thread";
  close(fds[0]);
  close(fds[1]);
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
