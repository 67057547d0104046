// Allocation counts for Google Benchmark: what `go test -bench -benchmem`
// prints as allocs/op and B/op, in the benchmark's own console table.
//
//   #include <benchmark/benchmark.h>
//   #include <cpprof/benchmark.h>
//
//   static void BM_Parse(::benchmark::State& state) {
//     const std::string input = load_input();      // not counted
//     cpprof::bench::AllocCounters allocs(state);  // counting starts here...
//     for (auto _ : state) {
//       ::benchmark::DoNotOptimize(parse(input));
//     }
//   }                                              // ...and ends here
//   BENCHMARK(BM_Parse);
//
// prints
//
//   BM_Parse   1234 ns   1234 ns   567890 B/iter=208 allocs/iter=3
//
// Header-only, so libcpprof does not depend on libbenchmark: include it
// after <benchmark/benchmark.h> in a program that links cpprof (statically
// or libcpprof.so) and benchmark. Written against Google Benchmark 1.7.1;
// see MemoryManager below for later versions.
//
// What is exact and what is not:
//   - AllocCounters is exact. It reads the calling thread's counters
//     (cpprof::thread_alloc_stats()) when it is constructed and when it is
//     destroyed, and Google Benchmark 1.7.1 itself allocates nothing on the
//     benchmark thread in between: not in `for (auto _ : state)`, not in
//     PauseTiming()/ResumeTiming(). The one exception is
//     --benchmark_perf_counters, whose PauseTiming() (also run when the
//     loop ends) builds a vector of names and adds state.counters entries;
//     those allocations are then counted too. A build of libbenchmark
//     without libpfm (Debian's) ignores that flag.
//   - Everything the benchmark thread allocates between construction and
//     destruction counts, including work inside PauseTiming()/
//     ResumeTiming() sections and after the loop (end the helper's scope
//     right after the loop if that matters). Unlike Go's StopTimer, pausing
//     the timer does not pause the allocation count.
//   - Only the benchmark thread's own allocations count: threads a
//     benchmark starts itself are not seen (see AllocCounters).
//   - MemoryManager is not exact: Google Benchmark runs the benchmark once
//     more (at most 16 iterations, one thread) between Start() and Stop(),
//     and that count includes the framework's own allocations for the run
//     and every thread's allocations meanwhile.
//   - Both count what the program asked for (cpprof/alloc_stats.h): one
//     allocation and the requested bytes per malloc/new, one per realloc.
//     When cpprof's counting is not available (the program or a library
//     ahead of cpprof defines malloc; a fully static binary), AllocCounters
//     adds no counters at all rather than a misleading 0.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>

#include "cpprof/alloc_stats.h"

// cpprof::bench rather than cpprof::benchmark: inside a namespace named
// `benchmark`, an unqualified `benchmark::State` would name the wrong one.
namespace cpprof::bench {

// Adds "allocs/iter" and "B/iter" to the benchmark's counters: the calling
// thread's allocations (and the bytes they requested) from construction to
// destruction, divided by the iterations. Construct it right before the
// `for (auto _ : state)` loop, on the thread that runs the loop.
//
// With ->Threads(n), every benchmark thread constructs its own, counting
// only its own allocations; the framework adds the threads' counters and
// divides by the iterations of all threads, so the table shows the average
// per iteration over all threads (the same figure as with one thread when
// every iteration allocates alike).
//
// Not copyable or movable: it belongs to one thread's State.
class AllocCounters {
 public:
  // Takes the first reading of this thread's counters. Allocates nothing.
  explicit AllocCounters(::benchmark::State& state)
      : state_(state), start_(cpprof::thread_alloc_stats()) {}

  AllocCounters(const AllocCounters&) = delete;
  AllocCounters& operator=(const AllocCounters&) = delete;

  // Takes the second reading and stores the counters.
  ~AllocCounters() {
    // Read before touching state.counters: adding its entries allocates.
    const AllocStats used = cpprof::thread_alloc_stats() - start_;
    // A run that failed (SkipWithError) is reported without counters, and
    // counters that cannot count would claim "0 allocations" falsely.
    if (state_.error_occurred() || !cpprof::alloc_counting_available()) return;
    state_.counters["allocs/iter"] = ::benchmark::Counter(static_cast<double>(used.allocs),
                                                          ::benchmark::Counter::kAvgIterations);
    state_.counters["B/iter"] =
        ::benchmark::Counter(static_cast<double>(used.bytes), ::benchmark::Counter::kAvgIterations);
  }

 private:
  ::benchmark::State& state_;
  const AllocStats start_;
};

// Fills Google Benchmark's memory result (the "allocs_per_iter",
// "total_allocated_bytes" entries of --benchmark_format=json and
// --benchmark_out) from the process's allocation counters. Register one
// for the whole program, which therefore needs its own main():
//
//   int main(int argc, char** argv) {
//     cpprof::bench::MemoryManager memory_manager;
//     ::benchmark::RegisterMemoryManager(&memory_manager);
//     ::benchmark::Initialize(&argc, argv);
//     if (::benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
//     ::benchmark::RunSpecifiedBenchmarks();
//     ::benchmark::Shutdown();
//     ::benchmark::RegisterMemoryManager(nullptr);
//   }
//
// What the reported values mean (Google Benchmark 1.7.1):
//   - num_allocs (printed as allocs_per_iter = num_allocs / iterations of
//     the memory run): every allocation in the process, cpprof's own
//     threads excepted, from Start() to Stop(). That run is a separate one
//     of at most 16 iterations on one thread, and includes the framework's
//     own allocations for it (a few per run, spread over those iterations)
//     and whatever other threads allocate meanwhile, so it is at least the
//     AllocCounters figure, not equal to it.
//   - total_allocated_bytes: the bytes those allocations requested.
//   - max_bytes_used: left at the framework's default, 0. cpprof does not
//     count bytes freed, so it cannot know the peak; 1.7.1 prints this
//     field whatever its value and has no "not available" value for it, so
//     read 0 as "unknown".
//   - net_heap_growth: left at MemoryManager::TombstoneValue, which the
//     JSON reporter treats as "not available" and leaves out.
// The console table shows none of these: use AllocCounters for that.
class MemoryManager : public ::benchmark::MemoryManager {
 public:
  // Called by the framework before the memory run.
  void Start() override { start_ = cpprof::alloc_stats(); }

  // Called by the framework after the memory run (versions after 1.7.1).
  void Stop(Result& result) override {
    const AllocStats used = cpprof::alloc_stats() - start_;
    // Leave the defaults (0 allocations, bytes "not available") when
    // nothing can be counted: a total of 0 bytes would be a false claim.
    if (!cpprof::alloc_counting_available()) return;
    result.num_allocs = static_cast<int64_t>(used.allocs);
    result.total_allocated_bytes = static_cast<int64_t>(used.bytes);
  }

// Google Benchmark 1.7.1 declares this overload pure virtual and
// deprecated, and its runner calls it (not Stop(Result&)); 1.8.0 removed
// it. Declared without `override` so the header compiles against both
// (where the base has it, it overrides all the same); the warnings about
// that, and about overriding a deprecated function, are silenced here only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#pragma GCC diagnostic ignored "-Wsuggest-override"
#if defined(__clang__)
#pragma clang diagnostic ignored "-Winconsistent-missing-override"
#endif
  // Called by Google Benchmark 1.7.1 after the memory run.
  void Stop(Result* result) { Stop(*result); }
#pragma GCC diagnostic pop

 private:
  AllocStats start_;
};

}  // namespace cpprof::bench
