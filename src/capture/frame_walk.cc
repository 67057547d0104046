#include "capture/frame_walk.h"

#include <ucontext.h>

#include "capture/signal_safe.h"

namespace cpprof::capture {

CPPROF_READS_RAW_STACK size_t walk_frame_pointers(const MachineState& state, uintptr_t stack_lo,
                                                  uintptr_t stack_hi, uint64_t* frames,
                                                  size_t max_frames) {
  if (max_frames == 0) return 0;
  size_t n = 0;
  frames[n++] = state.pc;
  if (stack_hi == 0) return n;
  uintptr_t lo = state.sp > stack_lo ? state.sp : stack_lo;
  uintptr_t fp = state.fp;
  while (n < max_frames) {
    // A frame record is two words, aligned, inside the stack, above the last one.
    if (fp < lo || fp % sizeof(uintptr_t) != 0 || fp > stack_hi - 2 * sizeof(uintptr_t)) break;
    const auto* record = reinterpret_cast<const uintptr_t*>(fp);
    uintptr_t next_fp = record[0];
    uintptr_t return_address = record[1];
    if (return_address == 0) break;
    frames[n++] = return_address;
    if (next_fp <= fp) break;  // the chain must grow towards the stack's base
    lo = fp + 2 * sizeof(uintptr_t);
    fp = next_fp;
  }
  return n;
}

MachineState machine_state_from_ucontext(const void* ucontext) {
  const auto* uc = static_cast<const ucontext_t*>(ucontext);
  MachineState state;
#if defined(__x86_64__)
  state.pc = static_cast<uintptr_t>(uc->uc_mcontext.gregs[REG_RIP]);
  state.sp = static_cast<uintptr_t>(uc->uc_mcontext.gregs[REG_RSP]);
  state.fp = static_cast<uintptr_t>(uc->uc_mcontext.gregs[REG_RBP]);
#elif defined(__aarch64__)
  state.pc = static_cast<uintptr_t>(uc->uc_mcontext.pc);
  state.sp = static_cast<uintptr_t>(uc->uc_mcontext.sp);
  state.fp = static_cast<uintptr_t>(uc->uc_mcontext.regs[29]);
#else
#error "cpprof: unsupported architecture"
#endif
  return state;
}

}  // namespace cpprof::capture
