// A test binary with cpprof's thread-leak listener installed, as a user
// sets it up, for leak_listener_test: one test that joins its thread, one
// that leaves a worker blocked forever (created in spawn_forgotten_worker).
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "cpprof/testing.h"

namespace {

// Never destroyed: destroying a condition variable that a thread still
// waits on blocks exit() (glibc waits for its waiters).
std::mutex& g_mutex = *new std::mutex;
std::condition_variable& g_never = *new std::condition_variable;

[[gnu::noinline]] void wait_forever() {
  std::unique_lock<std::mutex> lock(g_mutex);
  g_never.wait(lock, [] { return false; });
}

[[gnu::noinline]] void spawn_forgotten_worker() { std::thread(wait_forever).detach(); }

TEST(Listener, JoinsItsThread) {
  std::thread worker([] {});
  worker.join();
}

TEST(Listener, LeavesAWorkerBehind) { spawn_forgotten_worker(); }

TEST(Listener, RunsAfterTheLeak) { SUCCEED(); }

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::UnitTest::GetInstance()->listeners().Append(new cpprof::testing::ThreadLeakListener(
      {.grace = std::chrono::milliseconds(300), .ignore_functions = {}}));
  return RUN_ALL_TESTS();
}
