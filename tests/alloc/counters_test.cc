// The counters themselves: reachable, read without allocating, kept per
// thread, and totalled per process across exited threads and before main().

#include <dlfcn.h>
#include <malloc.h>
#include <sched.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <thread>

#include <gtest/gtest.h>

#include "alloc_test_support.h"

namespace cpprof::alloc_test {
namespace {

// ---------------------------------------------------------------------------
// Counters.

TEST(Counters, AreReachableWhenCpprofIsLinkedOrPreloaded) {
#if CPPROF_ALLOC_TEST_LINKED
  EXPECT_TRUE(CountersReachable());
#else
  if (!CpprofPreloaded()) GTEST_SKIP() << "libcpprof is not in LD_PRELOAD";
  EXPECT_NE(dlsym(RTLD_DEFAULT, "_ZN6cpprof18thread_alloc_statsEv"), nullptr);
  EXPECT_TRUE(CountersReachable());
#endif
  EXPECT_TRUE(CountingAvailable());
}

TEST(Counters, ReadingThemDoesNotAllocate) {
  const Counts d = Delta([] {
    for (int i = 0; i < 10; ++i) {
      Counts t = ThreadCounts();
      Escape(&t);
    }
    Counts p = ProcessCounts();
    Escape(&p);
  });
  EXPECT_COUNTS(d, 0, 0, 0);
}

// ---------------------------------------------------------------------------
// Threads.

// Spins until `flag` holds `value`, without allocating.
void AwaitStage(const std::atomic<int>& flag, int value) {
  while (flag.load(std::memory_order_acquire) != value) sched_yield();
}

TEST(ThreadCounts, AllocationsOnAnotherThreadAreCountedThereNotHere) {
  std::atomic<int> stage{0};
  Counts worker_delta;
  // Starting a thread allocates on the starting thread (its state, its TLS
  // block): the window opens only once the worker exists.
  std::thread worker([&] {
    AwaitStage(stage, 1);
    worker_delta = Delta([] {
      for (int i = 0; i < 100; ++i) free(malloc(Opaque(size_t{64})));
      delete Opaque(new Widget{});
    });
    stage.store(2, std::memory_order_release);
  });
  const Counts before = ThreadCounts();
  stage.store(1, std::memory_order_release);
  AwaitStage(stage, 2);
  const Counts after = ThreadCounts();
  worker.join();
  EXPECT_COUNTS(after - before, 0, 0, 0);
  EXPECT_COUNTS(worker_delta, 101, 101, 100 * 64 + sizeof(Widget));
}

TEST(ThreadCounts, AFreeIsCountedOnTheThreadThatFreesNotTheOneThatAllocated) {
  std::atomic<int> stage{0};
  void* block = nullptr;
  Counts worker_delta;
  std::thread worker([&] {
    AwaitStage(stage, 1);
    worker_delta = Delta([&] { free(Opaque(block)); });
    stage.store(2, std::memory_order_release);
  });
  const Counts here = Delta([&] {
    block = malloc(Opaque(size_t{4000}));
    stage.store(1, std::memory_order_release);
    AwaitStage(stage, 2);
  });
  worker.join();
  EXPECT_COUNTS(here, 1, 0, 4000);
  EXPECT_COUNTS(worker_delta, 0, 1, 0);
}

TEST(ProcessCounts, IncludeThreadsThatHaveExited) {
  constexpr uint64_t kBlocks = 1000;
  constexpr uint64_t kSize = 48;
  const Counts before = ProcessCounts();
  std::thread([] {
    for (uint64_t i = 0; i < kBlocks; ++i) free(malloc(Opaque(kSize)));
  }).join();
  const Counts after = ProcessCounts();
  if (!CountsChecked()) return;
  const Counts d = after - before;
  // Starting and joining the thread allocates a little more; counting any
  // block twice would show as more than the slack.
  EXPECT_GE(d.allocs, kBlocks);
  EXPECT_LE(d.allocs, kBlocks + 16);
  EXPECT_GE(d.frees, kBlocks);
  EXPECT_LE(d.frees, kBlocks + 16);
  EXPECT_GE(d.bytes, kBlocks * kSize);
  EXPECT_LE(d.bytes, kBlocks * kSize + 64 * 1024);
  EXPECT_GE(after.allocs, ThreadCounts().allocs);
}

// ---------------------------------------------------------------------------
// Allocations made before main().

constexpr size_t kBeforeMainBytes = 12345;

// Runs during static initialization, when cpprof's own initialization may
// or may not have happened yet (in the linked build, the order across
// translation units is unspecified).
struct BeforeMain {
  BeforeMain() {
    process_before = ProcessCounts();
    thread_before = ThreadCounts();
    block = static_cast<unsigned char*>(malloc(Opaque(kBeforeMainBytes)));
    widget = new Widget{};
    thread_after = ThreadCounts();
    process_after = ProcessCounts();
    if (block != nullptr) Fill(block, kBeforeMainBytes, 17);
  }
  Counts process_before, thread_before, thread_after, process_after;
  unsigned char* block = nullptr;
  Widget* widget = nullptr;
};
BeforeMain g_before_main;

TEST(StaticInit, AllocationsBeforeMainWorkAndAreCountedInTheProcessTotals) {
  ASSERT_NE(g_before_main.block, nullptr);
  ASSERT_NE(g_before_main.widget, nullptr);
  EXPECT_TRUE(HasFill(g_before_main.block, kBeforeMainBytes, 17));
  EXPECT_GE(malloc_usable_size(g_before_main.block), kBeforeMainBytes);
  const Counts thread_delta = g_before_main.thread_after - g_before_main.thread_before;
  const Counts process_delta = g_before_main.process_after - g_before_main.process_before;
  EXPECT_COUNTS(thread_delta, 2, 0, kBeforeMainBytes + sizeof(Widget));
  // No other thread runs before main (cpprof's own are left out).
  EXPECT_COUNTS(process_delta, 2, 0, kBeforeMainBytes + sizeof(Widget));
  const Counts now = ProcessCounts();
  if (CountsChecked()) {
    EXPECT_GE(now.allocs, g_before_main.process_after.allocs);
    EXPECT_GE(now.bytes, g_before_main.process_after.bytes);
  }
  const Counts d = Delta([] {
    free(Opaque(g_before_main.block));
    delete Opaque(g_before_main.widget);
  });
  g_before_main.block = nullptr;
  g_before_main.widget = nullptr;
  EXPECT_COUNTS(d, 0, 2, 0);
}

}  // namespace
}  // namespace cpprof::alloc_test
