// Every allocation function cpprof interposes keeps its C/C++ contract
// (alignment, malloc_usable_size, realloc's cases, nullptr, errno, new
// handlers) and is counted exactly as include/cpprof/alloc_stats.h says, on
// the calling thread only. This header holds what the tests of that share:
// reading the counters, keeping the compiler out of the way, contract
// helpers, and probes of the allocator below cpprof.
//
// One set of sources, several builds (tests/alloc/CMakeLists.txt):
//   - linked with libcpprof.a (CPPROF_ALLOC_TEST_LINKED=1): the counters are
//     called directly; in the sanitizer build (CPPROF_SANITIZE=1) they come
//     from ASan's malloc hooks instead of interposition;
//   - linked with nothing of cpprof's and run with libcpprof.so in
//     LD_PRELOAD, alone or ahead of jemalloc or tcmalloc: the counters are
//     found with dlsym, and the forwarding tests check that the memory
//     really comes from the allocator named in LD_PRELOAD.
// Each of those runs twice (outside the sanitizer build): with heap
// sampling off (CPPROF_HEAP_RATE=0) and with every allocation sampled
// (CPPROF_HEAP_RATE=1), when cpprof serves each object from its own region
// instead of passing it to the allocator below (cpprof/heap_profile.h).
// Every contract and count must hold in both; the tests of the allocator
// below skip in the second, and sampling_test.cc checks the region.
// Run without cpprof at all, the binary still checks every contract (of the
// bare allocator) and skips only the count assertions.
//
// Every file is compiled with -fno-builtin and -fno-allocation-dce: GCC may
// otherwise delete malloc/free and new/delete pairs whose memory is unused,
// and the counts would then test the optimizer instead of the interposer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>

#include <gtest/gtest.h>

namespace cpprof::alloc_test {

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

void PrintTo(const Counts& c, std::ostream* os);

// Whether LD_PRELOAD contains `needle`.
bool PreloadMentions(const char* needle);

// LD_PRELOAD naming libcpprof says the counters must be there: a preload
// that silently failed must not pass by skipping every count.
bool CpprofPreloaded();

// Called directly in the linked build, found with dlsym in a preloaded
// libcpprof.so otherwise (all zero when not found).
bool CountersReachable();
Counts ThreadCounts();
Counts ProcessCounts();
bool CountingAvailable();

// Whether count assertions apply. Failing here (rather than skipping) when
// LD_PRELOAD names libcpprof but its counters cannot be found.
bool CountsChecked();

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
inline void Escape(const void* p) { asm volatile("" : : "r"(p) : "memory"); }

// ---------------------------------------------------------------------------
// Contract helpers.

#if CPPROF_SANITIZE
inline constexpr bool kSanitized = true;
// ASan serves a zero-byte request with a one-byte block, and its hooks see
// only that size.
inline constexpr uint64_t kZeroRequestBytes = 1;
// ASan reports these as errors and aborts (allocator_may_return_null=0 by
// default) instead of returning null, and serves operator new itself
// without calling new handlers: there is no contract of ours to test.
#define SKIP_WHERE_ASAN_ABORTS(what) \
  GTEST_SKIP() << "under ASan " what " is reported as an error and aborts the process"
#else
inline constexpr bool kSanitized = false;
inline constexpr uint64_t kZeroRequestBytes = 0;
#define SKIP_WHERE_ASAN_ABORTS(what) static_cast<void>(0)
#endif

// A request no allocator can satisfy (an exabyte: past the 47-bit address
// space) but below PTRDIFF_MAX, so it reaches the allocator's own checks.
inline constexpr size_t kHuge = size_t{1} << 60;

inline constexpr size_t kMiB = size_t{1} << 20;

size_t PageSize();

inline bool IsAligned(const void* p, size_t alignment) {
  return reinterpret_cast<uintptr_t>(p) % alignment == 0;
}

// malloc's guarantee: alignment for any object that fits. Requests below 16
// bytes can only hold objects of smaller alignment, and jemalloc and
// tcmalloc give them 8.
inline size_t MallocAlignment(size_t n) { return n >= 16 ? 16 : (n >= 8 ? 8 : 1); }

// Fills `n` bytes with a pattern derived from `seed`, and checks it.
void Fill(void* p, size_t n, unsigned seed);
bool HasFill(const void* p, size_t n, unsigned seed);
bool AllZero(const void* p, size_t n);

// Frees `p`, expecting exactly one free counted.
void FreeCounted(void* p);

// A trivially destructible object for new expressions.
struct Widget {
  int values[13];
};

// ---------------------------------------------------------------------------
// Probes of the allocator below cpprof, for the forwarding tests.

enum class Allocator { kGlibc, kJemalloc, kTcmalloc };

// The allocator LD_PRELOAD names below cpprof (glibc if none).
Allocator ExpectedAllocator();

using MallctlFn = int (*)(const char*, void*, size_t*, void*, size_t);
using SallocxFn = size_t (*)(const void*, int);
using TcGetNumericFn = int (*)(const char*, size_t*);
using TcAllocatedSizeFn = size_t (*)(const void*);

// jemalloc's mallctl and tcmalloc's MallocExtension_GetNumericProperty, or
// null when that allocator is not loaded.
MallctlFn Mallctl();
TcGetNumericFn TcGetNumeric();

// glibc's own heap: bytes in use in its arenas plus its mmapped blocks.
int64_t GlibcInUse();

// The expected allocator's count of bytes in use (for jemalloc: this
// thread's allocated minus deallocated), from its own statistics.
int64_t AllocatorInUse();

// ---------------------------------------------------------------------------
// Heap sampling. The linked build applies CPPROF_HEAP_RATE itself before
// the first test (a gtest environment in alloc_test_support.cc); a
// preloaded libcpprof.so reads it at load.

// The rate in effect (0 where cpprof is absent), and setting it (false
// where cpprof is absent).
int64_t HeapRate();
bool SetHeapRate(int64_t rate);

// Whether cpprof serves every allocation from its sampled region: rate 1,
// outside the sanitizer build (whose hooks only count).
bool EveryAllocationSampled();

#define SKIP_WHERE_EVERY_ALLOCATION_IS_SAMPLED(what)                                 \
  do {                                                                               \
    if (EveryAllocationSampled()) {                                                  \
      GTEST_SKIP() << "every allocation is sampled (CPPROF_HEAP_RATE=1) and served " \
                      "from cpprof's region, not by the allocator below: " what;     \
    }                                                                                \
  } while (false)

}  // namespace cpprof::alloc_test
