// realloc and reallocarray: growing, shrinking, null and zero, failure that
// keeps the old block, overflow; each step counts one alloc and one free.

#include <malloc.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdlib>

#include <gtest/gtest.h>

#include "alloc_test_support.h"

namespace cpprof::alloc_test {
namespace {

TEST(Realloc, GrowKeepsContentsAndCountsOneAllocAndOneFree) {
  for (size_t to : {size_t{200}, size_t{5000}, size_t{300000}, 4 * kMiB}) {
    SCOPED_TRACE(to);
    void* p = malloc(Opaque(size_t{100}));
    ASSERT_NE(p, nullptr);
    Fill(p, 100, 2);
    void* q = nullptr;
    const Counts d = Delta([&] { q = realloc(Opaque(p), Opaque(to)); });
    ASSERT_NE(q, nullptr);
    EXPECT_COUNTS(d, 1, 1, to);
    EXPECT_TRUE(HasFill(q, 100, 2));
    EXPECT_GE(malloc_usable_size(q), to);
    EXPECT_TRUE(IsAligned(q, 16));
    Fill(q, to, 3);  // the new tail is writable
    FreeCounted(q);
  }
}

TEST(Realloc, ShrinkKeepsThePrefixAndCountsOneAllocAndOneFree) {
  for (size_t from : {size_t{1000}, size_t{100000}, 4 * kMiB}) {
    SCOPED_TRACE(from);
    void* p = malloc(Opaque(from));
    ASSERT_NE(p, nullptr);
    Fill(p, from, 4);
    void* q = nullptr;
    const Counts d = Delta([&] { q = realloc(Opaque(p), Opaque(size_t{40})); });
    ASSERT_NE(q, nullptr);
    EXPECT_COUNTS(d, 1, 1, 40);
    EXPECT_TRUE(HasFill(q, 40, 4));
    EXPECT_GE(malloc_usable_size(q), 40u);
    FreeCounted(q);
  }
}

TEST(Realloc, SameSizeCountsOneAllocAndOneFreeWhetherOrNotItMoves) {
  void* p = malloc(Opaque(size_t{256}));
  ASSERT_NE(p, nullptr);
  Fill(p, 256, 5);
  void* q = nullptr;
  const Counts d = Delta([&] { q = realloc(Opaque(p), Opaque(size_t{256})); });
  ASSERT_NE(q, nullptr);
  EXPECT_COUNTS(d, 1, 1, 256);
  EXPECT_TRUE(HasFill(q, 256, 5));
  FreeCounted(q);
}

TEST(Realloc, OfNullIsAnAllocation) {
  void* p = nullptr;
  const Counts d = Delta([&] { p = realloc(Opaque<void*>(nullptr), Opaque(size_t{333})); });
  ASSERT_NE(p, nullptr);
  EXPECT_COUNTS(d, 1, 0, 333);
  EXPECT_GE(malloc_usable_size(p), 333u);
  FreeCounted(p);
}

TEST(Realloc, OfNullToZeroIsAnAllocationOfZeroBytesLikeMalloc) {
  void* p = nullptr;
  const Counts d = Delta([&] { p = realloc(Opaque<void*>(nullptr), Opaque(size_t{0})); });
  EXPECT_NE(p, nullptr);  // as malloc(0) on glibc, jemalloc and tcmalloc
  EXPECT_COUNTS(d, p != nullptr, 0, (p != nullptr) * kZeroRequestBytes);
  const Counts f = Delta([&] { free(Opaque(p)); });
  EXPECT_COUNTS(f, 0, p != nullptr, 0);
}

TEST(Realloc, ToZeroFreesReturnsNullAndCountsOneFree) {
  void* p = malloc(Opaque(size_t{500}));
  ASSERT_NE(p, nullptr);
  void* q = &q;
  const Counts d = Delta([&] { q = realloc(Opaque(p), Opaque(size_t{0})); });
  // glibc, jemalloc (opt.zero_realloc "free") and tcmalloc free the block.
  EXPECT_EQ(q, nullptr);
  EXPECT_COUNTS(d, 0, 1, 0);
  if (q != nullptr) free(q);
}

TEST(Realloc, HugeFailsWithEnomemLeavesTheOldBlockIntactAndIsNotCounted) {
  SKIP_WHERE_ASAN_ABORTS("allocation-size-too-big");
  void* p = malloc(Opaque(size_t{700}));
  ASSERT_NE(p, nullptr);
  Fill(p, 700, 6);
  void* q = &q;
  int err = 0;
  const Counts d = Delta([&] {
    errno = 0;
    q = realloc(Opaque(p), Opaque(kHuge));
    err = errno;
  });
  EXPECT_EQ(q, nullptr);
  EXPECT_EQ(err, ENOMEM);
  EXPECT_COUNTS(d, 0, 0, 0);
  EXPECT_TRUE(HasFill(p, 700, 6));
  EXPECT_GE(malloc_usable_size(p), 700u);
  FreeCounted(p);
}

TEST(Realloc, LongChainKeepsContentsAndCountsEveryStep) {
  constexpr int kSteps = 64;
  size_t size = 8;
  void* p = malloc(Opaque(size));
  ASSERT_NE(p, nullptr);
  Fill(p, size, 7);
  Counts expected{};
  Counts total{};
  for (int i = 0; i < kSteps; ++i) {
    // Up and down through small, medium and mmap-sized blocks.
    const size_t next = (i % 8 == 7) ? 24 : size * 3 / 2 + 8;
    void* q = nullptr;
    total = total + Delta([&] { q = realloc(Opaque(p), Opaque(next)); });
    ASSERT_NE(q, nullptr) << i;
    expected = expected + Counts{1, 1, next};
    ASSERT_TRUE(HasFill(q, std::min(size, next), 7)) << i;
    Fill(q, next, 7);
    p = q;
    size = next;
  }
  EXPECT_COUNTS(total, expected.allocs, expected.frees, expected.bytes);
  FreeCounted(p);
}

TEST(Reallocarray, GrowKeepsContentsAndCountsOneAllocAndOneFreeOfTheProduct) {
  void* p = malloc(Opaque(size_t{64}));
  ASSERT_NE(p, nullptr);
  Fill(p, 64, 8);
  void* q = nullptr;
  const Counts d =
      Delta([&] { q = reallocarray(Opaque(p), Opaque(size_t{100}), Opaque(size_t{48})); });
  ASSERT_NE(q, nullptr);
  EXPECT_COUNTS(d, 1, 1, 4800);
  EXPECT_TRUE(HasFill(q, 64, 8));
  EXPECT_GE(malloc_usable_size(q), 4800u);
  FreeCounted(q);
}

TEST(Reallocarray, OfNullIsAnAllocationOfTheProduct) {
  void* p = nullptr;
  const Counts d = Delta(
      [&] { p = reallocarray(Opaque<void*>(nullptr), Opaque(size_t{10}), Opaque(size_t{12})); });
  ASSERT_NE(p, nullptr);
  EXPECT_COUNTS(d, 1, 0, 120);
  EXPECT_GE(malloc_usable_size(p), 120u);
  FreeCounted(p);
}

TEST(Reallocarray, OverflowReturnsNullWithEnomemKeepsTheOldBlockAndIsNotCounted) {
  SKIP_WHERE_ASAN_ABORTS("reallocarray-overflow");
  void* p = malloc(Opaque(size_t{80}));
  ASSERT_NE(p, nullptr);
  Fill(p, 80, 9);
  void* q = &q;
  int err = 0;
  const Counts d = Delta([&] {
    errno = 0;
    q = reallocarray(Opaque(p), Opaque(size_t{1} << 40), Opaque(size_t{1} << 40));
    err = errno;
  });
  EXPECT_EQ(q, nullptr);
  EXPECT_EQ(err, ENOMEM);
  EXPECT_COUNTS(d, 0, 0, 0);
  EXPECT_TRUE(HasFill(p, 80, 9));
  FreeCounted(p);
}

}  // namespace
}  // namespace cpprof::alloc_test
