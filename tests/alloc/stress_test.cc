// Stress: four threads of mixed allocation functions, each block checked for
// its contents and alignment, and counted exactly on its own thread.

#include <malloc.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <new>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "alloc_test_support.h"

namespace cpprof::alloc_test {
namespace {

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
  // ASan's allocator (poisoning, quarantine) is about forty times slower,
  // and so is sampling every allocation (a stack walk each, a page run and
  // an madvise for each aligned block): fewer operations keep those runs
  // near the release run's time.
  const int ops = kSanitized || EveryAllocationSampled() ? 50000 : 200000;
  StressResult results[kThreads];
  std::vector<std::thread> threads;
  const Counts process_before = ProcessCounts();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back(RunStress, static_cast<uint64_t>(t + 1), ops, std::ref(results[t]));
  }
  for (std::thread& t : threads) t.join();
  const Counts process_delta = ProcessCounts() - process_before;
  Counts sum{};
  for (int t = 0; t < kThreads; ++t) {
    SCOPED_TRACE(t);
    EXPECT_EQ(results[t].corrupt, 0u);
    EXPECT_EQ(results[t].misaligned, 0u);
    EXPECT_EQ(results[t].failed, 0u);
    EXPECT_GT(results[t].expected.allocs, static_cast<uint64_t>(ops) / 2);
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

}  // namespace
}  // namespace cpprof::alloc_test
