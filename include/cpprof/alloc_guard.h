// AllocationGuard: "this block allocates at most N times", checked on the
// calling thread, with the stack of the first allocation past the limit.
//
//   {
//     cpprof::AllocationGuard guard(0);
//     hot_path(request);
//     if (guard.exceeded()) std::cerr << guard.report();
//   }
//
// cpprof/testing.h wraps it in GoogleTest assertions
// (CPPROF_EXPECT_NO_ALLOCATIONS and friends). Only the calling thread's
// allocations count. Guards nest: an inner guard takes over the stack
// capture until it ends, the outer one still counts everything.
//
// The first guard of a process prepares the unwind tables of every loaded
// object (a few milliseconds), and the first of a thread reads its stack
// bounds; both allocate before counting starts (an enclosing guard sees
// them), later guards do not allocate at all. The stack is captured inside
// the allocation call without allocating, and symbolized by report().
#pragma once

#include <cstdint>
#include <string>

#include "cpprof/export.h"

namespace cpprof {

class CPPROF_EXPORT AllocationGuard {
 public:
  // Starts counting the calling thread's allocations; more than
  // `max_allocs` of them exceed the guard.
  explicit AllocationGuard(uint64_t max_allocs = 0);
  // Stops counting (if stop() was not called). Never fails or throws.
  ~AllocationGuard();
  AllocationGuard(const AllocationGuard&) = delete;
  AllocationGuard& operator=(const AllocationGuard&) = delete;

  // Stops counting; later allocations are not counted. Idempotent. Must be
  // called on the thread that created the guard.
  void stop();

  // Allocations counted so far (until stop()).
  uint64_t allocations() const;
  // Bytes those allocations requested.
  uint64_t bytes() const;
  // Whether more than max_allocs allocations were counted.
  bool exceeded() const;

  // What happened, for a failure message: the count against the limit and,
  // if exceeded, the size and symbolized stack (function, file:line) of
  // the first allocation past the limit, cpprof's own frames left out.
  // Empty when not exceeded. Allocates: call after stop() if the report
  // itself must not be counted.
  std::string report() const;

 private:
  struct State;
  State& state();
  const State& state() const;
  // The state lives inside the guard: creating one must not allocate.
  alignas(16) unsigned char storage_[640];
};

}  // namespace cpprof
