// ns per captured stack, for each way the signal handler can walk: the
// frame-pointer chain alone and the DWARF rows decoded from .eh_frame,
// on a 20-frame stack that runs through glibc (qsort, which has no frame
// pointers) as a real program's would. Google Benchmark; run:
//
//   build/release/bin/unwind_bench
//
// Each walk also reports how many frames it found ("frames"): the
// frame-pointer walk is fast because it skips what it cannot see.
#include <benchmark/benchmark.h>
#include <execinfo.h>
#include <pthread.h>

#include <cstdint>
#include <cstdlib>

#include "capture/frame_walk.h"
#include "capture/unwind.h"
#include "sources/cpu/unwind_tables.h"

namespace {

using cpprof::capture::MachineState;

constexpr int kLevels = 3;  // qsort levels: about 20 frames in all, from descend() to _start

benchmark::State* g_state = nullptr;
void (*g_body)(benchmark::State&, const MachineState&) = nullptr;
int g_level = 0;
uintptr_t g_lo = 0;
uintptr_t g_hi = 0;

[[gnu::noinline]] MachineState here() {
  MachineState s;
  s.pc = reinterpret_cast<uintptr_t>(__builtin_return_address(0));
  s.sp =
      reinterpret_cast<uintptr_t>(__builtin_frame_address(0)) + 16;  // the caller's SP after return
  s.fp = *static_cast<uintptr_t*>(__builtin_frame_address(0));       // the caller's saved FP
  return s;
}

void descend();

extern "C" [[gnu::noinline]] int descend_from_comparator(const void*, const void*) {
  descend();
  return 0;
}

[[gnu::noinline]] void descend() {
  if (g_level++ == kLevels) {
    MachineState state = here();
    g_body(*g_state, state);
    return;
  }
  int two[2] = {1, 2};
  qsort(two, 2, sizeof(int), descend_from_comparator);  // one comparison: one level deeper
  benchmark::DoNotOptimize(two);
}

void run_deep(benchmark::State& state, void (*body)(benchmark::State&, const MachineState&)) {
  pthread_attr_t attr;
  pthread_getattr_np(pthread_self(), &attr);
  void* addr = nullptr;
  size_t size = 0;
  pthread_attr_getstack(&attr, &addr, &size);
  pthread_attr_destroy(&attr);
  g_lo = reinterpret_cast<uintptr_t>(addr);
  g_hi = g_lo + size;
  g_state = &state;
  g_body = body;
  g_level = 0;
  descend();
}

cpprof::sources::UnwindTables& tables() {
  static cpprof::sources::UnwindTables t;
  return t;
}

void BM_FramePointerWalk(benchmark::State& state) {
  run_deep(state, [](benchmark::State& s, const MachineState& m) {
    uint64_t frames[64];
    size_t depth = 0;
    for (auto _ : s) {
      depth = cpprof::capture::walk_frame_pointers(m, g_lo, g_hi, frames, 64);
      benchmark::DoNotOptimize(frames);
    }
    s.counters["frames"] = static_cast<double>(depth);
  });
}
BENCHMARK(BM_FramePointerWalk);

void BM_DwarfWalk(benchmark::State& state) {
  tables().refresh();
  run_deep(state, [](benchmark::State& s, const MachineState& m) {
    uint64_t frames[64];
    size_t depth = 0;
    for (auto _ : s) {
      depth = cpprof::capture::walk_stack(m, g_lo, g_hi, frames, 64).depth;
      benchmark::DoNotOptimize(frames);
    }
    s.counters["frames"] = static_cast<double>(depth);
  });
}
BENCHMARK(BM_DwarfWalk);

// For reference: glibc's backtrace() (libgcc's unwinder, which looks the
// tables up through dl_iterate_phdr and its lock: not for signal handlers).
void BM_GlibcBacktrace(benchmark::State& state) {
  run_deep(state, [](benchmark::State& s, const MachineState&) {
    void* frames[64];
    int depth = 0;
    for (auto _ : s) {
      depth = backtrace(frames, 64);
      benchmark::DoNotOptimize(frames);
    }
    s.counters["frames"] = depth;
  });
}
BENCHMARK(BM_GlibcBacktrace);

// The rows are built once per loaded object, off the hot path; this is
// what the first profile request (and each dlopen) pays.
void BM_DecodeAllLoadedObjects(benchmark::State& state) {
  for (auto _ : state) {
    cpprof::sources::UnwindTables t;
    t.refresh();
    state.counters["rows"] = static_cast<double>(t.stats().rows);
    state.counters["KiB"] = static_cast<double>(t.stats().bytes) / 1024;
  }
}
BENCHMARK(BM_DecodeAllLoadedObjects)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
