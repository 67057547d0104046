// Every lesson of lessons.h and buffer_pool.h under Google Benchmark, with
// cpprof's allocs/iter and B/iter next to the time (README.md has a run).
//
//   chapter29_lessons_bench [--benchmark_filter=Join] [--benchmark_min_time=0.2]
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

#include "buffer_pool.h"
#include "cpprof/alloc_stats.h"
#include "cpprof/benchmark.h"
#include "lessons.h"

namespace {

// --- Building a string: "0,1,...,n-1" ---

void BM_JoinPlusEquals(::benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  cpprof::bench::AllocCounters allocs(state);
  for (auto _ : state) {
    std::string s = chapter29::join_plus_equals(n);
    ::benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_JoinPlusEquals)->Arg(100)->Arg(10000);

void BM_JoinReserved(::benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  cpprof::bench::AllocCounters allocs(state);
  for (auto _ : state) {
    std::string s = chapter29::join_reserved(n);
    ::benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_JoinReserved)->Arg(100)->Arg(10000);

void BM_JoinOstringstream(::benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  cpprof::bench::AllocCounters allocs(state);
  for (auto _ : state) {
    std::string s = chapter29::join_ostringstream(n);
    ::benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_JoinOstringstream)->Arg(100)->Arg(10000);

// --- Growing a vector of 100,000 ints ---

void BM_VectorPushBack(::benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  cpprof::bench::AllocCounters allocs(state);
  for (auto _ : state) {
    uint64_t sum = chapter29::fill_by_push_back(n);
    ::benchmark::DoNotOptimize(sum);
  }
}
BENCHMARK(BM_VectorPushBack)->Arg(100000);

void BM_VectorReserved(::benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  cpprof::bench::AllocCounters allocs(state);
  for (auto _ : state) {
    uint64_t sum = chapter29::fill_reserved(n);
    ::benchmark::DoNotOptimize(sum);
  }
}
BENCHMARK(BM_VectorReserved)->Arg(100000);

// --- Passing a large struct (4 KiB in place, 6 heap parts) ---

void BM_ReportByValue(::benchmark::State& state) {
  const chapter29::Report report = chapter29::make_report(100, 3);
  cpprof::bench::AllocCounters allocs(state);
  for (auto _ : state) {
    uint64_t sum = chapter29::summarize_by_value(report);
    ::benchmark::DoNotOptimize(sum);
  }
}
BENCHMARK(BM_ReportByValue);

void BM_ReportByConstRef(::benchmark::State& state) {
  const chapter29::Report report = chapter29::make_report(100, 3);
  cpprof::bench::AllocCounters allocs(state);
  for (auto _ : state) {
    uint64_t sum = chapter29::summarize_by_ref(report);
    ::benchmark::DoNotOptimize(sum);
  }
}
BENCHMARK(BM_ReportByConstRef);

// --- The stack or the heap ---

void BM_ChecksumOnStack(::benchmark::State& state) {
  uint64_t seed = 1;
  cpprof::bench::AllocCounters allocs(state);
  for (auto _ : state) {
    uint64_t sum = chapter29::checksum_on_stack(seed++);
    ::benchmark::DoNotOptimize(sum);
  }
}
BENCHMARK(BM_ChecksumOnStack);

void BM_ChecksumOnHeap(::benchmark::State& state) {
  uint64_t seed = 1;
  cpprof::bench::AllocCounters allocs(state);
  for (auto _ : state) {
    uint64_t sum = chapter29::checksum_on_heap(seed++);
    ::benchmark::DoNotOptimize(sum);
  }
}
BENCHMARK(BM_ChecksumOnHeap);

// --- A 16 KiB scratch buffer: new/delete or a pool ---

constexpr int kReplyNumbers = 32;

void BM_BufferNewDelete(::benchmark::State& state) {
  int request = 0;
  cpprof::bench::AllocCounters allocs(state);
  for (auto _ : state) {
    uint64_t sum = chapter29::render_with_new(request++, kReplyNumbers);
    ::benchmark::DoNotOptimize(sum);
  }
}
BENCHMARK(BM_BufferNewDelete);

void BM_BufferPool(::benchmark::State& state) {
  chapter29::BufferPool pool;
  int request = 0;
  // The first call misses (and sets up this thread's slot): not counted,
  // the table shows the steady state.
  uint64_t first = chapter29::render_with_pool(pool, request++, kReplyNumbers);
  ::benchmark::DoNotOptimize(first);
  cpprof::bench::AllocCounters allocs(state);
  for (auto _ : state) {
    uint64_t sum = chapter29::render_with_pool(pool, request++, kReplyNumbers);
    ::benchmark::DoNotOptimize(sum);
  }
}
BENCHMARK(BM_BufferPool);

}  // namespace

int main(int argc, char** argv) {
  ::benchmark::Initialize(&argc, argv);
  if (::benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  // Without counting the table has no allocs/iter column: say why.
  ::benchmark::AddCustomContext("cpprof_alloc_counting",
                                cpprof::alloc_counting_available() ? "available" : "unavailable");
  ::benchmark::RunSpecifiedBenchmarks();
  ::benchmark::Shutdown();
  return 0;
}
