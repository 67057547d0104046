// The thread-leak check (cpprof/testing.h): fails a test that leaves a
// thread running, naming where it was created; passes one that joins its
// threads; honours the allowlist.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "cpprof/testing.h"

namespace {

using namespace std::chrono_literals;

// A worker that waits until released: the leak, while it is not.
struct Parked {
  std::mutex mutex;
  std::condition_variable released_cv;
  bool released = false;
  std::thread thread;

  void release() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      released = true;
    }
    released_cv.notify_all();
    if (thread.joinable()) thread.join();
  }
};

[[gnu::noinline]] void wait_until_released(Parked* parked) {
  std::unique_lock<std::mutex> lock(parked->mutex);
  parked->released_cv.wait(lock, [parked] { return parked->released; });
}

[[gnu::noinline]] void leak_parked_worker(Parked* parked) {
  parked->thread = std::thread(wait_until_released, parked);
}

[[gnu::noinline]] void run_joined_workers() {
  std::thread first([] { std::this_thread::sleep_for(1ms); });
  std::thread second([] {});
  first.join();
  second.join();
}

const cpprof::testing::ThreadLeakOptions kShortGrace{.grace = 200ms, .ignore_functions = {}};

TEST(ThreadLeakCheck, FailsATestThatLeavesAThreadNamingWhereItWasCreated) {
  Parked parked;
  EXPECT_NONFATAL_FAILURE(
      {
        cpprof::testing::ThreadLeakCheck check(kShortGrace);
        leak_parked_worker(&parked);
      },
      "leak_parked_worker");
  parked.release();
}

TEST(ThreadLeakCheck, ReportNamesTheThreadItsStackAndItsCreator) {
  Parked parked;
  cpprof::testing::ThreadLeakCheck check(kShortGrace);
  leak_parked_worker(&parked);
  const std::string report = check.check();
  parked.release();
  EXPECT_NE(report.find("1 thread(s) leaked"), std::string::npos) << report;
  // Its current stack: waiting where it was parked.
  EXPECT_NE(report.find("wait_until_released"), std::string::npos) << report;
  // Go's "created by" line and the whole creation stack.
  EXPECT_NE(report.find("created by"), std::string::npos) << report;
  EXPECT_NE(report.find("creation stack (thread "), std::string::npos) << report;
  EXPECT_NE(report.find("leak_parked_worker"), std::string::npos) << report;
  EXPECT_NE(report.find("api_thread_leak_test.cc:"), std::string::npos) << report;
}

TEST(ThreadLeakCheck, PassesATestThatJoinsItsThreads) {
  cpprof::testing::ThreadLeakCheck check(kShortGrace);
  run_joined_workers();
  EXPECT_EQ(check.check(), "");
}

TEST(ThreadLeakCheck, WaitsForThreadsOnTheirWayOut) {
  cpprof::testing::ThreadLeakCheck check({.grace = 5000ms, .ignore_functions = {}});
  std::thread([] { std::this_thread::sleep_for(100ms); }).detach();
  EXPECT_EQ(check.check(), "");
}

TEST(ThreadLeakCheck, IgnoresThreadsInAllowedFunctions) {
  Parked parked;
  {
    cpprof::testing::ThreadLeakCheck check(
        {.grace = 200ms, .ignore_functions = {"wait_until_released"}});
    leak_parked_worker(&parked);
    EXPECT_EQ(check.check(), "");
  }
  {
    // By the function that created it, qualified or not.
    cpprof::testing::ThreadLeakCheck check(
        {.grace = 200ms, .ignore_functions = {"(anonymous namespace)::leak_parked_worker"}});
    Parked other;
    leak_parked_worker(&other);
    EXPECT_EQ(check.check(), "");
    other.release();
  }
  {
    // A name that is only part of a function's does not match.
    cpprof::testing::ThreadLeakCheck check(
        {.grace = 200ms, .ignore_functions = {"leak_parked", "until_released"}});
    Parked other;
    leak_parked_worker(&other);
    const std::string report = check.check();
    other.release();
    EXPECT_NE(report.find("leak_parked_worker"), std::string::npos) << report;
  }
  parked.release();
}

TEST(ThreadLeakCheck, ThreadsListsTheCallerAndNotCpprofsOwnThreads) {
  const std::vector<cpprof::ThreadInfo> threads = cpprof::threads();
  ASSERT_FALSE(threads.empty());
  bool found_self = false;
  for (const cpprof::ThreadInfo& thread : threads) {
    if (thread.tid == gettid()) found_self = true;
    EXPECT_EQ(thread.name.rfind("cpprof", 0), std::string::npos) << thread.description;
  }
  EXPECT_TRUE(found_self);
}

}  // namespace
