// examples/chapter29: every lesson's functions agree on their result, and
// allocate exactly as the lesson says. The expected counts are worked out
// from how libstdc++ (GCC 12) grows its containers, next to each test.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "buffer_pool.h"
#include "cpprof/alloc_stats.h"
#include "cpprof/testing.h"
#include "lessons.h"

namespace chapter29 {
namespace {

// Counting needs cpprof's interposed malloc (or the sanitizer's hooks).
#define REQUIRE_ALLOC_COUNTING()                   \
  if (!cpprof::alloc_counting_available()) {       \
    GTEST_SKIP() << "allocations are not counted"; \
  }

// Allocations and requested bytes of one call of `fn` on this thread,
// after a first call to warm up (as allocs_per_run does).
template <class F>
cpprof::AllocStats cost_of_one_call(F&& fn) {
  fn();
  const cpprof::AllocStats before = cpprof::thread_alloc_stats();
  fn();
  return cpprof::thread_alloc_stats() - before;
}

// std::string keeps up to 15 characters in place; past that it allocates
// capacity + 1 bytes (the terminator). Growing, it asks for
// max(needed, 2 * capacity).

TEST(StringBuilding, AllThreeJoinTheSameText) {
  for (int n : {0, 1, 8, 100, 1000}) {
    const std::string expected = join_plus_equals(n);
    EXPECT_EQ(join_reserved(n), expected) << n;
    EXPECT_EQ(join_ostringstream(n), expected) << n;
  }
  EXPECT_EQ(join_plus_equals(0), "");
  EXPECT_EQ(join_plus_equals(8), "0,1,2,3,4,5,6,7");
  // 10 one-digit and 90 two-digit numbers, 99 commas.
  const std::string hundred = join_plus_equals(100);
  EXPECT_EQ(hundred.size(), 10u + 180u + 99u);
  EXPECT_EQ(hundred.substr(hundred.size() - 8), "97,98,99");
}

TEST(StringBuilding, FifteenCharactersStayInPlace) {
  REQUIRE_ALLOC_COUNTING();
  // "0,1,2,3,4,5,6,7" is 15 characters: the string's own buffer holds it,
  // and so does the ostringstream's (its string), and str()'s copy.
  EXPECT_EQ(cpprof::allocs_per_run(20, [] { join_plus_equals(8); }), 0);
  EXPECT_EQ(cpprof::allocs_per_run(20, [] { join_reserved(8); }), 0);
  EXPECT_EQ(cpprof::allocs_per_run(20, [] { join_ostringstream(8); }), 0);
}

TEST(StringBuilding, PlusEqualsAllocatesAtEachDoubling) {
  REQUIRE_ALLOC_COUNTING();
  // 289 characters, appended one or two at a time, so every growth doubles:
  // 15 in place, then capacities 30, 60, 120, 240, 480.
  EXPECT_EQ(cpprof::allocs_per_run(20, [] { join_plus_equals(100); }), 5);
  EXPECT_EQ(cost_of_one_call([] { join_plus_equals(100); }).bytes, 31u + 61 + 121 + 241 + 481);
}

TEST(StringBuilding, ReserveAllocatesOnce) {
  REQUIRE_ALLOC_COUNTING();
  // reserve(289): one block of 290 bytes, and the appends fit.
  EXPECT_EQ(cpprof::allocs_per_run(20, [] { join_reserved(100); }), 1);
  EXPECT_EQ(cost_of_one_call([] { join_reserved(100); }).bytes, 290u);
}

TEST(StringBuilding, OstringstreamAllocatesABufferAndACopy) {
  REQUIRE_ALLOC_COUNTING();
  // The stream writes into its string's 15 in-place characters; the 16th
  // makes it reserve max(2 * 15, 512) = 512, enough for all 289. str()
  // returns a copy: 290 bytes more.
  EXPECT_EQ(cpprof::allocs_per_run(20, [] { join_ostringstream(100); }), 2);
  EXPECT_EQ(cost_of_one_call([] { join_ostringstream(100); }).bytes, 513u + 290);
}

// std::vector grows from 0 to 1 element, then doubles: n push_backs leave
// capacity 2^k, the first power of two >= n, after k + 1 allocations of
// 1, 2, ..., 2^k elements.

TEST(VectorGrowth, BothFillTheSameValues) {
  for (int n : {0, 1, 1000, 100000}) {
    const uint64_t sum = static_cast<uint64_t>(n) * (n > 0 ? n - 1 : 0) / 2;  // 0 + ... + n-1
    EXPECT_EQ(fill_by_push_back(n), sum) << n;
    EXPECT_EQ(fill_reserved(n), sum) << n;
  }
}

TEST(VectorGrowth, PushBackOfAHundredThousandIntsAllocatesEighteenTimes) {
  REQUIRE_ALLOC_COUNTING();
  // 2^17 = 131072 >= 100000 > 2^16: k = 17, 18 allocations of
  // 4 * (1 + 2 + ... + 2^17) = 4 * (2^18 - 1) bytes.
  EXPECT_EQ(cpprof::allocs_per_run(3, [] { fill_by_push_back(100000); }), 18);
  EXPECT_EQ(cost_of_one_call([] { fill_by_push_back(100000); }).bytes, 4u * ((1u << 18) - 1));
}

TEST(VectorGrowth, ReserveAllocatesOnce) {
  REQUIRE_ALLOC_COUNTING();
  EXPECT_EQ(cpprof::allocs_per_run(3, [] { fill_reserved(100000); }), 1);
  EXPECT_EQ(cost_of_one_call([] { fill_reserved(100000); }).bytes, 400000u);
}

TEST(VectorGrowth, PushBackAllocatesOncePerPowerOfTwo) {
  REQUIRE_ALLOC_COUNTING();
  struct Case {
    int n;
    double allocs;  // k + 1, 2^k the first power of two >= n
  };
  for (Case c : {Case{0, 0}, Case{1, 1}, Case{2, 2}, Case{3, 3}, Case{4, 3}, Case{5, 4},
                 Case{1024, 11}, Case{1025, 12}}) {
    EXPECT_EQ(cpprof::allocs_per_run(5, [&] { fill_by_push_back(c.n); }), c.allocs) << c.n;
    EXPECT_EQ(cpprof::allocs_per_run(5, [&] { fill_reserved(c.n); }), c.n > 0 ? 1 : 0) << c.n;
  }
}

TEST(StructPassing, BothSeeTheSameReport) {
  const Report report = make_report(100, 3);
  EXPECT_EQ(summarize_by_value(report), summarize_by_ref(report));
  EXPECT_NE(summarize_by_ref(report), summarize_by_ref(make_report(100, 4)));
  EXPECT_EQ(sizeof(report.counters), 4096u);
}

TEST(StructPassing, ByConstRefAllocatesNothing) {
  REQUIRE_ALLOC_COUNTING();
  const Report report = make_report(100, 3);
  EXPECT_EQ(cpprof::allocs_per_run(20, [&] { summarize_by_ref(report); }), 0);
  CPPROF_EXPECT_NO_ALLOCATIONS(summarize_by_ref(report));
}

TEST(StructPassing, ByValueAllocatesOncePerHeapPart) {
  REQUIRE_ALLOC_COUNTING();
  const Report report = make_report(100, 3);
  // The 31-character title, the 100 samples' array, the 3 tags' array and
  // each 21-character tag: 1 + 1 + 1 + 3.
  ASSERT_EQ(heap_parts(report), 6);
  EXPECT_EQ(cpprof::allocs_per_run(20, [&] { summarize_by_value(report); }), 6);
  // 32 + 100 doubles + 3 std::string objects + 3 * 22 (copies allocate
  // exactly the size, not the original's capacity).
  EXPECT_EQ(cost_of_one_call([&] { summarize_by_value(report); }).bytes,
            32u + 100 * sizeof(double) + 3 * sizeof(std::string) + 3 * 22);
}

TEST(StructPassing, ByValueWithEmptyVectorsCopiesOnlyTheTitle) {
  REQUIRE_ALLOC_COUNTING();
  // Copying an empty vector allocates nothing; the 4 KiB of counters are
  // copied in place.
  const Report report = make_report(0, 0);
  ASSERT_EQ(heap_parts(report), 1);
  EXPECT_EQ(cpprof::allocs_per_run(20, [&] { summarize_by_value(report); }), 1);
  EXPECT_EQ(cost_of_one_call([&] { summarize_by_value(report); }).bytes, 32u);
}

TEST(StackOrHeap, BothComputeTheSameChecksum) {
  for (uint64_t seed = 0; seed < 10; ++seed) {
    EXPECT_EQ(checksum_on_stack(seed), checksum_on_heap(seed)) << seed;
  }
  EXPECT_NE(checksum_on_stack(1), checksum_on_stack(2));
}

TEST(StackOrHeap, StackVersionAllocatesNothing) {
  REQUIRE_ALLOC_COUNTING();
  EXPECT_EQ(cpprof::allocs_per_run(20, [] { checksum_on_stack(7); }), 0);
  CPPROF_EXPECT_NO_ALLOCATIONS(checksum_on_stack(7));
}

TEST(StackOrHeap, HeapVersionAllocatesThreeTimes) {
  REQUIRE_ALLOC_COUNTING();
  // make_unique'd std::array of 256 words, std::vector of 256 words, and
  // the 64-byte lambda std::function cannot keep in its 16-byte buffer.
  EXPECT_EQ(cpprof::allocs_per_run(20, [] { checksum_on_heap(7); }), 3);
  EXPECT_EQ(cost_of_one_call([] { checksum_on_heap(7); }).bytes, 2048u + 2048 + 64);
}

TEST(BufferPool, BothRenderTheSameReply) {
  BufferPool pool;
  for (int request = 0; request < 5; ++request) {
    EXPECT_EQ(render_with_pool(pool, request, 32), render_with_new(request, 32)) << request;
  }
  EXPECT_NE(render_with_new(1, 32), render_with_new(2, 32));
}

TEST(BufferPool, NewDeleteAllocatesOneBufferPerCall) {
  REQUIRE_ALLOC_COUNTING();
  EXPECT_EQ(cpprof::allocs_per_run(20, [] { render_with_new(1, 32); }), 1);
  EXPECT_EQ(cost_of_one_call([] { render_with_new(1, 32); }).bytes, sizeof(ScratchBuffer));
}

TEST(BufferPool, PoolAllocatesNothingOnceWarm) {
  REQUIRE_ALLOC_COUNTING();
  BufferPool pool;
  // allocs_per_run's warm-up call misses and makes the buffer; every later
  // call gets it back from this thread's slot and returns it there.
  EXPECT_EQ(cpprof::allocs_per_run(100, [&] { render_with_pool(pool, 1, 32); }), 0);
  CPPROF_EXPECT_NO_ALLOCATIONS(render_with_pool(pool, 1, 32));
}

TEST(BufferPool, OneMissThenOnlyHits) {
  BufferPool pool;
  for (int request = 0; request < 101; ++request) render_with_pool(pool, request, 32);
  const cpprof::PoolStats stats = pool.stats();
  EXPECT_EQ(stats.misses, 1u);
  EXPECT_EQ(stats.hits, 100u);
  EXPECT_EQ(stats.puts, 101u);
  EXPECT_EQ(stats.dropped, 0u);
}

}  // namespace
}  // namespace chapter29
