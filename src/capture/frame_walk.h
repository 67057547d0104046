// Frame-pointer stack walk from a signal context. Async-signal-safe.
//
// Follows the chain of saved frame pointers (x86-64: [rbp] = caller's rbp,
// [rbp+8] = return address) strictly upwards inside the thread's stack
// bounds, so a corrupt or missing frame pointer ends the walk instead of
// faulting. A leaf function without frame setup leaves its caller out of
// the chain; the handler therefore also records the two words at the
// interrupted SP, and the aggregator decides off the hot path (with symbols
// and code at hand) whether one of them is the leaf's return address.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cpprof::capture {

// Registers of the interrupted code that the walk needs.
struct MachineState {
  uintptr_t pc = 0;
  uintptr_t sp = 0;
  uintptr_t fp = 0;
};

// Fills `frames` with pc then the return addresses of the frame chain.
// Reads memory only inside [stack_lo, stack_hi); with unknown bounds
// (stack_hi == 0) records only the pc. Returns the number of frames.
size_t walk_frame_pointers(const MachineState& state, uintptr_t stack_lo, uintptr_t stack_hi,
                           uint64_t* frames, size_t max_frames);

// The machine state from a signal handler's ucontext argument.
MachineState machine_state_from_ucontext(const void* ucontext);

}  // namespace cpprof::capture
