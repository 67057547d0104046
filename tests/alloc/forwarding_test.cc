// Forwarding: every allocation function takes its memory from the allocator
// named in LD_PRELOAD below cpprof and gives it back there.

#include <dlfcn.h>
#include <malloc.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

#include <gtest/gtest.h>

#include "alloc_test_support.h"

namespace cpprof::alloc_test {
namespace {

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
  SKIP_WHERE_EVERY_ALLOCATION_IS_SAMPLED("sampling_test.cc checks that instead");
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
  SKIP_WHERE_EVERY_ALLOCATION_IS_SAMPLED("the usable size is that of cpprof's slot");
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
}  // namespace cpprof::alloc_test
