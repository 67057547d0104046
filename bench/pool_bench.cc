// cpprof::Pool<T> get + put against std::make_unique<T> + delete, for a
// 64-byte object, a 4 KiB one and a record holding a std::string and a
// std::vector that are filled on every use (a reused record keeps their
// capacity; a new one grows them again). Google Benchmark, with allocs/iter
// from cpprof::bench::AllocCounters; run:
//
//   build/release/bin/pool_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// Each iteration gets an object, uses it (writes to it; fills the record)
// and gives it back (put, or the unique_ptr's delete). ->Threads(2) runs
// the same loop on two threads at once, on one shared pool. The program
// links cpprof for the counting, which adds a few instructions to every new
// and delete (bench/README.md); the make_unique rows include them.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "cpprof/benchmark.h"
#include "cpprof/pool.h"

namespace {

struct Small {
  char bytes[64];
};
static_assert(sizeof(Small) == 64);

struct Page {
  char bytes[4096];
};

// Filled on every use: a 100-character name (past the string's 15 in-place
// characters) and 256 ints.
struct Record {
  std::string name;
  std::vector<int> values;
};

const std::string& long_name() {
  static const std::string name(100, 'n');
  return name;
}

void use(Small& s, int i) {
  s.bytes[i & 63] = static_cast<char>(i);
  benchmark::DoNotOptimize(s.bytes);
}

void use(Page& p, int i) {
  p.bytes[(i * 64) & 4095] = static_cast<char>(i);
  benchmark::DoNotOptimize(p.bytes);
}

// The caller resets a pooled object: clear() keeps the capacity.
void use(Record& r, int i) {
  r.name.assign(long_name());
  r.values.clear();
  for (int v = 0; v < 256; ++v) r.values.push_back(v + i);
  benchmark::DoNotOptimize(r.name.data());
  benchmark::DoNotOptimize(r.values.data());
}

template <class T>
cpprof::Pool<T>& pool_of() {
  static cpprof::Pool<T> pool;  // shared by the benchmark's threads
  return pool;
}

template <class T>
void BM_MakeUnique(benchmark::State& state) {
  int i = 0;
  cpprof::bench::AllocCounters allocs(state);
  for (auto _ : state) {
    auto object = std::make_unique<T>();  // value-initialized: zeroed, as Go's new
    use(*object, ++i);
  }
}

template <class T>
void BM_MakeUniqueForOverwrite(benchmark::State& state) {
  int i = 0;
  cpprof::bench::AllocCounters allocs(state);
  for (auto _ : state) {
    auto object = std::make_unique_for_overwrite<T>();  // not zeroed
    use(*object, ++i);
  }
}

template <class T>
void BM_PoolGetPut(benchmark::State& state) {
  cpprof::Pool<T>& pool = pool_of<T>();
  pool.put(pool.get());  // this thread's first put takes its index and slot
  int i = 0;
  cpprof::bench::AllocCounters allocs(state);
  for (auto _ : state) {
    auto object = pool.get();
    use(*object, ++i);
    pool.put(std::move(object));
  }
}

template <class T>
void BM_PoolLease(benchmark::State& state) {
  cpprof::Pool<T>& pool = pool_of<T>();
  pool.put(pool.get());
  int i = 0;
  cpprof::bench::AllocCounters allocs(state);
  for (auto _ : state) {
    auto lease = pool.lease();
    use(*lease, ++i);
  }
}

BENCHMARK_TEMPLATE(BM_MakeUnique, Small)->Threads(1)->Threads(2);
BENCHMARK_TEMPLATE(BM_PoolGetPut, Small)->Threads(1)->Threads(2);
BENCHMARK_TEMPLATE(BM_PoolLease, Small)->Threads(1)->Threads(2);
BENCHMARK_TEMPLATE(BM_MakeUnique, Page)->Threads(1)->Threads(2);
BENCHMARK_TEMPLATE(BM_MakeUniqueForOverwrite, Page)->Threads(1)->Threads(2);
BENCHMARK_TEMPLATE(BM_PoolGetPut, Page)->Threads(1)->Threads(2);
BENCHMARK_TEMPLATE(BM_MakeUnique, Record)->Threads(1)->Threads(2);
BENCHMARK_TEMPLATE(BM_PoolGetPut, Record)->Threads(1)->Threads(2);

}  // namespace

BENCHMARK_MAIN();
