// Exact allocation counts (cpprof/alloc_stats.h), the allocation guard and
// its GoogleTest assertions (cpprof/testing.h).
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cpprof/alloc_guard.h"
#include "cpprof/alloc_stats.h"
#include "cpprof/testing.h"

namespace {

// Keeps the compiler from removing allocations whose results are unused.
template <class T>
void escape(T* ptr) {
  asm volatile("" : : "g"(ptr) : "memory");
}

[[gnu::noinline]] int stack_only(int n) {
  int values[64];
  for (int i = 0; i < 64; ++i) values[i] = i * n;
  escape(values);
  return values[n % 64];
}

[[gnu::noinline]] void one_new() {
  auto* value = new int(42);
  escape(value);
  delete value;
}

[[gnu::noinline]] void fill_vector(bool reserve) {
  std::vector<int> values;
  if (reserve) values.reserve(100000);
  for (int i = 0; i < 100000; ++i) values.push_back(i);
  escape(values.data());
}

[[gnu::noinline]] std::unique_ptr<std::string> make_widget_name() {
  return std::make_unique<std::string>("a widget name too long for the small-string buffer");
}

TEST(AllocsPerRun, IsZeroForAStackOnlyFunction) {
  EXPECT_EQ(cpprof::allocs_per_run(100, [] { stack_only(7); }), 0);
}

TEST(AllocsPerRun, IsOneForOneNew) { EXPECT_EQ(cpprof::allocs_per_run(100, one_new), 1); }

TEST(AllocsPerRun, IsEighteenForAHundredThousandPushBacksAndOneWithReserve) {
  // libstdc++ doubles the capacity: 1, 2, 4, ..., 131072 is 18 allocations.
  EXPECT_EQ(cpprof::allocs_per_run(5, [] { fill_vector(false); }), 18);
  EXPECT_EQ(cpprof::allocs_per_run(5, [] { fill_vector(true); }), 1);
}

TEST(AllocsPerRun, RoundsDownAsGoDoes) {
  int calls = 0;
  // Allocates on every other call: 1.5 per run over two runs rounds to... 1 per run
  // over 2 runs is 1; over 3 runs (2 allocations) is 0.
  auto every_other = [&] {
    if (calls++ % 2 == 1) one_new();
  };
  EXPECT_EQ(cpprof::allocs_per_run(3, every_other), 0);  // warm-up call 0; runs 1..3: 2 allocations
}

TEST(ThreadAllocStats, CountsAllocationsFreesAndRequestedBytes) {
  const cpprof::AllocStats before = cpprof::thread_alloc_stats();
  void* volatile a = malloc(100);
  void* volatile b = calloc(3, 10);
  free(a);
  const cpprof::AllocStats after = cpprof::thread_alloc_stats();
  free(b);
  const cpprof::AllocStats diff = after - before;
  EXPECT_EQ(diff.allocs, 2u);
  EXPECT_EQ(diff.frees, 1u);
  EXPECT_EQ(diff.bytes, 130u);
}

TEST(ThreadAllocStats, LeavesOutOtherThreads) {
  const cpprof::AllocStats before = cpprof::thread_alloc_stats();
  std::thread other([] {
    for (int i = 0; i < 1000; ++i) one_new();
  });
  other.join();
  const cpprof::AllocStats diff = cpprof::thread_alloc_stats() - before;
  EXPECT_LT(diff.allocs, 10u);  // std::thread's own state, not the other thread's 1000
}

TEST(AllocStats, IncludesThreadsThatHaveExited) {
  ASSERT_TRUE(cpprof::alloc_counting_available());
  const cpprof::AllocStats before = cpprof::alloc_stats();
  std::thread other([] {
    for (int i = 0; i < 1000; ++i) one_new();
  });
  other.join();
  const cpprof::AllocStats diff = cpprof::alloc_stats() - before;
  EXPECT_GE(diff.allocs, 1000u);
  EXPECT_LT(diff.allocs, 1100u);
  EXPECT_GE(diff.frees, 1000u);
}

TEST(AllocationGuard, CountsOnlyWhileAlive) {
  cpprof::AllocationGuard guard(5);
  one_new();
  one_new();
  guard.stop();
  one_new();
  EXPECT_EQ(guard.allocations(), 2u);
  EXPECT_EQ(guard.bytes(), 2 * sizeof(int));
  EXPECT_FALSE(guard.exceeded());
  EXPECT_EQ(guard.report(), "");
}

TEST(AllocationGuard, ReportNamesTheFunctionOfTheFirstAllocationPastTheLimit) {
  cpprof::AllocationGuard guard(0);
  auto name = make_widget_name();
  guard.stop();
  ASSERT_TRUE(guard.exceeded());
  const std::string report = guard.report();
  EXPECT_NE(report.find("make_widget_name"), std::string::npos) << report;
  EXPECT_NE(report.find("api_alloc_stats_test.cc:"), std::string::npos) << report;
  EXPECT_EQ(report.find("malloc"), std::string::npos) << "cpprof's hooks shown:\n" << report;
}

TEST(AllocationGuard, NestedGuardsBothCount) {
  cpprof::AllocationGuard outer(10);
  one_new();
  {
    cpprof::AllocationGuard inner(0);
    one_new();
    EXPECT_TRUE(inner.exceeded());
  }
  one_new();
  EXPECT_EQ(outer.allocations(), 3u);
  EXPECT_FALSE(outer.exceeded());
}

TEST(AllocationAssertions, NoAllocationsPassesOnABlockThatDoesNotAllocate) {
  CPPROF_EXPECT_NO_ALLOCATIONS(stack_only(3));
  CPPROF_ASSERT_NO_ALLOCATIONS({
    int sum = 0;
    for (int i = 0; i < 10; ++i) sum += stack_only(i);
    escape(&sum);
  });
}

TEST(AllocationAssertions, NoAllocationsFailsNamingTheAllocatingFunction) {
  EXPECT_NONFATAL_FAILURE(CPPROF_EXPECT_NO_ALLOCATIONS(make_widget_name()), "make_widget_name");
  EXPECT_FATAL_FAILURE(CPPROF_ASSERT_NO_ALLOCATIONS(one_new()), "one_new");
}

TEST(AllocationAssertions, MaxAllocationsAllowsUpToTheLimit) {
  CPPROF_EXPECT_MAX_ALLOCATIONS(3, {
    one_new();
    one_new();
    one_new();
  });
  EXPECT_NONFATAL_FAILURE(CPPROF_EXPECT_MAX_ALLOCATIONS(2,
                                                        {
                                                          one_new();
                                                          one_new();
                                                          one_new();
                                                        }),
                          "3 heap allocations (12 bytes), at most 2 allowed");
}

TEST(AllocationAssertions, ReserveMakesPushBackAllocateOnce) {
  CPPROF_EXPECT_MAX_ALLOCATIONS(1, fill_vector(true));
  EXPECT_NONFATAL_FAILURE(CPPROF_EXPECT_MAX_ALLOCATIONS(1, fill_vector(false)),
                          "18 heap allocations");
}

}  // namespace
