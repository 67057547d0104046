// GoogleTest checks: assertions on heap allocations (over
// cpprof::AllocationGuard), and thread-leak checks (below).
//
//   TEST(Parser, ParsesWithoutAllocating) {
//     Parser parser;
//     CPPROF_EXPECT_NO_ALLOCATIONS(parser.parse("GET / HTTP/1.1"));
//     CPPROF_EXPECT_MAX_ALLOCATIONS(1, parser.parse_into_string(input));
//   }
//
// The statement runs once; only the calling thread's allocations count.
// On failure the message gives the count against the limit and the stack
// (function, file:line) of the first allocation past it. The EXPECT forms
// record a failure and go on; the ASSERT forms also return from the test.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cpprof/alloc_guard.h"
#include "cpprof/alloc_stats.h"
#include "cpprof/threads.h"

// The statement allocates at most `max` times (on this thread).
#define CPPROF_EXPECT_MAX_ALLOCATIONS(max, statement) \
  CPPROF_ALLOCATIONS_CHECK_(max, statement, GTEST_NONFATAL_FAILURE_)
#define CPPROF_ASSERT_MAX_ALLOCATIONS(max, statement) \
  CPPROF_ALLOCATIONS_CHECK_(max, statement, GTEST_FATAL_FAILURE_)

// The statement does not allocate (on this thread).
#define CPPROF_EXPECT_NO_ALLOCATIONS(statement) CPPROF_EXPECT_MAX_ALLOCATIONS(0, statement)
#define CPPROF_ASSERT_NO_ALLOCATIONS(statement) CPPROF_ASSERT_MAX_ALLOCATIONS(0, statement)

// Implementation detail: runs the statement under a guard, then reports.
#define CPPROF_ALLOCATIONS_CHECK_(max, statement, fail)                                  \
  GTEST_AMBIGUOUS_ELSE_BLOCKER_                                                          \
  if (::std::string cpprof_report_; true) {                                              \
    {                                                                                    \
      ::cpprof::AllocationGuard cpprof_guard_(max);                                      \
      statement;                                                                         \
      cpprof_guard_.stop();                                                              \
      cpprof_report_ = cpprof_guard_.report();                                           \
    }                                                                                    \
    if (!cpprof_report_.empty()) goto GTEST_CONCAT_TOKEN_(cpprof_alloc_fail_, __LINE__); \
  } else                                                                                 \
    GTEST_CONCAT_TOKEN_(cpprof_alloc_fail_, __LINE__)                                    \
        : fail(("`" #statement "` allocated more than allowed: " + cpprof_report_).c_str())

// ---------------------------------------------------------------------------
// Thread-leak checks: what goleak does for Go tests, for threads.
//
//   TEST(Server, StopsItsWorkers) {
//     cpprof::testing::ThreadLeakCheck check;  // fails the test if threads remain
//     Server server;
//     server.start();
//     server.stop();
//   }
//
// or for every test of a binary, in main():
//
//   ::testing::UnitTest::GetInstance()->listeners().Append(
//       new cpprof::testing::ThreadLeakListener());
//
// A thread leaks if it was not running when the check began and is still
// running when it ends, after a grace period for threads that are on their
// way out. The failure names each leaked thread: id, name, state, current
// stack and the stack that created it. Threads expected to outlive a test
// (a pool started once, a logger) are allowed by function name: a thread
// whose current or creation stack holds one of `ignore_functions` is not a
// leak (goleak's IgnoreTopFunction / IgnoreAnyFunction). A name matches a
// frame's function as the report prints it, or its unqualified end ("wait"
// matches "ns::wait" and "wait<int>", not "wait_all").
namespace cpprof::testing {

struct ThreadLeakOptions {
  // How long threads that are still running at the end may take to finish.
  std::chrono::milliseconds grace{1000};
  // Functions whose threads are expected to live on (see above).
  std::vector<std::string> ignore_functions;
};

namespace detail {

// `wanted` names `function` whole, or its unqualified end: "wait" matches
// "wait", "ns::wait", "(anonymous namespace)::wait" and "wait<int>", not
// "wait_all" or "await".
inline bool function_matches(const std::string& function, const std::string& wanted) {
  if (wanted.empty()) return false;
  for (size_t at = function.find(wanted); at != std::string::npos;
       at = function.find(wanted, at + 1)) {
    const size_t end = at + wanted.size();
    const bool starts = at == 0 || (at >= 2 && function.compare(at - 2, 2, "::") == 0);
    const bool ends = end == function.size() || function[end] == '(' || function[end] == '<';
    if (starts && ends) return true;
  }
  return false;
}

inline bool ignored(const ThreadInfo& thread, const ThreadLeakOptions& options) {
  for (const std::string& wanted : options.ignore_functions) {
    for (const auto* stack : {&thread.stack, &thread.creation_stack}) {
      for (const StackFrame& frame : *stack) {
        if (function_matches(frame.function, wanted)) return true;
      }
    }
  }
  return false;
}

// Ids running now that are not in `before`.
inline std::vector<int> new_ids(const std::set<int>& before) {
  std::vector<int> fresh;
  for (int tid : ::cpprof::thread_ids()) {
    if (before.count(tid) == 0) fresh.push_back(tid);
  }
  return fresh;
}

}  // namespace detail

// The threads that started after `before` was taken and are still running
// once `options.grace` has passed (returns as soon as none is left), minus
// the ignored ones; as a report, empty if there are none.
inline std::string leaked_threads_report(const std::set<int>& before,
                                         const ThreadLeakOptions& options = {}) {
  const auto deadline = std::chrono::steady_clock::now() + options.grace;
  for (;;) {
    const std::vector<int> fresh = detail::new_ids(before);
    if (fresh.empty()) return "";
    if (std::chrono::steady_clock::now() >= deadline) break;
    // Threads that would be ignored need not be waited for.
    bool all_ignored = !options.ignore_functions.empty();
    if (all_ignored) {
      for (const ThreadInfo& thread : ::cpprof::threads()) {
        if (before.count(thread.tid) == 0 && !detail::ignored(thread, options)) {
          all_ignored = false;
          break;
        }
      }
      if (all_ignored) return "";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::string report;
  int leaked = 0;
  for (const ThreadInfo& thread : ::cpprof::threads()) {
    if (before.count(thread.tid) != 0 || detail::ignored(thread, options)) continue;
    ++leaked;
    report += "\n" + thread.description;
  }
  if (leaked == 0) return "";
  return std::to_string(leaked) + " thread(s) leaked (still running " +
         std::to_string(options.grace.count()) + " ms after the check ended):\n" + report;
}

// Fails the current test if threads started while it lived are still running
// when it is destroyed (or when check() is called).
class ThreadLeakCheck {
 public:
  explicit ThreadLeakCheck(ThreadLeakOptions options = {}) : options_(std::move(options)) {
    const std::vector<int> ids = ::cpprof::thread_ids();
    before_.insert(ids.begin(), ids.end());
  }
  ~ThreadLeakCheck() {
    if (checked_) return;
    const std::string report = check();
    if (!report.empty()) ADD_FAILURE() << report;
  }
  ThreadLeakCheck(const ThreadLeakCheck&) = delete;
  ThreadLeakCheck& operator=(const ThreadLeakCheck&) = delete;

  // Checks now and returns the report (empty: no leak); the destructor
  // then checks nothing more.
  std::string check() {
    checked_ = true;
    return leaked_threads_report(before_, options_);
  }

 private:
  ThreadLeakOptions options_;
  std::set<int> before_;
  bool checked_ = false;
};

// A GoogleTest listener that runs a ThreadLeakCheck around every test.
class ThreadLeakListener : public ::testing::EmptyTestEventListener {
 public:
  explicit ThreadLeakListener(ThreadLeakOptions options = {}) : options_(std::move(options)) {}

  void OnTestStart(const ::testing::TestInfo&) override {
    const std::vector<int> ids = ::cpprof::thread_ids();
    before_ = std::set<int>(ids.begin(), ids.end());
  }
  void OnTestEnd(const ::testing::TestInfo&) override {
    const std::string report = leaked_threads_report(before_, options_);
    if (!report.empty()) ADD_FAILURE() << report;
  }

 private:
  ThreadLeakOptions options_;
  std::set<int> before_;
};

}  // namespace cpprof::testing
