// examples/chapter29/request_workers.h: the leaky handler leaves one
// blocked thread named "worker" per request, which cpprof's thread-leak
// check reports by the functions that started it and that it waits in;
// the fixed handler leaves none.
#include <dirent.h>
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include "cpprof/testing.h"
#include "cpprof/threads.h"
#include "request_workers.h"
#include "support/eventually.h"

namespace chapter29 {
namespace {

using cpprof::test::eventually;
using namespace std::chrono_literals;

// Threads of this process whose name (/proc/self/task/TID/comm) is `name`.
int threads_named(const std::string& name) {
  int count = 0;
  DIR* tasks = opendir("/proc/self/task");
  if (tasks == nullptr) return -1;
  while (dirent* entry = readdir(tasks)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream comm(std::string("/proc/self/task/") + entry->d_name + "/comm");
    std::string comm_name;
    if (std::getline(comm, comm_name) && comm_name == name) ++count;
  }
  closedir(tasks);
  return count;
}

TEST(RequestWorkers, LeakyHandlerLeavesOneBlockedWorkerPerRequest) {
  const int waiting_before = waiting_workers();
  const int named_before = threads_named("worker");
  for (int i = 0; i < 3; ++i) handle_request_leaky();
  EXPECT_TRUE(eventually([&] { return waiting_workers() == waiting_before + 3; }))
      << waiting_workers();
  EXPECT_TRUE(eventually([&] { return threads_named("worker") == named_before + 3; }))
      << threads_named("worker");
  // Still there a while later: nothing will ever wake them.
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(waiting_workers(), waiting_before + 3);
  EXPECT_EQ(threads_named("worker"), named_before + 3);
}

TEST(RequestWorkers, FixedHandlerLeavesNoWorkerBehind) {
  const int waiting_before = waiting_workers();
  const int named_before = threads_named("worker");
  const uint64_t recorded_before = recorded_results();
  for (int i = 0; i < 3; ++i) handle_request_fixed();
  // The handler joined its worker: nothing to wait for.
  EXPECT_EQ(waiting_workers(), waiting_before);
  EXPECT_EQ(threads_named("worker"), named_before);
  // Each worker got its result (request numbers start at 1) and recorded it.
  EXPECT_GE(recorded_results(), recorded_before + 1 + 2 + 3);
}

TEST(RequestWorkers, LeakCheckNamesTheLeakyHandlersWorker) {
  // The creation stack is walked inside pthread_create, called from
  // libstdc++'s std::thread::_M_start_thread, which keeps no frame pointer.
  // Until cpprof's unwind tables are ready, that walk follows frame
  // pointers and skips the function that called into libstdc++ (here
  // start_worker_for_request: the report then says "created by
  // chapter29::handle_request_leaky"). Dumping the threads once readies
  // the tables.
  (void)cpprof::threads();
  cpprof::testing::ThreadLeakCheck check({.grace = 200ms});
  handle_request_leaky();
  const std::string report = check.check();
  EXPECT_NE(report.find("1 thread(s) leaked"), std::string::npos) << report;
  EXPECT_NE(report.find("name \"worker\""), std::string::npos) << report;
  EXPECT_NE(report.find("chapter29::wait_for_result"), std::string::npos) << report;
  EXPECT_NE(report.find("created by chapter29::start_worker_for_request"), std::string::npos)
      << report;
}

TEST(RequestWorkers, FixedHandlerPassesTheLeakCheck) {
  cpprof::testing::ThreadLeakCheck check;
  for (int i = 0; i < 3; ++i) handle_request_fixed();
  EXPECT_EQ(check.check(), "");
}

TEST(RequestWorkers, PublishingWakesALeakedWorker) {
  auto pending = std::make_shared<PendingResult>();
  const int waiting_before = waiting_workers();
  const uint64_t recorded_before = recorded_results();
  std::thread worker = start_worker_for_request(pending);
  ASSERT_TRUE(eventually([&] { return waiting_workers() == waiting_before + 1; }));
  publish_result(*pending, 42);
  worker.join();
  EXPECT_EQ(waiting_workers(), waiting_before);
  EXPECT_EQ(recorded_results(), recorded_before + 42);
}

}  // namespace
}  // namespace chapter29
