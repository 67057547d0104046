// The aligned forms: memalign, aligned_alloc, posix_memalign, valloc and
// pvalloc return blocks of the alignment asked for and count the request.

#include <malloc.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <iterator>
#include <vector>

#include <gtest/gtest.h>

#include "alloc_test_support.h"

namespace cpprof::alloc_test {
namespace {

constexpr size_t kAlignments[] = {16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 65536};

TEST(Memalign, ReturnsBlocksAlignedFrom16To64KiBAndCountsTheRequestedBytes) {
  for (size_t alignment : kAlignments) {
    for (size_t n : {size_t{1}, size_t{100}, alignment * 3, size_t{200000}}) {
      SCOPED_TRACE(::testing::Message() << "alignment " << alignment << " size " << n);
      void* p = nullptr;
      const Counts d = Delta([&] { p = memalign(Opaque(alignment), Opaque(n)); });
      ASSERT_NE(p, nullptr);
      EXPECT_COUNTS(d, 1, 0, n);
      EXPECT_TRUE(IsAligned(p, alignment)) << p;
      EXPECT_GE(malloc_usable_size(p), n);
      Fill(p, n, 10);
      EXPECT_TRUE(HasFill(p, n, 10));
      FreeCounted(p);
    }
  }
}

TEST(AlignedAlloc, ReturnsBlocksAlignedFrom16To64KiBAndCountsTheRequestedBytes) {
  for (size_t alignment : kAlignments) {
    // C11 wants the size to be a multiple of the alignment.
    for (size_t n : {alignment, alignment * 5}) {
      SCOPED_TRACE(::testing::Message() << "alignment " << alignment << " size " << n);
      void* p = nullptr;
      const Counts d = Delta([&] { p = aligned_alloc(Opaque(alignment), Opaque(n)); });
      ASSERT_NE(p, nullptr);
      EXPECT_COUNTS(d, 1, 0, n);
      EXPECT_TRUE(IsAligned(p, alignment)) << p;
      EXPECT_GE(malloc_usable_size(p), n);
      Fill(p, n, 11);
      EXPECT_TRUE(HasFill(p, n, 11));
      FreeCounted(p);
    }
  }
}

TEST(AlignedAlloc, HugeReturnsNullWithEnomemAndIsNotCounted) {
  SKIP_WHERE_ASAN_ABORTS("allocation-size-too-big");
  void* p = &p;
  int err = 0;
  const Counts d = Delta([&] {
    errno = 0;
    p = aligned_alloc(Opaque(size_t{64}), Opaque(kHuge));
    err = errno;
  });
  EXPECT_EQ(p, nullptr);
  EXPECT_EQ(err, ENOMEM);
  EXPECT_COUNTS(d, 0, 0, 0);
}

TEST(PosixMemalign, ReturnsZeroAndBlocksAlignedFromPointerSizeTo64KiB) {
  std::vector<size_t> alignments = {sizeof(void*)};
  alignments.insert(alignments.end(), std::begin(kAlignments), std::end(kAlignments));
  for (size_t alignment : alignments) {
    for (size_t n : {size_t{1}, size_t{100}, alignment * 2, size_t{300000}}) {
      SCOPED_TRACE(::testing::Message() << "alignment " << alignment << " size " << n);
      void* p = nullptr;
      int rc = -1;
      const Counts d = Delta([&] { rc = posix_memalign(&p, Opaque(alignment), Opaque(n)); });
      ASSERT_EQ(rc, 0);
      ASSERT_NE(p, nullptr);
      EXPECT_COUNTS(d, 1, 0, n);
      EXPECT_TRUE(IsAligned(p, alignment)) << p;
      EXPECT_GE(malloc_usable_size(p), n);
      Fill(p, n, 12);
      EXPECT_TRUE(HasFill(p, n, 12));
      FreeCounted(p);
    }
  }
}

TEST(PosixMemalign, BadAlignmentReturnsEinvalLeavesErrnoAndIsNotCounted) {
  SKIP_WHERE_ASAN_ABORTS("invalid-posix-memalign-alignment");
  // Not a power of two, or not a multiple of sizeof(void*).
  for (size_t alignment : {size_t{0}, size_t{1}, size_t{4}, size_t{24}, size_t{48}, size_t{4097}}) {
    SCOPED_TRACE(alignment);
    void* const sentinel = &alignment;
    void* p = sentinel;
    int rc = 0;
    int err = 0;
    const Counts d = Delta([&] {
      errno = EDOM;
      rc = posix_memalign(&p, Opaque(alignment), Opaque(size_t{64}));
      err = errno;
    });
    EXPECT_EQ(rc, EINVAL);
    // POSIX: *memptr is left alone or set to null; errno is not the channel.
    EXPECT_TRUE(p == sentinel || p == nullptr) << p;
    EXPECT_EQ(err, EDOM);
    EXPECT_COUNTS(d, 0, 0, 0);
  }
}

TEST(PosixMemalign, HugeReturnsEnomemAndIsNotCounted) {
  SKIP_WHERE_ASAN_ABORTS("allocation-size-too-big");
  void* p = nullptr;
  int rc = 0;
  const Counts d = Delta([&] { rc = posix_memalign(&p, Opaque(size_t{64}), Opaque(kHuge)); });
  EXPECT_EQ(rc, ENOMEM);
  EXPECT_COUNTS(d, 0, 0, 0);
}

TEST(Valloc, ReturnsPageAlignedBlocksAndCountsTheRequestedBytes) {
  for (size_t n : {size_t{1}, size_t{100}, PageSize(), PageSize() + 1, size_t{500000}}) {
    SCOPED_TRACE(n);
    void* p = nullptr;
    const Counts d = Delta([&] { p = valloc(Opaque(n)); });
    ASSERT_NE(p, nullptr);
    EXPECT_COUNTS(d, 1, 0, n);
    EXPECT_TRUE(IsAligned(p, PageSize())) << p;
    EXPECT_GE(malloc_usable_size(p), n);
    Fill(p, n, 13);
    EXPECT_TRUE(HasFill(p, n, 13));
    FreeCounted(p);
  }
}

TEST(Pvalloc, ReturnsPageAlignedBlocksRoundedUpToWholePagesAndCountsTheRequest) {
  const size_t page = PageSize();
  for (size_t n : {size_t{1}, size_t{100}, page, page + 1, size_t{500000}}) {
    SCOPED_TRACE(n);
    const size_t rounded = (n + page - 1) / page * page;
    void* p = nullptr;
    const Counts d = Delta([&] { p = pvalloc(Opaque(n)); });
    ASSERT_NE(p, nullptr);
    // The bytes asked for; ASan's hooks only see the rounded size it allocates.
    EXPECT_COUNTS(d, 1, 0, kSanitized ? rounded : n);
    EXPECT_TRUE(IsAligned(p, page)) << p;
    EXPECT_GE(malloc_usable_size(p), rounded);
    Fill(p, rounded, 14);  // the whole rounded size is the caller's
    EXPECT_TRUE(HasFill(p, rounded, 14));
    FreeCounted(p);
  }
}

}  // namespace
}  // namespace cpprof::alloc_test
