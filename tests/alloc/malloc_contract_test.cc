// malloc, free, calloc and malloc_usable_size: alignment, zero and huge
// requests, zeroed memory, errno, and one alloc or free counted per call.

#include <malloc.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include <gtest/gtest.h>

#include "alloc_test_support.h"

namespace cpprof::alloc_test {
namespace {

constexpr size_t kSizes[] = {1, 7, 8, 16, 24, 100, 1000, 4096, 100000, kMiB, 3 * kMiB};

// ---------------------------------------------------------------------------
// malloc and free.

TEST(Malloc, ReturnsAlignedUsableBlockAndCountsOneAllocOfTheRequestedBytes) {
  for (size_t n : kSizes) {
    SCOPED_TRACE(n);
    void* p = nullptr;
    const Counts d = Delta([&] { p = malloc(Opaque(n)); });
    ASSERT_NE(p, nullptr);
    EXPECT_COUNTS(d, 1, 0, n);
    EXPECT_TRUE(IsAligned(p, MallocAlignment(n))) << p;
    EXPECT_GE(malloc_usable_size(p), n);
    Fill(p, n, 1);
    EXPECT_TRUE(HasFill(p, n, 1));
    FreeCounted(p);
  }
}

TEST(Malloc, ZeroBytesReturnsAUniqueFreeablePointerOrNull) {
  void* a = nullptr;
  void* b = nullptr;
  const Counts d = Delta([&] {
    a = malloc(Opaque(size_t{0}));
    b = malloc(Opaque(size_t{0}));
  });
  const uint64_t non_null = (a != nullptr) + (b != nullptr);
  // glibc, jemalloc and tcmalloc all return a distinct minimal block.
  EXPECT_NE(a, nullptr);
  if (a != nullptr && b != nullptr) {
    EXPECT_NE(a, b);
  }
  EXPECT_COUNTS(d, non_null, 0, non_null * kZeroRequestBytes);
  const Counts f = Delta([&] {
    free(Opaque(a));
    free(Opaque(b));
  });
  EXPECT_COUNTS(f, 0, non_null, 0);
}

TEST(Malloc, HugeRequestReturnsNullWithEnomemAndIsNotCounted) {
  SKIP_WHERE_ASAN_ABORTS("allocation-size-too-big");
  void* p = &p;
  int err = 0;
  const Counts d = Delta([&] {
    errno = 0;
    p = malloc(Opaque(kHuge));
    err = errno;
  });
  EXPECT_EQ(p, nullptr);
  EXPECT_EQ(err, ENOMEM);
  EXPECT_COUNTS(d, 0, 0, 0);
}

TEST(Free, NullIsANoOpAndNotCounted) {
  const Counts d = Delta([] {
    free(Opaque<void*>(nullptr));
    free(Opaque<void*>(nullptr));
  });
  EXPECT_COUNTS(d, 0, 0, 0);
}

TEST(Free, KeepsErrnoAndCountsOneFreeWithoutBytes) {
  void* p = malloc(Opaque(size_t{64}));
  ASSERT_NE(p, nullptr);
  int err = 0;
  const Counts d = Delta([&] {
    errno = EDOM;  // free() must not clobber errno (POSIX.1-2024)
    free(Opaque(p));
    err = errno;
  });
  EXPECT_COUNTS(d, 0, 1, 0);
  EXPECT_EQ(err, EDOM);
}

// ---------------------------------------------------------------------------
// calloc.

TEST(Calloc, ReturnsZeroedMemoryEvenWhenReusingDirtyBlocksAndCountsTheProduct) {
  for (size_t n : kSizes) {
    SCOPED_TRACE(n);
    // Dirty a block of the same size first so calloc has one to reuse.
    void* dirty = malloc(Opaque(n));
    ASSERT_NE(dirty, nullptr);
    std::memset(dirty, 0xa5, n);
    Escape(dirty);
    free(Opaque(dirty));

    void* p = nullptr;
    const size_t count = n % 4 == 0 ? 4 : 1;
    const size_t size = n / count;
    const Counts d = Delta([&] { p = calloc(Opaque(count), Opaque(size)); });
    ASSERT_NE(p, nullptr);
    EXPECT_COUNTS(d, 1, 0, count * size);
    EXPECT_TRUE(AllZero(p, count * size));
    EXPECT_TRUE(IsAligned(p, MallocAlignment(n)));
    EXPECT_GE(malloc_usable_size(p), count * size);
    FreeCounted(p);
  }
}

TEST(Calloc, ZeroElementsBehavesLikeMallocOfZero) {
  void* p = nullptr;
  const Counts d = Delta([&] { p = calloc(Opaque(size_t{0}), Opaque(size_t{8})); });
  EXPECT_NE(p, nullptr);
  EXPECT_COUNTS(d, p != nullptr, 0, (p != nullptr) * kZeroRequestBytes);
  const Counts f = Delta([&] { free(Opaque(p)); });
  EXPECT_COUNTS(f, 0, p != nullptr, 0);
}

TEST(Calloc, OverflowingProductReturnsNullWithEnomemAndIsNotCounted) {
  SKIP_WHERE_ASAN_ABORTS("calloc-overflow");
  void* p = &p;
  int err = 0;
  const Counts d = Delta([&] {
    errno = 0;
    p = calloc(Opaque(size_t{1} << 33), Opaque(size_t{1} << 33));
    err = errno;
  });
  EXPECT_EQ(p, nullptr);
  EXPECT_EQ(err, ENOMEM);
  EXPECT_COUNTS(d, 0, 0, 0);
}

TEST(Calloc, HugeProductReturnsNullWithEnomemAndIsNotCounted) {
  SKIP_WHERE_ASAN_ABORTS("allocation-size-too-big");
  void* p = &p;
  int err = 0;
  const Counts d = Delta([&] {
    errno = 0;
    p = calloc(Opaque(kHuge / 8), Opaque(size_t{8}));
    err = errno;
  });
  EXPECT_EQ(p, nullptr);
  EXPECT_EQ(err, ENOMEM);
  EXPECT_COUNTS(d, 0, 0, 0);
}

// ---------------------------------------------------------------------------
// malloc_usable_size.

TEST(MallocUsableSize, OfNullIsZeroAndNotCounted) {
  size_t usable = 1;
  const Counts d = Delta([&] { usable = malloc_usable_size(Opaque<void*>(nullptr)); });
  EXPECT_EQ(usable, 0u);
  EXPECT_COUNTS(d, 0, 0, 0);
}

TEST(MallocUsableSize, CoversTheRequestForEveryKindOfBlockAndIsNotCounted) {
  constexpr size_t n = 1234;
  struct Block {
    const char* kind;
    void* p;
  };
  void* pm = nullptr;
  ASSERT_EQ(posix_memalign(&pm, 256, n), 0);
  void* grown = malloc(Opaque(size_t{10}));
  grown = realloc(grown, Opaque(n));
  const Block blocks[] = {
      {"malloc", malloc(Opaque(n))},
      {"calloc", calloc(Opaque(size_t{2}), Opaque(n / 2))},
      {"realloc", grown},
      {"reallocarray", reallocarray(nullptr, Opaque(size_t{2}), Opaque(n / 2))},
      {"memalign", memalign(Opaque(size_t{128}), Opaque(n))},
      {"aligned_alloc", aligned_alloc(Opaque(size_t{64}), Opaque(size_t{64 * 20}))},
      {"posix_memalign", pm},
      {"valloc", valloc(Opaque(n))},
      {"pvalloc", pvalloc(Opaque(n))},
  };
  for (const Block& b : blocks) {
    SCOPED_TRACE(b.kind);
    ASSERT_NE(b.p, nullptr);
    size_t usable = 0;
    const Counts d = Delta([&] { usable = malloc_usable_size(Opaque(b.p)); });
    EXPECT_GE(usable, n);
    EXPECT_COUNTS(d, 0, 0, 0);
    // Everything up to the usable size may be written.
    std::memset(b.p, 0x5a, usable);
    Escape(b.p);
    free(b.p);
  }
}

}  // namespace
}  // namespace cpprof::alloc_test
