// cpprof/alloc_stats.h over the capture layer's counters.
#include "cpprof/alloc_stats.h"

#include <atomic>
#include <cstdlib>
#include <string>

#include "api/alloc_status.h"
#include "capture/alloc_counters.h"
#include "capture/alloc_hooks.h"
#include "capture/heap_sampler.h"
#include "cpprof/heap_profile.h"

namespace cpprof {
namespace {

AllocStats from_totals(const capture::AllocTotals& totals) {
  return {totals.allocs, totals.frees, totals.bytes};
}

// One allocation through the malloc that this object's calls reach (the
// process's, or ours linked into the program), seen or not by the
// counters. All of them, host's and cpprof's: the caller may be inside an
// InternalAllocScope. Through a volatile pointer: the compiler would drop
// a malloc/free pair.
uint64_t all_allocs() {
  return capture::process_alloc_totals(false).allocs + capture::process_alloc_totals(true).allocs;
}

bool probe_counting() {
  capture::install_sanitizer_alloc_hooks();
  void* (*volatile process_malloc)(size_t) = &::malloc;
  const uint64_t before = all_allocs();
  void* volatile ptr = process_malloc(24);
  const uint64_t after = all_allocs();
  ::free(ptr);
  return after > before;
}

}  // namespace

AllocStats alloc_stats() { return from_totals(capture::process_alloc_totals(false)); }

AllocStats thread_alloc_stats() { return from_totals(capture::thread_alloc_totals()); }

bool alloc_counting_available() {
  static const bool available = probe_counting();
  return available;
}

}  // namespace cpprof

namespace cpprof::api {

std::string alloc_counting_refusal() {
  if (!capture::alloc_hooks_compiled_in()) {
    return "the sanitizer runtime did not accept cpprof's malloc hooks";
  }
  return "the program's malloc is not cpprof's: it defines its own, or an allocator is linked "
         "ahead of cpprof";
}

}  // namespace cpprof::api

namespace cpprof {

void set_heap_profile_rate(int64_t rate) { capture::set_heap_sample_rate(rate < 0 ? 0 : rate); }

int64_t heap_profile_rate() { return capture::heap_sample_rate(); }

}  // namespace cpprof
