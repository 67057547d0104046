// GoogleTest assertions on heap allocations, over cpprof::AllocationGuard.
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

#include "cpprof/alloc_guard.h"
#include "cpprof/alloc_stats.h"

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
