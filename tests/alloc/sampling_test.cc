// Heap sampling (cpprof/heap_profile.h): the rate is the one asked for, at
// rate 1 every object comes from cpprof's sampled region, calloc zeroes
// reused slots, and realloc keeps contents between sampled and unsampled
// blocks. The region's bounds are not public: an object is seen to come
// from it by not showing in the statistics of the allocator below.

#include <malloc.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iterator>
#include <new>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "alloc_test_support.h"

namespace cpprof::alloc_test {
namespace {

#define SKIP_UNLESS_EVERY_ALLOCATION_IS_SAMPLED()                                                 \
  do {                                                                                            \
    if (kSanitized) GTEST_SKIP() << "cpprof does not sample under sanitizers";                    \
    if (!EveryAllocationSampled()) {                                                              \
      GTEST_SKIP() << "not every allocation is sampled (heap profile rate " << HeapRate() << ")"; \
    }                                                                                             \
  } while (false)

void AwaitStage(const std::atomic<int>& stage, int value) {
  while (stage.load(std::memory_order_acquire) != value) sched_yield();
}

// Runs `fn` on a new thread with sampling off. A new rate takes effect at a
// thread's next sample, which at rate 1 is its next allocation: the worker
// samples nothing, and this thread, which allocates nothing while the rate
// is 0, samples every allocation again afterwards.
void RunWithSamplingOff(const std::function<void()>& fn) {
  std::atomic<int> stage{0};
  std::thread worker([&] {
    AwaitStage(stage, 1);
    fn();
    stage.store(2, std::memory_order_release);
  });
  const int64_t rate = HeapRate();
  SetHeapRate(0);
  stage.store(1, std::memory_order_release);
  AwaitStage(stage, 2);
  SetHeapRate(rate);
  worker.join();
}

TEST(HeapSampling, RateIsTheOneCpprofHeapRateAsksFor) {
  const char* text = std::getenv("CPPROF_HEAP_RATE");
  if (text == nullptr || *text == '\0') GTEST_SKIP() << "CPPROF_HEAP_RATE is not set";
  if (!CountersReachable()) GTEST_SKIP() << "cpprof is neither linked nor preloaded";
  EXPECT_EQ(HeapRate(), std::strtoll(text, nullptr, 10));
}

// One allocation function with its release; `alignment` only for `aligned`.
struct Form {
  const char* name;
  void* (*allocate)(size_t n, size_t alignment);
  void (*release)(void* p, size_t n, size_t alignment);
  bool aligned;
};

void Free(void* p, size_t, size_t) { free(p); }
std::align_val_t Al(size_t alignment) { return static_cast<std::align_val_t>(alignment); }

// clang-format off
const Form kForms[] = {
  {"malloc", [](size_t n, size_t) { return malloc(n); }, Free, false},
  {"calloc", [](size_t n, size_t) { return calloc(n / 4, 4); }, Free, false},
  {"realloc(nullptr)", [](size_t n, size_t) { return realloc(nullptr, n); }, Free, false},
  {"realloc grow", [](size_t n, size_t) { return realloc(malloc(16), n); }, Free, false},
  {"realloc shrink", [](size_t n, size_t) { return realloc(malloc(2 * n), n); }, Free, false},
  {"reallocarray", [](size_t n, size_t) { return reallocarray(nullptr, n / 4, 4); }, Free, false},
  {"memalign", [](size_t n, size_t a) { return memalign(a, n); }, Free, true},
  {"aligned_alloc", [](size_t n, size_t a) { return aligned_alloc(a, (n + a - 1) / a * a); },
   Free, true},
  {"posix_memalign", [](size_t n, size_t a) {
     void* p = nullptr;
     return posix_memalign(&p, a, n) == 0 ? p : nullptr;
   }, Free, true},
  {"valloc", [](size_t n, size_t) { return valloc(n); }, Free, false},
  {"new", [](size_t n, size_t) { return ::operator new(n); },
   [](void* p, size_t, size_t) { ::operator delete(p); }, false},
  {"new[]", [](size_t n, size_t) { return ::operator new[](n); },
   [](void* p, size_t n, size_t) { ::operator delete[](p, n); }, false},
  {"nothrow new", [](size_t n, size_t) { return ::operator new(n, std::nothrow); },
   [](void* p, size_t, size_t) { ::operator delete(p, std::nothrow); }, false},
  {"aligned new", [](size_t n, size_t a) { return ::operator new(n, Al(a)); },
   [](void* p, size_t n, size_t a) { ::operator delete(p, n, Al(a)); }, true},
  {"aligned new[]", [](size_t n, size_t a) { return ::operator new[](n, Al(a)); },
   [](void* p, size_t, size_t a) { ::operator delete[](p, Al(a)); }, true},
  {"nothrow aligned new", [](size_t n, size_t a) {
     return ::operator new(n, Al(a), std::nothrow); },
   [](void* p, size_t, size_t a) { ::operator delete(p, Al(a), std::nothrow); }, true},
};
// clang-format on

TEST(HeapSampling, AtRateOneNoObjectComesFromOrGoesBackToTheAllocatorBelow) {
  SKIP_UNLESS_EVERY_ALLOCATION_IS_SAMPLED();
  constexpr int64_t kMost = static_cast<int64_t>(2 * kMiB) - 4096;
  ASSERT_GE(AllocatorInUse(), 0);
  // The control: an unsampled block shows in the statistics.
  int64_t control = -1;
  RunWithSamplingOff([&] {
    const int64_t before = AllocatorInUse();
    void* p = malloc(Opaque(2 * kMiB));
    control = AllocatorInUse() - before;
    free(p);
  });
  ASSERT_GE(control, kMost) << "the statistics of the allocator below miss an unsampled block: "
                               "the checks below would prove nothing";
  // Glibc keeps freed blocks of up to 1 KiB in per-thread caches that its
  // statistics count as in use: blocks of 100 bytes only show with
  // jemalloc and tcmalloc.
  for (const Form& form : kForms) {
    const std::vector<size_t> alignments =
        form.aligned ? std::vector<size_t>{16, 32, 64, 128, 256, 512, 1024, 2048, 4096}
                     : std::vector<size_t>{16};
    for (size_t alignment : alignments) {
      for (size_t n : {size_t{100}, size_t{5000}, 2 * kMiB}) {
        SCOPED_TRACE(::testing::Message()
                     << form.name << ", alignment " << alignment << ", size " << n);
        const int64_t before = AllocatorInUse();
        void* p = form.allocate(Opaque(n), Opaque(alignment));
        const int64_t grew = AllocatorInUse() - before;
        ASSERT_NE(p, nullptr);
        EXPECT_LT(grew, static_cast<int64_t>(n)) << "the block came from the allocator below";
        EXPECT_TRUE(IsAligned(p, alignment)) << p;
        EXPECT_GE(malloc_usable_size(p), n);
        std::memset(p, 0x3c, n);
        Escape(p);
        const int64_t before_release = AllocatorInUse();
        form.release(Opaque(p), n, alignment);
        EXPECT_LT(before_release - AllocatorInUse(), static_cast<int64_t>(n))
            << "the block went back to the allocator below";
      }
    }
  }
}

TEST(HeapSampling, CallocZeroesReusedBlocksOfEverySize) {
  // Every small slot class (up to 2 KiB) and page runs past it.
  std::vector<size_t> sizes;
  for (size_t n = 1; n <= 4200; n += n < 64 ? 1 : 13) sizes.push_back(n);
  for (size_t n : {size_t{8192}, size_t{70000}, size_t{300000}}) sizes.push_back(n);
  for (size_t n : sizes) {
    SCOPED_TRACE(n);
    // Dirty the whole block, so that calloc of this size has one to reuse.
    void* dirty = malloc(Opaque(n));
    ASSERT_NE(dirty, nullptr);
    std::memset(dirty, 0xab, malloc_usable_size(dirty));
    Escape(dirty);
    free(Opaque(dirty));
    for (int round = 0; round < 8; ++round) {
      void* p = round % 2 == 0 ? calloc(Opaque(size_t{1}), Opaque(n))
                               : calloc(Opaque(n), Opaque(size_t{1}));
      ASSERT_NE(p, nullptr);
      ASSERT_TRUE(AllZero(p, n)) << "round " << round;
      std::memset(p, 0xab, malloc_usable_size(p));
      Escape(p);
      free(Opaque(p));
    }
  }
}

TEST(HeapSampling, ReallocKeepsContentsBetweenSampledAndUnsampledBlocks) {
  SKIP_UNLESS_EVERY_ALLOCATION_IS_SAMPLED();
  // Past glibc's per-thread caches (see above); growing and shrinking, a
  // small slot at 1500, mmapped blocks from 300000.
  constexpr size_t kFrom[] = {1500, 3000, 100000, 2 * kMiB};
  constexpr size_t kTo[] = {4500, 1500, 300000, kMiB};
  constexpr size_t kCount = std::size(kFrom);
  void* sampled[kCount] = {};
  for (size_t i = 0; i < kCount; ++i) {
    sampled[i] = malloc(Opaque(kFrom[i]));
    ASSERT_NE(sampled[i], nullptr);
    Fill(sampled[i], kFrom[i], static_cast<unsigned>(20 + i));
  }
  // Sampled to unsampled, on a thread with sampling off; and unsampled
  // blocks for the way back.
  void* moved[kCount] = {};
  int64_t grew[kCount] = {};
  void* unsampled[kCount] = {};
  RunWithSamplingOff([&] {
    for (size_t i = 0; i < kCount; ++i) {
      const int64_t before = AllocatorInUse();
      moved[i] = realloc(Opaque(sampled[i]), Opaque(kTo[i]));
      grew[i] = AllocatorInUse() - before;
      unsampled[i] = malloc(Opaque(kFrom[i]));
      if (unsampled[i] != nullptr) Fill(unsampled[i], kFrom[i], static_cast<unsigned>(30 + i));
    }
  });
  for (size_t i = 0; i < kCount; ++i) {
    SCOPED_TRACE(::testing::Message() << kFrom[i] << " to " << kTo[i]);
    ASSERT_NE(moved[i], nullptr);
    EXPECT_TRUE(HasFill(moved[i], std::min(kFrom[i], kTo[i]), static_cast<unsigned>(20 + i)));
    EXPECT_GE(grew[i], static_cast<int64_t>(kTo[i])) << "not taken from the allocator below";
    EXPECT_GE(malloc_usable_size(moved[i]), kTo[i]);
    free(moved[i]);
    // Unsampled to sampled: only the old block's release shows below.
    ASSERT_NE(unsampled[i], nullptr);
    const int64_t before = AllocatorInUse();
    void* q = realloc(Opaque(unsampled[i]), Opaque(kTo[i]));
    const int64_t change = AllocatorInUse() - before;
    ASSERT_NE(q, nullptr);
    EXPECT_TRUE(HasFill(q, std::min(kFrom[i], kTo[i]), static_cast<unsigned>(30 + i)));
    EXPECT_LE(change, -static_cast<int64_t>(kFrom[i]))
        << "the new block came from the allocator below, or the old one was not given back";
    EXPECT_GE(malloc_usable_size(q), kTo[i]);
    free(q);
  }
}

}  // namespace
}  // namespace cpprof::alloc_test
