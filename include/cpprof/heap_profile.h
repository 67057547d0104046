// The sampled heap profile's rate: the counterpart of Go's
// runtime.MemProfileRate.
//
// Every process that loads cpprof samples its allocations, server or not:
// on average one sample per `rate` bytes allocated (524288 by default, as
// in Go; CPPROF_HEAP_RATE sets it at load). A sampled allocation keeps its
// stack until it is freed; /debug/pprof/heap and /debug/pprof/allocs show
// them, scaled back to estimates of all allocations.
//
// Sampled objects are served by cpprof itself, from a region of its own,
// not by the allocator below (glibc, jemalloc, tcmalloc): that is how free()
// recognises them at the cost of one compare. Programs that pass pointers
// from malloc to an allocator's extended API (jemalloc's sdallocx,
// sallocx, rallocx...) must turn sampling off (rate 0).
#pragma once

#include <cstdint>

#include "cpprof/export.h"

namespace cpprof {

// Sets the mean number of bytes between samples: 1 samples every
// allocation (exact profiles, slow), 0 turns sampling off. Takes effect at
// each thread's next sample. Thread-safe.
CPPROF_EXPORT void set_heap_profile_rate(int64_t rate);

// The current rate.
CPPROF_EXPORT int64_t heap_profile_rate();

}  // namespace cpprof
