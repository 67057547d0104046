// The sampled heap, seen through take_heap_snapshot(): every allocation at
// rate 1, unbiased estimates at the default rate, frees credited to the
// allocating stack, cpprof's hooks left out of the stacks.
#include <gtest/gtest.h>
#include <malloc.h>

#include <cmath>
#include <cstdlib>
#include <thread>
#include <vector>

#include "capture/heap_sampler.h"
#include "capture/sampled_region.h"
#include "sources/heap/heap_snapshot.h"
#include "symbolize/symbolizer.h"

namespace cpprof::sources {
namespace {

template <class T>
void escape(T* ptr) {
  asm volatile("" : : "g"(ptr) : "memory");
}

// Allocation sites the tests look for in the snapshot, by function.
[[gnu::noinline]] void* site_malloc(size_t size) {
  void* ptr = malloc(size);
  escape(ptr);
  return ptr;
}
[[gnu::noinline]] char* site_new(size_t size) {
  char* ptr = new char[size];
  escape(ptr);
  return ptr;
}
[[gnu::noinline]] void* site_other(size_t size) {
  void* ptr = malloc(size);
  escape(ptr);
  return ptr;
}

// The function whose code holds return address `pc` (from the ELF symbol
// table: the sites are local symbols, which dladdr does not see).
const void* function_of(uint64_t pc) {
  static symbolize::Symbolizer* symbolizer = new symbolize::Symbolizer;
  return reinterpret_cast<const void*>(symbolizer->function_start(pc - 1));
}

// The sum of the buckets whose innermost frame is in `function`.
HeapBucket site_totals(const HeapSnapshot& snapshot, const void* function) {
  HeapBucket total;
  for (const HeapBucket& bucket : snapshot.buckets) {
    if (bucket.frames.empty() || function_of(bucket.frames[0]) != function) continue;
    total.alloc_objects += bucket.alloc_objects;
    total.alloc_bytes += bucket.alloc_bytes;
    total.free_objects += bucket.free_objects;
    total.free_bytes += bucket.free_bytes;
  }
  return total;
}

class HeapSampling : public ::testing::Test {
 protected:
  void SetUp() override {
#ifdef CPPROF_SANITIZE
    GTEST_SKIP() << "the sanitizer build does not interpose malloc, so nothing is sampled";
#endif
  }
  void TearDown() override { capture::set_heap_sample_rate(capture::kDefaultHeapRate); }
};

TEST_F(HeapSampling, RateOneRecordsEveryAllocationAndFreeAtItsSite) {
  capture::set_heap_sample_rate(1);
  std::thread worker([] {  // a fresh thread: its first distance is drawn at rate 1
    const HeapBucket before =
        site_totals(take_heap_snapshot(), reinterpret_cast<void*>(site_malloc));
    std::vector<void*> blocks;
    for (int i = 0; i < 1000; ++i) blocks.push_back(site_malloc(100));
    for (int i = 0; i < 400; ++i) free(blocks[i]);
    const HeapBucket after =
        site_totals(take_heap_snapshot(), reinterpret_cast<void*>(site_malloc));
    EXPECT_EQ(after.alloc_objects - before.alloc_objects, 1000u);
    EXPECT_EQ(after.alloc_bytes - before.alloc_bytes, 100000u);
    EXPECT_EQ(after.free_objects - before.free_objects, 400u);
    EXPECT_EQ(after.free_bytes - before.free_bytes, 40000u);
    for (int i = 400; i < 1000; ++i) {
      EXPECT_TRUE(capture::in_sampled_region(blocks[i]));
      EXPECT_GE(malloc_usable_size(blocks[i]), 100u);
      free(blocks[i]);
    }
  });
  worker.join();
}

TEST_F(HeapSampling, NewIsAttributedToItsCallerNotToCpprofsOperatorNew) {
  capture::set_heap_sample_rate(1);
  std::thread worker([] {
    const HeapBucket before = site_totals(take_heap_snapshot(), reinterpret_cast<void*>(site_new));
    for (int i = 0; i < 50; ++i) delete[] site_new(64);
    const HeapBucket after = site_totals(take_heap_snapshot(), reinterpret_cast<void*>(site_new));
    EXPECT_EQ(after.alloc_objects - before.alloc_objects, 50u);
    EXPECT_EQ(after.free_objects - before.free_objects, 50u);
  });
  worker.join();
}

TEST_F(HeapSampling, SampledObjectsKeepTheAllocationContract) {
  capture::set_heap_sample_rate(1);
  std::thread worker([] {
    auto* zeroed = static_cast<unsigned char*>(calloc(100, 3));
    ASSERT_TRUE(capture::in_sampled_region(zeroed));
    for (int i = 0; i < 300; ++i) ASSERT_EQ(zeroed[i], 0) << i;
    for (int i = 0; i < 300; ++i) zeroed[i] = static_cast<unsigned char>(i);
    auto* grown = static_cast<unsigned char*>(realloc(zeroed, 100000));
    ASSERT_NE(grown, nullptr);
    for (int i = 0; i < 300; ++i) ASSERT_EQ(grown[i], static_cast<unsigned char>(i)) << i;
    free(grown);
    void* aligned = nullptr;
    ASSERT_EQ(posix_memalign(&aligned, 256, 1000), 0);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(aligned) % 256, 0u);
    EXPECT_TRUE(capture::in_sampled_region(aligned));
    free(aligned);
    void* big = malloc(size_t{8} << 20);
    ASSERT_NE(big, nullptr);
    static_cast<char*>(big)[(size_t{8} << 20) - 1] = 1;
    free(big);
  });
  worker.join();
}

TEST_F(HeapSampling, DefaultRateEstimatesAreWithinTenPercent) {
  capture::set_heap_sample_seed(12345);
  capture::set_heap_sample_rate(capture::kDefaultHeapRate);
  // 64 MiB in 4 KiB objects from one site, 64 MiB in 64 KiB objects from another.
  std::thread worker([] {
    const HeapSnapshot before = take_heap_snapshot();
    std::vector<void*> blocks;
    for (int i = 0; i < 16384; ++i) blocks.push_back(site_malloc(4096));
    for (int i = 0; i < 1024; ++i) blocks.push_back(site_other(65536));
    const HeapSnapshot after = take_heap_snapshot();
    for (auto [function, size] : {std::pair{reinterpret_cast<void*>(site_malloc), 4096.0},
                                  std::pair{reinterpret_cast<void*>(site_other), 65536.0}}) {
      const double sampled_bytes = static_cast<double>(site_totals(after, function).alloc_bytes -
                                                       site_totals(before, function).alloc_bytes);
      const double scale = 1 / (1 - std::exp(-size / capture::kDefaultHeapRate));
      EXPECT_NEAR(sampled_bytes * scale, 64.0 * 1024 * 1024, 0.10 * 64 * 1024 * 1024)
          << "objects of " << size << " bytes";
    }
    for (void* block : blocks) free(block);
  });
  worker.join();
}

TEST_F(HeapSampling, RateZeroSamplesNothing) {
  capture::set_heap_sample_rate(0);
  std::thread worker([] {
    void* block = site_malloc(1 << 20);
    EXPECT_FALSE(capture::in_sampled_region(block));
    free(block);
  });
  worker.join();
  EXPECT_EQ(take_heap_snapshot().rate, 0);
  EXPECT_FALSE(take_heap_snapshot().unavailable.empty());
}

}  // namespace
}  // namespace cpprof::sources
