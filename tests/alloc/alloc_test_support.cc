// The shared helpers of the allocation tests (alloc_test_support.h): the
// counters called directly or found with dlsym, the contract helpers, and
// the probes of jemalloc's, tcmalloc's and glibc's statistics.

#include "alloc_test_support.h"

#include <dlfcn.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#if CPPROF_ALLOC_TEST_LINKED
#include "cpprof/alloc_stats.h"
#include "cpprof/heap_profile.h"
#endif

namespace cpprof::alloc_test {

namespace {

// The layout of cpprof::AllocStats, which the preloaded build cannot include
// (it links nothing of cpprof's) but must call through a pointer of the
// right type: the struct is returned by value.
struct RawAllocStats {
  uint64_t allocs;
  uint64_t frees;
  uint64_t bytes;
};

}  // namespace

void PrintTo(const Counts& c, std::ostream* os) {
  *os << "{allocs " << c.allocs << ", frees " << c.frees << ", bytes " << c.bytes << "}";
}

bool PreloadMentions(const char* needle) {
  const char* preload = std::getenv("LD_PRELOAD");
  return preload != nullptr && std::strstr(preload, needle) != nullptr;
}

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
int64_t HeapRate() { return cpprof::heap_profile_rate(); }
bool SetHeapRate(int64_t rate) {
  cpprof::set_heap_profile_rate(rate);
  return true;
}

#else  // found at run time in a preloaded libcpprof.so

namespace {

Counts ToCounts(const RawAllocStats& s) { return {s.allocs, s.frees, s.bytes}; }

using StatsFn = RawAllocStats (*)();
using AvailableFn = bool (*)();
using RateFn = int64_t (*)();
using SetRateFn = void (*)(int64_t);

struct PreloadedApi {
  StatsFn thread_stats = nullptr;
  StatsFn process_stats = nullptr;
  AvailableFn available = nullptr;
  RateFn rate = nullptr;
  SetRateFn set_rate = nullptr;
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
    // cpprof::heap_profile_rate(), cpprof::set_heap_profile_rate(int64_t).
    a.rate = reinterpret_cast<RateFn>(dlsym(RTLD_DEFAULT, "_ZN6cpprof17heap_profile_rateEv"));
    a.set_rate =
        reinterpret_cast<SetRateFn>(dlsym(RTLD_DEFAULT, "_ZN6cpprof21set_heap_profile_rateEl"));
    return a;
  }();
  return api;
}

}  // namespace

bool CountersReachable() {
  return Api().thread_stats != nullptr && Api().process_stats != nullptr &&
         Api().available != nullptr;
}
Counts ThreadCounts() { return CountersReachable() ? ToCounts(Api().thread_stats()) : Counts{}; }
Counts ProcessCounts() { return CountersReachable() ? ToCounts(Api().process_stats()) : Counts{}; }
bool CountingAvailable() { return CountersReachable() && Api().available(); }
int64_t HeapRate() { return Api().rate != nullptr ? Api().rate() : 0; }
bool SetHeapRate(int64_t rate) {
  if (Api().set_rate == nullptr) return false;
  Api().set_rate(rate);
  return true;
}

#endif

bool CountsChecked() {
  if (CountersReachable()) return true;
  if (CpprofPreloaded()) {
    ADD_FAILURE() << "LD_PRELOAD names libcpprof but cpprof::thread_alloc_stats() is not "
                     "reachable through dlsym";
  }
  return false;
}

bool EveryAllocationSampled() { return !kSanitized && HeapRate() == 1; }

namespace {

// Puts CPPROF_HEAP_RATE in effect on the main thread before the first test.
// A new rate takes effect at each thread's next sample (heap_profile.h),
// and the main thread drew its distance to that at the default rate (a
// preloaded libcpprof.so too: libstdc++'s start-up allocates before
// libcpprof reads the variable), so up to megabytes would go by under the
// old rate. One allocation past any distance the default rate draws
// (exponential, mean 512 KiB) makes that sample now.
class HeapRateFromEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    const char* text = std::getenv("CPPROF_HEAP_RATE");
    if (text == nullptr || *text == '\0') return;
#if CPPROF_ALLOC_TEST_LINKED
    ASSERT_TRUE(SetHeapRate(std::strtoll(text, nullptr, 10)));
#endif
    if (kSanitized) return;  // ASan's hooks count; nothing is sampled
    void* p = malloc(Opaque(size_t{64} << 20));
    Escape(p);
    free(p);
  }
};

[[maybe_unused]] ::testing::Environment* const g_heap_rate_from_environment =
    ::testing::AddGlobalTestEnvironment(new HeapRateFromEnvironment);

}  // namespace

size_t PageSize() { return static_cast<size_t>(sysconf(_SC_PAGESIZE)); }

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

void FreeCounted(void* p) {
  const Counts d = Delta([&] { free(Opaque(p)); });
  EXPECT_COUNTS(d, 0, 1, 0);
}

// ---------------------------------------------------------------------------
// Probes of the allocator below cpprof.

Allocator ExpectedAllocator() {
  if (PreloadMentions("jemalloc")) return Allocator::kJemalloc;
  if (PreloadMentions("tcmalloc")) return Allocator::kTcmalloc;
  return Allocator::kGlibc;
}

MallctlFn Mallctl() { return reinterpret_cast<MallctlFn>(dlsym(RTLD_DEFAULT, "mallctl")); }
TcGetNumericFn TcGetNumeric() {
  return reinterpret_cast<TcGetNumericFn>(
      dlsym(RTLD_DEFAULT, "MallocExtension_GetNumericProperty"));
}

int64_t GlibcInUse() {
  const struct mallinfo2 mi = mallinfo2();
  return static_cast<int64_t>(mi.uordblks + mi.hblkhd);
}

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

}  // namespace cpprof::alloc_test
