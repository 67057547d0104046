// A tiny Google Benchmark program whose allocations per iteration are known
// exactly, run by alloc_counters_bench_test.cc. Each benchmark's comment
// gives the counts its AllocCounters must report; the test holds the same
// table. Every allocation's result escapes through DoNotOptimize, so the
// compiler may not elide a new/delete pair.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cpprof/alloc_stats.h"
#include "cpprof/benchmark.h"

namespace {

// 0 allocations: arithmetic on a stack array.
void BM_StackOnly(::benchmark::State& state) {
  cpprof::bench::AllocCounters allocs(state);
  for (auto _ : state) {
    uint64_t words[16];
    for (uint64_t i = 0; i < 16; ++i) words[i] = i * 0x9E3779B97F4A7C15ULL;
    ::benchmark::DoNotOptimize(words);
    ::benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_StackOnly);

// 1 allocation of 4 bytes.
void BM_NewInt(::benchmark::State& state) {
  cpprof::bench::AllocCounters allocs(state);
  for (auto _ : state) {
    int* p = new int(42);
    ::benchmark::DoNotOptimize(p);
    delete p;
  }
}
BENCHMARK(BM_NewInt);
// The same on two threads: each counts its own, the average is still 1.
BENCHMARK(BM_NewInt)->Threads(2);

constexpr int kPushBacks = 100000;

// libstdc++ doubles the capacity from 1: 1, 2, 4, ..., 2^17 = 131072 ints,
// 18 allocations of 4 * (2^18 - 1) = 1048572 bytes in all.
void BM_VectorPushBack(::benchmark::State& state) {
  cpprof::bench::AllocCounters allocs(state);
  for (auto _ : state) {
    std::vector<int> v;
    for (int i = 0; i < kPushBacks; ++i) v.push_back(i);
    int* data = v.data();
    ::benchmark::DoNotOptimize(data);
    ::benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_VectorPushBack);

// One allocation of 400000 bytes.
void BM_VectorPushBackReserved(::benchmark::State& state) {
  cpprof::bench::AllocCounters allocs(state);
  for (auto _ : state) {
    std::vector<int> v;
    v.reserve(kPushBacks);
    for (int i = 0; i < kPushBacks; ++i) v.push_back(i);
    int* data = v.data();
    ::benchmark::DoNotOptimize(data);
    ::benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_VectorPushBackReserved);

// 64 characters appended one by one. libstdc++'s string holds 15 in place,
// then grows to max(needed, 2 * capacity): capacities 30, 60 and 120, so 3
// allocations of 31 + 61 + 121 = 213 bytes (each with its terminator).
void BM_StringAppend(::benchmark::State& state) {
  cpprof::bench::AllocCounters allocs(state);
  for (auto _ : state) {
    std::string s;
    for (int i = 0; i < 64; ++i) s.push_back(static_cast<char>('a' + i % 26));
    char* data = s.data();
    ::benchmark::DoNotOptimize(data);
    ::benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_StringAppend);

}  // namespace

int main(int argc, char** argv) {
  cpprof::bench::MemoryManager memory_manager;
  ::benchmark::RegisterMemoryManager(&memory_manager);
  ::benchmark::Initialize(&argc, argv);
  if (::benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  // In the context block (stderr, and the JSON "context"), so a run whose
  // counters are missing says why.
  ::benchmark::AddCustomContext("cpprof_alloc_counting",
                                cpprof::alloc_counting_available() ? "available" : "unavailable");
  ::benchmark::RunSpecifiedBenchmarks();
  ::benchmark::Shutdown();
  ::benchmark::RegisterMemoryManager(nullptr);
  return 0;
}
