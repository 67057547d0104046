// Every allocation function cpprof interposes keeps its C/C++ contract
// (alignment, malloc_usable_size, realloc's cases, nullptr, errno, new
// handlers) and is counted exactly as include/cpprof/alloc_stats.h says, on
// the calling thread only.
//
// One source, several builds (tests/alloc/CMakeLists.txt):
//   - linked with libcpprof.a (CPPROF_ALLOC_TEST_LINKED=1): the counters are
//     called directly; in the sanitizer build (CPPROF_SANITIZE=1) they come
//     from ASan's malloc hooks instead of interposition;
//   - linked with nothing of cpprof's and run with libcpprof.so in
//     LD_PRELOAD, alone or ahead of jemalloc or tcmalloc: the counters are
//     found with dlsym, and the forwarding tests check that the memory
//     really comes from the allocator named in LD_PRELOAD.
// Run without cpprof at all, the binary still checks every contract (of the
// bare allocator) and skips only the count assertions.
//
// The file is compiled with -fno-builtin and -fno-allocation-dce: GCC may
// otherwise delete malloc/free and new/delete pairs whose memory is unused,
// and the counts would then test the optimizer instead of the interposer.

#include <dlfcn.h>
#include <fcntl.h>
#include <malloc.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <new>
#include <ostream>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#if CPPROF_ALLOC_TEST_LINKED
#include "cpprof/alloc_stats.h"
#endif

namespace {

// ---------------------------------------------------------------------------
// Reading the counters.

struct Counts {
  uint64_t allocs = 0;
  uint64_t frees = 0;
  uint64_t bytes = 0;

  friend Counts operator-(const Counts& a, const Counts& b) {
    return {a.allocs - b.allocs, a.frees - b.frees, a.bytes - b.bytes};
  }
  friend Counts operator+(const Counts& a, const Counts& b) {
    return {a.allocs + b.allocs, a.frees + b.frees, a.bytes + b.bytes};
  }
  friend bool operator==(const Counts&, const Counts&) = default;
};

void PrintTo(const Counts& c, std::ostream* os) {
  *os << "{allocs " << c.allocs << ", frees " << c.frees << ", bytes " << c.bytes << "}";
}

// The layout of cpprof::AllocStats, which the preloaded build cannot include
// (it links nothing of cpprof's) but must call through a pointer of the
// right type: the struct is returned by value.
struct RawAllocStats {
  uint64_t allocs;
  uint64_t frees;
  uint64_t bytes;
};

bool PreloadMentions(const char* needle) {
  const char* preload = std::getenv("LD_PRELOAD");
  return preload != nullptr && std::strstr(preload, needle) != nullptr;
}

// LD_PRELOAD naming libcpprof says the counters must be there: a preload
// that silently failed must not pass by skipping every count.
bool CpprofPreloaded() { return PreloadMentions("libcpprof"); }

#if CPPROF_ALLOC_TEST_LINKED

static_assert(sizeof(RawAllocStats) == sizeof(cpprof::AllocStats));
static_assert(offsetof(RawAllocStats, allocs) == offsetof(cpprof::AllocStats, allocs));
static_assert(offsetof(RawAllocStats, frees) == offsetof(cpprof::AllocStats, frees));
static_assert(offsetof(RawAllocStats, bytes) == offsetof(cpprof::AllocStats, bytes));

bool CountersReachable() { return true; }
Counts ThreadCounts() {
  const cpprof::AllocStats s = cpprof::thread_alloc_stats();
  return {s.allocs, s.frees, s.bytes};
}
Counts ProcessCounts() {
  const cpprof::AllocStats s = cpprof::alloc_stats();
  return {s.allocs, s.frees, s.bytes};
}
bool CountingAvailable() { return cpprof::alloc_counting_available(); }

#else  // found at run time in a preloaded libcpprof.so

Counts ToCounts(const RawAllocStats& s) { return {s.allocs, s.frees, s.bytes}; }

using StatsFn = RawAllocStats (*)();
using AvailableFn = bool (*)();

struct PreloadedApi {
  StatsFn thread_stats = nullptr;
  StatsFn process_stats = nullptr;
  AvailableFn available = nullptr;
};

const PreloadedApi& Api() {
  static const PreloadedApi api = [] {
    PreloadedApi a;
    // cpprof::thread_alloc_stats(), cpprof::alloc_stats(),
    // cpprof::alloc_counting_available().
    a.thread_stats =
        reinterpret_cast<StatsFn>(dlsym(RTLD_DEFAULT, "_ZN6cpprof18thread_alloc_statsEv"));
    a.process_stats = reinterpret_cast<StatsFn>(dlsym(RTLD_DEFAULT, "_ZN6cpprof11alloc_statsEv"));
    a.available = reinterpret_cast<AvailableFn>(
        dlsym(RTLD_DEFAULT, "_ZN6cpprof24alloc_counting_availableEv"));
    return a;
  }();
  return api;
}

bool CountersReachable() {
  return Api().thread_stats != nullptr && Api().process_stats != nullptr &&
         Api().available != nullptr;
}
Counts ThreadCounts() { return CountersReachable() ? ToCounts(Api().thread_stats()) : Counts{}; }
Counts ProcessCounts() { return CountersReachable() ? ToCounts(Api().process_stats()) : Counts{}; }
bool CountingAvailable() { return CountersReachable() && Api().available(); }

#endif

// Whether count assertions apply. Failing here (rather than skipping) when
// LD_PRELOAD names libcpprof but its counters cannot be found.
bool CountsChecked() {
  if (CountersReachable()) return true;
  if (CpprofPreloaded()) {
    ADD_FAILURE() << "LD_PRELOAD names libcpprof but cpprof::thread_alloc_stats() is not "
                     "reachable through dlsym";
  }
  return false;
}

#define EXPECT_COUNTS(delta, ...)                \
  do {                                           \
    if (CountsChecked()) {                       \
      EXPECT_EQ((delta), (Counts{__VA_ARGS__})); \
    }                                            \
  } while (false)

// The calling thread's counters across `fn`. Nothing else may allocate in
// between: gtest assertions go after.
template <class F>
Counts Delta(F&& fn) {
  const Counts before = ThreadCounts();
  fn();
  const Counts after = ThreadCounts();
  return after - before;
}

// ---------------------------------------------------------------------------
// Keeping the compiler out of the way.

// Hides a value's origin and constness from the optimizer: sizes cannot be
// folded into compile-time warnings, pointers cannot be proven unused.
template <class T>
T Opaque(T v) {
  asm volatile("" : "+r"(v));
  return v;
}

// Makes the memory behind `p` observable, so stores to it are kept.
void Escape(const void* p) { asm volatile("" : : "r"(p) : "memory"); }

// ---------------------------------------------------------------------------
// Contract helpers.

#if CPPROF_SANITIZE
constexpr bool kSanitized = true;
// ASan serves a zero-byte request with a one-byte block, and its hooks see
// only that size.
constexpr uint64_t kZeroRequestBytes = 1;
// ASan reports these as errors and aborts (allocator_may_return_null=0 by
// default) instead of returning null, and serves operator new itself
// without calling new handlers: there is no contract of ours to test.
#define SKIP_WHERE_ASAN_ABORTS(what) \
  GTEST_SKIP() << "under ASan " what " is reported as an error and aborts the process"
#else
constexpr bool kSanitized = false;
constexpr uint64_t kZeroRequestBytes = 0;
#define SKIP_WHERE_ASAN_ABORTS(what) static_cast<void>(0)
#endif

// A request no allocator can satisfy (an exabyte: past the 47-bit address
// space) but below PTRDIFF_MAX, so it reaches the allocator's own checks.
constexpr size_t kHuge = size_t{1} << 60;

constexpr size_t kMiB = size_t{1} << 20;

size_t PageSize() { return static_cast<size_t>(sysconf(_SC_PAGESIZE)); }

bool IsAligned(const void* p, size_t alignment) {
  return reinterpret_cast<uintptr_t>(p) % alignment == 0;
}

// malloc's guarantee: alignment for any object that fits. Requests below 16
// bytes can only hold objects of smaller alignment, and jemalloc and
// tcmalloc give them 8.
size_t MallocAlignment(size_t n) { return n >= 16 ? 16 : (n >= 8 ? 8 : 1); }

// Fills `n` bytes with a pattern derived from `seed`, and checks it.
void Fill(void* p, size_t n, unsigned seed) {
  auto* b = static_cast<unsigned char*>(p);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<unsigned char>(i * 131 + seed);
  Escape(p);
}
bool HasFill(const void* p, size_t n, unsigned seed) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; ++i) {
    if (b[i] != static_cast<unsigned char>(i * 131 + seed)) return false;
  }
  return true;
}
bool AllZero(const void* p, size_t n) {
  const auto* b = static_cast<const unsigned char*>(p);
  return std::all_of(b, b + n, [](unsigned char c) { return c == 0; });
}

// Frees `p`, expecting exactly one free counted.
void FreeCounted(void* p) {
  const Counts d = Delta([&] { free(Opaque(p)); });
  EXPECT_COUNTS(d, 0, 1, 0);
}

constexpr size_t kSizes[] = {1, 7, 8, 16, 24, 100, 1000, 4096, 100000, kMiB, 3 * kMiB};
constexpr size_t kAlignments[] = {16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 65536};

// The exception object a throw of std::bad_alloc allocates (libstdc++ takes
// it from malloc): what a failing throwing operator new legitimately adds.
Counts ThrowBadAllocDelta() {
  return Delta([] {
    try {
      throw std::bad_alloc();
    } catch (const std::bad_alloc&) {
    }
  });
}

// ---------------------------------------------------------------------------
// Counters.

TEST(Counters, AreReachableWhenCpprofIsLinkedOrPreloaded) {
#if CPPROF_ALLOC_TEST_LINKED
  EXPECT_TRUE(CountersReachable());
#else
  if (!CpprofPreloaded()) GTEST_SKIP() << "libcpprof is not in LD_PRELOAD";
  EXPECT_NE(dlsym(RTLD_DEFAULT, "_ZN6cpprof18thread_alloc_statsEv"), nullptr);
  EXPECT_TRUE(CountersReachable());
#endif
  EXPECT_TRUE(CountingAvailable());
}

TEST(Counters, ReadingThemDoesNotAllocate) {
  const Counts d = Delta([] {
    for (int i = 0; i < 10; ++i) {
      Counts t = ThreadCounts();
      Escape(&t);
    }
    Counts p = ProcessCounts();
    Escape(&p);
  });
  EXPECT_COUNTS(d, 0, 0, 0);
}

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
// realloc and reallocarray.

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

// ---------------------------------------------------------------------------
// The aligned forms.

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

// ---------------------------------------------------------------------------
// operator new and delete.

// One replaceable form of operator new with the deallocation form used for
// it; `alignment` 0 for the unaligned forms.
struct NewDeletePair {
  const char* name;
  void* (*allocate)(size_t n, std::align_val_t al);
  void (*deallocate)(void* p, size_t n, std::align_val_t al);
  bool aligned;
};

// clang-format off
const NewDeletePair kNewDeletePairs[] = {
  {"new / delete",
   [](size_t n, std::align_val_t) { return ::operator new(n); },
   [](void* p, size_t, std::align_val_t) { ::operator delete(p); }, false},
  {"new / sized delete",
   [](size_t n, std::align_val_t) { return ::operator new(n); },
   [](void* p, size_t n, std::align_val_t) { ::operator delete(p, n); }, false},
  {"new / nothrow delete",
   [](size_t n, std::align_val_t) { return ::operator new(n); },
   [](void* p, size_t, std::align_val_t) { ::operator delete(p, std::nothrow); }, false},
  {"new[] / delete[]",
   [](size_t n, std::align_val_t) { return ::operator new[](n); },
   [](void* p, size_t, std::align_val_t) { ::operator delete[](p); }, false},
  {"new[] / sized delete[]",
   [](size_t n, std::align_val_t) { return ::operator new[](n); },
   [](void* p, size_t n, std::align_val_t) { ::operator delete[](p, n); }, false},
  {"new[] / nothrow delete[]",
   [](size_t n, std::align_val_t) { return ::operator new[](n); },
   [](void* p, size_t, std::align_val_t) { ::operator delete[](p, std::nothrow); }, false},
  {"nothrow new / delete",
   [](size_t n, std::align_val_t) { return ::operator new(n, std::nothrow); },
   [](void* p, size_t, std::align_val_t) { ::operator delete(p); }, false},
  {"nothrow new[] / delete[]",
   [](size_t n, std::align_val_t) { return ::operator new[](n, std::nothrow); },
   [](void* p, size_t, std::align_val_t) { ::operator delete[](p); }, false},
  {"aligned new / aligned delete",
   [](size_t n, std::align_val_t al) { return ::operator new(n, al); },
   [](void* p, size_t, std::align_val_t al) { ::operator delete(p, al); }, true},
  {"aligned new / sized aligned delete",
   [](size_t n, std::align_val_t al) { return ::operator new(n, al); },
   [](void* p, size_t n, std::align_val_t al) { ::operator delete(p, n, al); }, true},
  {"aligned new / nothrow aligned delete",
   [](size_t n, std::align_val_t al) { return ::operator new(n, al); },
   [](void* p, size_t, std::align_val_t al) { ::operator delete(p, al, std::nothrow); }, true},
  {"aligned new[] / aligned delete[]",
   [](size_t n, std::align_val_t al) { return ::operator new[](n, al); },
   [](void* p, size_t, std::align_val_t al) { ::operator delete[](p, al); }, true},
  {"aligned new[] / sized aligned delete[]",
   [](size_t n, std::align_val_t al) { return ::operator new[](n, al); },
   [](void* p, size_t n, std::align_val_t al) { ::operator delete[](p, n, al); }, true},
  {"aligned new[] / nothrow aligned delete[]",
   [](size_t n, std::align_val_t al) { return ::operator new[](n, al); },
   [](void* p, size_t, std::align_val_t al) { ::operator delete[](p, al, std::nothrow); }, true},
  {"nothrow aligned new / aligned delete",
   [](size_t n, std::align_val_t al) { return ::operator new(n, al, std::nothrow); },
   [](void* p, size_t, std::align_val_t al) { ::operator delete(p, al); }, true},
  {"nothrow aligned new[] / aligned delete[]",
   [](size_t n, std::align_val_t al) { return ::operator new[](n, al, std::nothrow); },
   [](void* p, size_t, std::align_val_t al) { ::operator delete[](p, al); }, true},
};
// clang-format on

TEST(OperatorNew, EveryFormCountsOneAllocAndItsDeleteOneFree) {
  for (const NewDeletePair& form : kNewDeletePairs) {
    const std::vector<size_t> alignments =
        form.aligned ? std::vector<size_t>{32, 64, 256, 4096, 65536} : std::vector<size_t>{16};
    for (size_t alignment : alignments) {
      for (size_t n : {size_t{1}, size_t{48}, size_t{5000}, kMiB}) {
        SCOPED_TRACE(::testing::Message()
                     << form.name << ", alignment " << alignment << ", size " << n);
        const auto al = static_cast<std::align_val_t>(alignment);
        void* p = nullptr;
        const Counts d = Delta([&] { p = form.allocate(Opaque(n), al); });
        ASSERT_NE(p, nullptr);
        EXPECT_COUNTS(d, 1, 0, n);
        EXPECT_TRUE(IsAligned(p, form.aligned ? alignment : MallocAlignment(n))) << p;
        Fill(p, n, 15);
        EXPECT_TRUE(HasFill(p, n, 15));
        const Counts f = Delta([&] { form.deallocate(Opaque(p), n, al); });
        EXPECT_COUNTS(f, 0, 1, 0);
      }
    }
  }
}

TEST(OperatorDelete, OfNullIsNotCountedInAnyForm) {
  const auto al = std::align_val_t{64};
  const Counts d = Delta([&] {
    // A fresh opaque null for each call: the compiler may not assume that
    // one deletion leaves the pointer unusable for the next.
    auto null = [] { return Opaque<void*>(nullptr); };
    ::operator delete(null());
    ::operator delete[](null());
    ::operator delete (null(), size_t{8});
    ::operator delete[](null(), size_t{8});
    ::operator delete(null(), std::nothrow);
    ::operator delete[](null(), std::nothrow);
    ::operator delete(null(), al);
    ::operator delete[](null(), al);
    ::operator delete (null(), size_t{64}, al);
    ::operator delete[](null(), size_t{64}, al);
    ::operator delete(null(), al, std::nothrow);
    ::operator delete[](null(), al, std::nothrow);
  });
  EXPECT_COUNTS(d, 0, 0, 0);
}

struct Widget {
  int values[13];
};
struct WidgetWithDestructor {
  ~WidgetWithDestructor() { Escape(this); }
  int values[13];
};
struct alignas(256) OverAligned {
  char bytes[300];
};
struct alignas(256) OverAlignedWithDestructor {
  ~OverAlignedWithDestructor() { Escape(this); }
  char bytes[300];
};

TEST(NewExpression, ObjectAndArrayCountTheBytesPassedToOperatorNew) {
  Widget* w = nullptr;
  Counts d = Delta([&] { w = new Widget{}; });
  EXPECT_COUNTS(d, 1, 0, sizeof(Widget));
  Escape(w);
  d = Delta([&] { delete Opaque(w); });
  EXPECT_COUNTS(d, 0, 1, 0);

  Widget* a = nullptr;
  const size_t count = Opaque(size_t{7});
  d = Delta([&] { a = new Widget[count]; });
  EXPECT_COUNTS(d, 1, 0, 7 * sizeof(Widget));
  Escape(a);
  d = Delta([&] { delete[] Opaque(a); });
  EXPECT_COUNTS(d, 0, 1, 0);

  // A non-trivial destructor makes the array carry its length in a cookie
  // (Itanium C++ ABI: one size_t before the elements), requested from
  // operator new[] along with them.
  WidgetWithDestructor* c = nullptr;
  d = Delta([&] { c = new WidgetWithDestructor[count]; });
  EXPECT_COUNTS(d, 1, 0, 7 * sizeof(WidgetWithDestructor) + sizeof(size_t));
  d = Delta([&] { delete[] Opaque(c); });
  EXPECT_COUNTS(d, 0, 1, 0);
}

TEST(NewExpression, OverAlignedTypesGetTheirAlignmentAndAreCounted) {
  static_assert(sizeof(OverAligned) == 512);
  OverAligned* o = nullptr;
  Counts d = Delta([&] { o = new OverAligned{}; });
  ASSERT_NE(o, nullptr);
  EXPECT_TRUE(IsAligned(o, 256)) << o;
  EXPECT_COUNTS(d, 1, 0, sizeof(OverAligned));
  Fill(o->bytes, sizeof(o->bytes), 16);
  d = Delta([&] { delete Opaque(o); });
  EXPECT_COUNTS(d, 0, 1, 0);

  const size_t count = Opaque(size_t{3});
  OverAligned* a = nullptr;
  d = Delta([&] { a = new OverAligned[count]; });
  ASSERT_NE(a, nullptr);
  for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(IsAligned(&a[i], 256)) << i;
  EXPECT_COUNTS(d, 1, 0, 3 * sizeof(OverAligned));
  d = Delta([&] { delete[] Opaque(a); });
  EXPECT_COUNTS(d, 0, 1, 0);

  // The cookie of an over-aligned type is padded to its alignment.
  OverAlignedWithDestructor* c = nullptr;
  d = Delta([&] { c = new OverAlignedWithDestructor[count]; });
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(IsAligned(&c[0], 256));
  EXPECT_COUNTS(d, 1, 0, 3 * sizeof(OverAlignedWithDestructor) + 256);
  d = Delta([&] { delete[] Opaque(c); });
  EXPECT_COUNTS(d, 0, 1, 0);
}

TEST(OperatorNew, NothrowFormsReturnNullOnHugeRequestsWithoutCountingThem) {
  SKIP_WHERE_ASAN_ABORTS("allocation-size-too-big");
  // libstdc++'s nothrow new calls the throwing one and catches: the
  // bad_alloc it throws is a real (counted) allocation, the request is not.
  const Counts thrown = ThrowBadAllocDelta();
  const auto al = std::align_val_t{128};
  void* results[4] = {&results, &results, &results, &results};
  const Counts deltas[4] = {
      Delta([&] { results[0] = ::operator new(Opaque(kHuge), std::nothrow); }),
      Delta([&] { results[1] = ::operator new[](Opaque(kHuge), std::nothrow); }),
      Delta([&] { results[2] = ::operator new(Opaque(kHuge), al, std::nothrow); }),
      Delta([&] { results[3] = ::operator new[](Opaque(kHuge), al, std::nothrow); }),
  };
  for (int i = 0; i < 4; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(results[i], nullptr);
    if (CountsChecked()) {
      EXPECT_TRUE(deltas[i] == Counts{} || deltas[i] == thrown)
          << ::testing::PrintToString(deltas[i]) << " vs a throw's "
          << ::testing::PrintToString(thrown);
    }
  }
}

TEST(OperatorNew, ThrowingFormsThrowBadAllocOnHugeRequestsWithoutCountingThem) {
  SKIP_WHERE_ASAN_ABORTS("allocation-size-too-big");
  const Counts thrown = ThrowBadAllocDelta();
  const auto al = std::align_val_t{128};
  using Form = void* (*)(size_t, std::align_val_t);
  const Form forms[] = {
      [](size_t n, std::align_val_t) { return ::operator new(n); },
      [](size_t n, std::align_val_t) { return ::operator new[](n); },
      [](size_t n, std::align_val_t a) { return ::operator new(n, a); },
      [](size_t n, std::align_val_t a) { return ::operator new[](n, a); },
  };
  for (int i = 0; i < 4; ++i) {
    SCOPED_TRACE(i);
    bool caught = false;
    void* p = nullptr;
    const Counts d = Delta([&] {
      try {
        p = forms[i](Opaque(kHuge), al);
      } catch (const std::bad_alloc&) {
        caught = true;
      }
    });
    EXPECT_TRUE(caught);
    EXPECT_EQ(p, nullptr);
    EXPECT_COUNTS(d, thrown.allocs, thrown.frees, thrown.bytes);
  }
}

// ---------------------------------------------------------------------------
// std::new_handler: operator new calls it on failure and retries.

struct NewHandlerScope {
  explicit NewHandlerScope(std::new_handler h) : previous(std::set_new_handler(h)) {}
  ~NewHandlerScope() { std::set_new_handler(previous); }
  std::new_handler previous;
};

int g_handler_calls = 0;
void* g_reserve = nullptr;
struct HandlerGaveUp {};

// The virtual memory size of the process, in bytes, read without allocating.
size_t VirtualMemorySize() {
  char buf[128] = {};
  const int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  const ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return 0;
  return std::strtoull(buf, nullptr, 10) * PageSize();
}

TEST(NewHandler, ThatFreesAReserveLetsTheRetrySucceed) {
  SKIP_WHERE_ASAN_ABORTS("a failed operator new");
  // An address-space limit makes the request fail while the reserve is held
  // and fit once the handler has freed it.
  constexpr size_t kReserve = 256 * kMiB;
  constexpr size_t kRequest = 200 * kMiB;
  g_reserve = malloc(Opaque(kReserve));
  ASSERT_NE(g_reserve, nullptr);
  g_handler_calls = 0;
  const size_t vm = VirtualMemorySize();
  ASSERT_GT(vm, 0u);
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_AS, &saved), 0);
  rlimit limited = saved;
  limited.rlim_cur = vm + 128 * kMiB;
  if (saved.rlim_cur != RLIM_INFINITY && saved.rlim_cur < limited.rlim_cur) {
    GTEST_SKIP() << "RLIMIT_AS is already lower than this test needs";
  }
  NewHandlerScope scope([] {
    ++g_handler_calls;
    if (g_reserve == nullptr) throw HandlerGaveUp{};
    free(g_reserve);
    g_reserve = nullptr;
  });
  void* p = nullptr;
  bool gave_up = false;
  bool bad_alloc = false;
  ASSERT_EQ(setrlimit(RLIMIT_AS, &limited), 0);
  const Counts d = Delta([&] {
    try {
      p = ::operator new(Opaque(kRequest));
    } catch (const HandlerGaveUp&) {
      gave_up = true;
    } catch (const std::bad_alloc&) {
      bad_alloc = true;
    }
  });
  ASSERT_EQ(setrlimit(RLIMIT_AS, &saved), 0);
  EXPECT_FALSE(gave_up) << "the allocator did not reuse the freed reserve";
  EXPECT_FALSE(bad_alloc);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(g_handler_calls, 1);
  EXPECT_EQ(g_reserve, nullptr);
  // The failed attempt is not counted; the handler's free and the retry are.
  EXPECT_COUNTS(d, 1, 1, kRequest);
  std::memset(p, 1, PageSize());
  ::operator delete(p, kRequest);
  if (g_reserve != nullptr) free(g_reserve);
}

TEST(NewHandler, ThatThrowsPropagatesItsExceptionOutOfEveryThrowingForm) {
  SKIP_WHERE_ASAN_ABORTS("a failed operator new");
  NewHandlerScope scope([] {
    ++g_handler_calls;
    throw HandlerGaveUp{};
  });
  const auto al = std::align_val_t{64};
  using Form = void* (*)(size_t, std::align_val_t);
  const Form forms[] = {
      [](size_t n, std::align_val_t) { return ::operator new(n); },
      [](size_t n, std::align_val_t) { return ::operator new[](n); },
      [](size_t n, std::align_val_t a) { return ::operator new(n, a); },
      [](size_t n, std::align_val_t a) { return ::operator new[](n, a); },
  };
  for (int i = 0; i < 4; ++i) {
    SCOPED_TRACE(i);
    g_handler_calls = 0;
    bool caught = false;
    try {
      void* p = forms[i](Opaque(kHuge), al);
      Escape(p);
    } catch (const HandlerGaveUp&) {
      caught = true;
    }
    EXPECT_TRUE(caught);
    EXPECT_EQ(g_handler_calls, 1);
  }
}

TEST(NewHandler, IsCalledUntilItUninstallsItselfThenNewThrowsBadAlloc) {
  SKIP_WHERE_ASAN_ABORTS("a failed operator new");
  g_handler_calls = 0;
  NewHandlerScope scope([] {
    if (++g_handler_calls == 3) std::set_new_handler(nullptr);
  });
  bool caught = false;
  try {
    void* p = ::operator new(Opaque(kHuge));
    Escape(p);
  } catch (const std::bad_alloc&) {
    caught = true;
  }
  EXPECT_TRUE(caught);
  EXPECT_EQ(g_handler_calls, 3);
}

TEST(NewHandler, IsCalledByNothrowNewWhichReturnsNullWhenItThrowsBadAlloc) {
  SKIP_WHERE_ASAN_ABORTS("a failed operator new");
  NewHandlerScope scope([] {
    ++g_handler_calls;
    throw std::bad_alloc();
  });
  const auto al = std::align_val_t{64};
  g_handler_calls = 0;
  EXPECT_EQ(::operator new(Opaque(kHuge), std::nothrow), nullptr);
  EXPECT_EQ(g_handler_calls, 1);
  g_handler_calls = 0;
  EXPECT_EQ(::operator new[](Opaque(kHuge), std::nothrow), nullptr);
  EXPECT_EQ(g_handler_calls, 1);
  g_handler_calls = 0;
  EXPECT_EQ(::operator new(Opaque(kHuge), al, std::nothrow), nullptr);
  EXPECT_EQ(g_handler_calls, 1);
}

// ---------------------------------------------------------------------------
// Threads.

// Spins until `flag` holds `value`, without allocating.
void AwaitStage(const std::atomic<int>& flag, int value) {
  while (flag.load(std::memory_order_acquire) != value) sched_yield();
}

TEST(ThreadCounts, AllocationsOnAnotherThreadAreCountedThereNotHere) {
  std::atomic<int> stage{0};
  Counts worker_delta;
  // Starting a thread allocates on the starting thread (its state, its TLS
  // block): the window opens only once the worker exists.
  std::thread worker([&] {
    AwaitStage(stage, 1);
    worker_delta = Delta([] {
      for (int i = 0; i < 100; ++i) free(malloc(Opaque(size_t{64})));
      delete Opaque(new Widget{});
    });
    stage.store(2, std::memory_order_release);
  });
  const Counts before = ThreadCounts();
  stage.store(1, std::memory_order_release);
  AwaitStage(stage, 2);
  const Counts after = ThreadCounts();
  worker.join();
  EXPECT_COUNTS(after - before, 0, 0, 0);
  EXPECT_COUNTS(worker_delta, 101, 101, 100 * 64 + sizeof(Widget));
}

TEST(ThreadCounts, AFreeIsCountedOnTheThreadThatFreesNotTheOneThatAllocated) {
  std::atomic<int> stage{0};
  void* block = nullptr;
  Counts worker_delta;
  std::thread worker([&] {
    AwaitStage(stage, 1);
    worker_delta = Delta([&] { free(Opaque(block)); });
    stage.store(2, std::memory_order_release);
  });
  const Counts here = Delta([&] {
    block = malloc(Opaque(size_t{4000}));
    stage.store(1, std::memory_order_release);
    AwaitStage(stage, 2);
  });
  worker.join();
  EXPECT_COUNTS(here, 1, 0, 4000);
  EXPECT_COUNTS(worker_delta, 0, 1, 0);
}

TEST(ProcessCounts, IncludeThreadsThatHaveExited) {
  constexpr uint64_t kBlocks = 1000;
  constexpr uint64_t kSize = 48;
  const Counts before = ProcessCounts();
  std::thread([] {
    for (uint64_t i = 0; i < kBlocks; ++i) free(malloc(Opaque(kSize)));
  }).join();
  const Counts after = ProcessCounts();
  if (!CountsChecked()) return;
  const Counts d = after - before;
  // Starting and joining the thread allocates a little more; counting any
  // block twice would show as more than the slack.
  EXPECT_GE(d.allocs, kBlocks);
  EXPECT_LE(d.allocs, kBlocks + 16);
  EXPECT_GE(d.frees, kBlocks);
  EXPECT_LE(d.frees, kBlocks + 16);
  EXPECT_GE(d.bytes, kBlocks * kSize);
  EXPECT_LE(d.bytes, kBlocks * kSize + 64 * 1024);
  EXPECT_GE(after.allocs, ThreadCounts().allocs);
}

// ---------------------------------------------------------------------------
// Allocations made before main().

constexpr size_t kBeforeMainBytes = 12345;

// Runs during static initialization, when cpprof's own initialization may
// or may not have happened yet (in the linked build, the order across
// translation units is unspecified).
struct BeforeMain {
  BeforeMain() {
    process_before = ProcessCounts();
    thread_before = ThreadCounts();
    block = static_cast<unsigned char*>(malloc(Opaque(kBeforeMainBytes)));
    widget = new Widget{};
    thread_after = ThreadCounts();
    process_after = ProcessCounts();
    if (block != nullptr) Fill(block, kBeforeMainBytes, 17);
  }
  Counts process_before, thread_before, thread_after, process_after;
  unsigned char* block = nullptr;
  Widget* widget = nullptr;
};
BeforeMain g_before_main;

TEST(StaticInit, AllocationsBeforeMainWorkAndAreCountedInTheProcessTotals) {
  ASSERT_NE(g_before_main.block, nullptr);
  ASSERT_NE(g_before_main.widget, nullptr);
  EXPECT_TRUE(HasFill(g_before_main.block, kBeforeMainBytes, 17));
  EXPECT_GE(malloc_usable_size(g_before_main.block), kBeforeMainBytes);
  const Counts thread_delta = g_before_main.thread_after - g_before_main.thread_before;
  const Counts process_delta = g_before_main.process_after - g_before_main.process_before;
  EXPECT_COUNTS(thread_delta, 2, 0, kBeforeMainBytes + sizeof(Widget));
  // No other thread runs before main (cpprof's own are left out).
  EXPECT_COUNTS(process_delta, 2, 0, kBeforeMainBytes + sizeof(Widget));
  const Counts now = ProcessCounts();
  if (CountsChecked()) {
    EXPECT_GE(now.allocs, g_before_main.process_after.allocs);
    EXPECT_GE(now.bytes, g_before_main.process_after.bytes);
  }
  const Counts d = Delta([] {
    free(Opaque(g_before_main.block));
    delete Opaque(g_before_main.widget);
  });
  g_before_main.block = nullptr;
  g_before_main.widget = nullptr;
  EXPECT_COUNTS(d, 0, 2, 0);
}

// ---------------------------------------------------------------------------
// Stress: four threads, mixed operations, exact counts per thread.

struct StressResult {
  Counts expected;
  Counts counted;
  uint64_t corrupt = 0;     // a block's tags did not survive
  uint64_t misaligned = 0;  // a block did not have its alignment
  uint64_t failed = 0;      // an allocation returned null
};

void RunStress(uint64_t seed, int ops, StressResult& out) {
  enum class Kind : uint8_t { kEmpty, kMalloc, kNew, kAlignedNew };
  struct Slot {
    unsigned char* p = nullptr;
    size_t size = 0;
    size_t alignment = 0;
    Kind kind = Kind::kEmpty;
    unsigned char tag = 0;
  };
  Slot slots[64];
  uint64_t state = seed * 0x9e3779b97f4a7c15ull + 1;
  auto next = [&state] {  // xorshift64*
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 0x2545f4914f6cdd1dull;
  };
  Counts expected{};
  auto tag = [&](Slot& s, unsigned char t) {
    s.tag = t;
    s.p[0] = t;
    s.p[s.size - 1] = t;
  };
  auto release = [&](Slot& s) {
    if (s.kind == Kind::kEmpty) return;
    if (s.p[0] != s.tag || s.p[s.size - 1] != s.tag) ++out.corrupt;
    switch (s.kind) {
      case Kind::kMalloc:
        free(s.p);
        break;
      case Kind::kNew:
        ::operator delete(s.p, s.size);
        break;
      case Kind::kAlignedNew:
        ::operator delete (s.p, s.size, std::align_val_t{s.alignment});
        break;
      case Kind::kEmpty:
        break;
    }
    ++expected.frees;
    s = Slot{};
  };
  auto place = [&](Slot& s, void* p, size_t size, size_t alignment, Kind kind, unsigned char t) {
    if (p == nullptr) {
      ++out.failed;
      return;
    }
    if (!IsAligned(p, alignment)) ++out.misaligned;
    s.p = static_cast<unsigned char*>(p);
    s.size = size;
    s.alignment = alignment;
    s.kind = kind;
    ++expected.allocs;
    expected.bytes += size;
    tag(s, t);
  };

  const Counts before = ThreadCounts();
  for (int i = 0; i < ops; ++i) {
    const uint64_t r = next();
    Slot& s = slots[r % 64];
    const unsigned op = (r >> 8) % 20;
    // Mostly small blocks, some medium, a few past the mmap threshold.
    size_t size = 1 + (r >> 16) % 1024;
    if ((r >> 32) % 64 == 0) size = 1 + (r >> 40) % 65536;
    if ((r >> 32) % 2048 == 1) size = 256 * 1024 + (r >> 40) % 65536;
    const size_t alignment = size_t{16} << ((r >> 48) % 9);  // 16 .. 4096
    const auto t = static_cast<unsigned char>(r >> 56);
    if (op < 6) {
      release(s);
      place(s, malloc(size), size, MallocAlignment(size), Kind::kMalloc, t);
    } else if (op < 8) {
      release(s);
      unsigned char* p = static_cast<unsigned char*>(calloc(1, size));
      if (p != nullptr && (p[0] != 0 || p[size - 1] != 0)) ++out.corrupt;
      place(s, p, size, MallocAlignment(size), Kind::kMalloc, t);
    } else if (op < 11) {
      // realloc chains: grow or shrink a malloc'd block in place or moved.
      if (s.kind != Kind::kMalloc) release(s);
      const size_t old_size = s.size;
      const unsigned char old_tag = s.tag;
      void* p = realloc(s.p, size);
      if (p == nullptr) {
        ++out.failed;
        continue;
      }
      if (s.p != nullptr) {
        ++expected.frees;
        const auto* q = static_cast<unsigned char*>(p);
        if (q[0] != old_tag || (size >= old_size && q[old_size - 1] != old_tag)) ++out.corrupt;
      }
      s = Slot{};
      place(s, p, size, MallocAlignment(size), Kind::kMalloc, t);
    } else if (op == 11) {
      release(s);
      void* p = nullptr;
      if (posix_memalign(&p, alignment, size) != 0) p = nullptr;
      place(s, p, size, alignment, Kind::kMalloc, t);
    } else if (op == 12) {
      release(s);
      const size_t rounded = (size + alignment - 1) / alignment * alignment;
      place(s, aligned_alloc(alignment, rounded), rounded, alignment, Kind::kMalloc, t);
    } else if (op == 13) {
      release(s);
      place(s, memalign(alignment, size), size, alignment, Kind::kMalloc, t);
    } else if (op < 16) {
      release(s);
      place(s, ::operator new(size), size, MallocAlignment(size), Kind::kNew, t);
    } else if (op == 16) {
      release(s);
      place(s, ::operator new (size, std::align_val_t{alignment}), size, alignment,
            Kind::kAlignedNew, t);
    } else {
      release(s);
    }
  }
  for (Slot& s : slots) release(s);
  out.counted = ThreadCounts() - before;
  out.expected = expected;
}

TEST(Stress, FourThreadsOfMixedOperationsAreCountedExactlyPerThread) {
  constexpr int kThreads = 4;
  // ASan's allocator (poisoning, quarantine) is about forty times slower:
  // fewer operations keep the sanitizer run near the release run's time.
  constexpr int kOps = kSanitized ? 50000 : 200000;
  StressResult results[kThreads];
  std::vector<std::thread> threads;
  const Counts process_before = ProcessCounts();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back(RunStress, static_cast<uint64_t>(t + 1), kOps, std::ref(results[t]));
  }
  for (std::thread& t : threads) t.join();
  const Counts process_delta = ProcessCounts() - process_before;
  Counts sum{};
  for (int t = 0; t < kThreads; ++t) {
    SCOPED_TRACE(t);
    EXPECT_EQ(results[t].corrupt, 0u);
    EXPECT_EQ(results[t].misaligned, 0u);
    EXPECT_EQ(results[t].failed, 0u);
    EXPECT_GT(results[t].expected.allocs, uint64_t{kOps} / 2);
    EXPECT_COUNTS(results[t].counted, results[t].expected.allocs, results[t].expected.frees,
                  results[t].expected.bytes);
    sum = sum + results[t].expected;
  }
  if (CountsChecked()) {
    EXPECT_GE(process_delta.allocs, sum.allocs);
    EXPECT_GE(process_delta.frees, sum.frees);
    EXPECT_GE(process_delta.bytes, sum.bytes);
  }
}

// ---------------------------------------------------------------------------
// Forwarding: the memory comes from the allocator below cpprof.

enum class Allocator { kGlibc, kJemalloc, kTcmalloc };

Allocator ExpectedAllocator() {
  if (PreloadMentions("jemalloc")) return Allocator::kJemalloc;
  if (PreloadMentions("tcmalloc")) return Allocator::kTcmalloc;
  return Allocator::kGlibc;
}

using MallctlFn = int (*)(const char*, void*, size_t*, void*, size_t);
using SallocxFn = size_t (*)(const void*, int);
using TcGetNumericFn = int (*)(const char*, size_t*);
using TcAllocatedSizeFn = size_t (*)(const void*);

MallctlFn Mallctl() { return reinterpret_cast<MallctlFn>(dlsym(RTLD_DEFAULT, "mallctl")); }
TcGetNumericFn TcGetNumeric() {
  return reinterpret_cast<TcGetNumericFn>(
      dlsym(RTLD_DEFAULT, "MallocExtension_GetNumericProperty"));
}

// glibc's own heap: bytes in use in its arenas plus its mmapped blocks.
int64_t GlibcInUse() {
  const struct mallinfo2 mi = mallinfo2();
  return static_cast<int64_t>(mi.uordblks + mi.hblkhd);
}

// The expected allocator's count of bytes in use (for jemalloc: this
// thread's allocated minus deallocated), from its own statistics.
int64_t AllocatorInUse() {
  switch (ExpectedAllocator()) {
    case Allocator::kGlibc:
      return GlibcInUse();
    case Allocator::kJemalloc: {
      uint64_t allocated = 0;
      uint64_t deallocated = 0;
      size_t len = sizeof(uint64_t);
      if (Mallctl()("thread.allocated", &allocated, &len, nullptr, 0) != 0) return -1;
      len = sizeof(uint64_t);
      if (Mallctl()("thread.deallocated", &deallocated, &len, nullptr, 0) != 0) return -1;
      return static_cast<int64_t>(allocated - deallocated);
    }
    case Allocator::kTcmalloc: {
      size_t value = 0;
      if (TcGetNumeric()("generic.current_allocated_bytes", &value) == 0) return -1;
      return static_cast<int64_t>(value);
    }
  }
  return -1;
}

TEST(Forwarding, TheAllocatorNamedInLdPreloadIsLoaded) {
  if (kSanitized) GTEST_SKIP() << "ASan's allocator serves every call";
  switch (ExpectedAllocator()) {
    case Allocator::kGlibc:
      EXPECT_EQ(Mallctl(), nullptr);
      EXPECT_EQ(TcGetNumeric(), nullptr);
      break;
    case Allocator::kJemalloc: {
      ASSERT_NE(Mallctl(), nullptr);
      bool stats = false;
      size_t len = sizeof(stats);
      ASSERT_EQ(Mallctl()("config.stats", &stats, &len, nullptr, 0), 0);
      EXPECT_TRUE(stats) << "this jemalloc keeps no statistics to check forwarding with";
      break;
    }
    case Allocator::kTcmalloc:
      EXPECT_NE(TcGetNumeric(), nullptr);
      break;
  }
  if (CpprofPreloaded()) {
    EXPECT_TRUE(CountersReachable());
  }
}

// One allocation function with its matching release.
struct AllocFn {
  const char* name;
  void* (*allocate)(size_t n);
  void (*release)(void* p, size_t n);
};

void FreeBlock(void* p, size_t) { free(p); }

// clang-format off
const AllocFn kAllocFns[] = {
  {"malloc", [](size_t n) { return malloc(n); }, FreeBlock},
  {"calloc", [](size_t n) { return calloc(n / 16, 16); }, FreeBlock},
  {"realloc(nullptr)", [](size_t n) { return realloc(nullptr, n); }, FreeBlock},
  {"realloc grow", [](size_t n) { return realloc(malloc(16), n); }, FreeBlock},
  {"reallocarray", [](size_t n) { return reallocarray(nullptr, n / 16, 16); }, FreeBlock},
  {"reallocarray grow", [](size_t n) { return reallocarray(malloc(16), n / 16, 16); }, FreeBlock},
  {"memalign", [](size_t n) { return memalign(4096, n); }, FreeBlock},
  {"aligned_alloc", [](size_t n) { return aligned_alloc(4096, n); }, FreeBlock},
  {"posix_memalign", [](size_t n) {
     void* p = nullptr;
     return posix_memalign(&p, 4096, n) == 0 ? p : nullptr;
   }, FreeBlock},
  {"valloc", [](size_t n) { return valloc(n); }, FreeBlock},
  {"pvalloc", [](size_t n) { return pvalloc(n); }, FreeBlock},
  {"new", [](size_t n) { return ::operator new(n); },
   [](void* p, size_t) { ::operator delete(p); }},
  {"new / sized delete", [](size_t n) { return ::operator new(n); },
   [](void* p, size_t n) { ::operator delete(p, n); }},
  {"new[]", [](size_t n) { return ::operator new[](n); },
   [](void* p, size_t n) { ::operator delete[](p, n); }},
  {"nothrow new", [](size_t n) { return ::operator new(n, std::nothrow); },
   [](void* p, size_t) { ::operator delete(p, std::nothrow); }},
  {"aligned new", [](size_t n) { return ::operator new(n, std::align_val_t{512}); },
   [](void* p, size_t n) { ::operator delete(p, n, std::align_val_t{512}); }},
  {"aligned new[]", [](size_t n) { return ::operator new[](n, std::align_val_t{512}); },
   [](void* p, size_t) { ::operator delete[](p, std::align_val_t{512}); }},
  {"nothrow aligned new", [](size_t n) {
     return ::operator new(n, std::align_val_t{512}, std::nothrow); },
   [](void* p, size_t) { ::operator delete(p, std::align_val_t{512}, std::nothrow); }},
};
// clang-format on

TEST(Forwarding, EveryFunctionTakesItsMemoryFromTheAllocatorBelowAndGivesItBack) {
  if (kSanitized) GTEST_SKIP() << "ASan's allocator serves every call";
  const Allocator allocator = ExpectedAllocator();
  ASSERT_GE(AllocatorInUse(), 0);
  constexpr size_t n = 2 * kMiB;
  // Most of the block is enough: the realloc forms also free their small
  // starting block, which the statistics subtract.
  constexpr int64_t kMost = static_cast<int64_t>(n) - 4096;
  for (const AllocFn& fn : kAllocFns) {
    SCOPED_TRACE(fn.name);
    const int64_t before = AllocatorInUse();
    const int64_t glibc_before = GlibcInUse();
    void* p = fn.allocate(Opaque(n));
    const int64_t after = AllocatorInUse();
    const int64_t glibc_after = GlibcInUse();
    ASSERT_NE(p, nullptr);
    Fill(p, 4096, 18);
    EXPECT_GE(after - before, kMost) << "the block is not in the statistics "
                                        "of the allocator in LD_PRELOAD";
    if (allocator != Allocator::kGlibc && glibc_after - glibc_before >= kMost) {
      ADD_FAILURE() << "the block came from glibc's malloc; leaking it rather than handing it "
                       "to another allocator's free";
      continue;
    }
    const int64_t before_release = AllocatorInUse();
    fn.release(Opaque(p), n);
    EXPECT_GE(before_release - AllocatorInUse(), kMost)
        << "the block did not go back to the allocator in LD_PRELOAD";
  }
}

TEST(Forwarding, MallocUsableSizeIsTheAnswerOfTheAllocatorBelow) {
  if (kSanitized) GTEST_SKIP() << "ASan's allocator serves every call";
  for (size_t n : {size_t{1}, size_t{100}, size_t{1000}, size_t{70000}, kMiB + 1}) {
    SCOPED_TRACE(n);
    void* p = malloc(Opaque(n));
    ASSERT_NE(p, nullptr);
    const size_t usable = malloc_usable_size(p);
    switch (ExpectedAllocator()) {
      case Allocator::kGlibc:
        // A chunk holds the request plus at most one alignment unit and a
        // header word, or whole pages when mmapped.
        EXPECT_GE(usable, n);
        EXPECT_LE(usable, n < 128 * 1024 ? n + 32 : n + PageSize());
        break;
      case Allocator::kJemalloc: {
        const auto sallocx = reinterpret_cast<SallocxFn>(dlsym(RTLD_DEFAULT, "sallocx"));
        ASSERT_NE(sallocx, nullptr);
        EXPECT_EQ(usable, sallocx(p, 0));
        break;
      }
      case Allocator::kTcmalloc: {
        const auto size_of = reinterpret_cast<TcAllocatedSizeFn>(
            dlsym(RTLD_DEFAULT, "MallocExtension_GetAllocatedSize"));
        ASSERT_NE(size_of, nullptr);
        EXPECT_EQ(usable, size_of(p));
        break;
      }
    }
    free(p);
  }
}

}  // namespace
