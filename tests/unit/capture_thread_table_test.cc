#include "capture/thread_table.h"

#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <thread>

#include "capture/signal_safe.h"
#include "capture/thread_hooks.h"

namespace cpprof::capture {
namespace {

TEST(ThreadTable, RegistersFindsAndReleases) {
  ThreadTable& table = thread_table();
  constexpr int kFakeTid = 999999901;
  ThreadSlot* slot = table.register_thread(kFakeTid);
  ASSERT_NE(slot, nullptr);
  EXPECT_EQ(table.find(kFakeTid), slot);
  EXPECT_EQ(table.register_thread(kFakeTid), slot);  // no duplicate
  table.release(slot);
  EXPECT_EQ(table.find(kFakeTid), nullptr);
}

TEST(ThreadTable, StdThreadRegistersThroughTheHookAndLeavesOnExit) {
  std::atomic<int> tid{0};
  std::atomic<bool> hooked{false};
  std::atomic<bool> has_stack{false};
  std::thread t([&] {
    ThreadSlot* slot = current_thread_slot();
    if (slot != nullptr) {
      hooked = slot->hooked.load();
      has_stack = slot->stack_hi.load() > slot->stack_lo.load();
    }
    tid = current_tid();
  });
  t.join();
  EXPECT_TRUE(hooked) << "pthread_create was not interposed";
  EXPECT_TRUE(has_stack);
  EXPECT_EQ(thread_table().find(tid), nullptr) << "the slot outlived its thread";
}

TEST(ThreadTable, PthreadExitStillReleasesTheSlot) {
  std::atomic<int> tid{0};
  pthread_t thread;
  ASSERT_EQ(pthread_create(
                &thread, nullptr,
                [](void* arg) -> void* {
                  static_cast<std::atomic<int>*>(arg)->store(current_tid());
                  pthread_exit(nullptr);
                },
                &tid),
            0);
  pthread_join(thread, nullptr);
  ASSERT_NE(tid.load(), 0);
  EXPECT_EQ(thread_table().find(tid), nullptr);
}

TEST(ThreadTable, ThreadsCreatedInAnInternalScopeAreMarked) {
  std::atomic<bool> internal{false};
  std::atomic<bool> other_internal{true};
  {
    InternalThreadScope scope;
    std::thread t([&] { internal = current_thread_slot()->internal.load(); });
    t.join();
  }
  std::thread t([&] { other_internal = current_thread_slot()->internal.load(); });
  t.join();
  EXPECT_TRUE(internal);
  EXPECT_FALSE(other_internal);
}

TEST(ThreadTable, HooksRunOnStartAndExit) {
  static std::atomic<int> starts{0};
  static std::atomic<int> exits{0};
  set_thread_hooks({[](ThreadSlot*) { ++starts; }, [](ThreadSlot*) { ++exits; }});
  int starts_before = starts;
  int exits_before = exits;
  std::thread([] {}).join();
  set_thread_hooks({});
  EXPECT_EQ(starts - starts_before, 1);
  EXPECT_EQ(exits - exits_before, 1);
}

TEST(ThreadTable, ManyThreadsComeAndGoWithoutLeakingSlots) {
  size_t before = 0;
  for (ThreadSlot& slot : thread_table()) before += slot.tid.load() != 0;
  for (int round = 0; round < 20; ++round) {
    std::vector<std::thread> threads;
    for (int i = 0; i < 16; ++i) threads.emplace_back([] {});
    for (auto& t : threads) t.join();
  }
  size_t after = 0;
  for (ThreadSlot& slot : thread_table()) after += slot.tid.load() != 0;
  EXPECT_EQ(after, before);
}

}  // namespace
}  // namespace cpprof::capture
