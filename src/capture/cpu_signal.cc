#include "capture/cpu_signal.h"

#include <signal.h>

#include <atomic>

#include "capture/frame_walk.h"
#include "capture/signal_safe.h"
#include "capture/thread_table.h"
#include "capture/unwind.h"

namespace cpprof::capture {
namespace {

std::atomic<SampleRing*> g_ring{nullptr};
std::atomic<bool> g_enabled{false};
std::atomic<uint64_t> g_seen{0};
std::atomic<int> g_installed_signo{0};

// Reads the two words at the interrupted SP, but only inside known stack bounds.
CPPROF_READS_RAW_STACK void read_stack_top(uintptr_t sp, uintptr_t lo, uintptr_t hi,
                                           uint64_t out[2]) {
  if (hi == 0 || sp < lo || sp > hi - 2 * sizeof(uintptr_t) || sp % sizeof(uintptr_t) != 0) return;
  const auto* words = reinterpret_cast<const uintptr_t*>(sp);
  out[0] = words[0];
  out[1] = words[1];
}

void on_cpu_signal(int /*signo*/, siginfo_t* info, void* ucontext) {
  ErrnoGuard errno_guard;
  g_seen.fetch_add(1, std::memory_order_relaxed);
  SampleRing* ring = g_ring.load(std::memory_order_acquire);
  if (ring == nullptr || !g_enabled.load(std::memory_order_acquire)) return;
  ThreadSlot* slot = current_thread_slot();
  if (slot != nullptr && slot->internal.load(std::memory_order_relaxed)) return;

  RawSample sample;
  sample.tid = slot != nullptr ? slot->tid.load(std::memory_order_relaxed) : current_tid();
  // A CPU-time timer that fires late reports the periods it skipped as
  // overruns; the sample stands for all of them.
  int overrun = info->si_code == SI_TIMER && info->si_overrun > 0 ? info->si_overrun : 0;
  sample.weight = 1 + static_cast<uint64_t>(overrun);
  uintptr_t lo = slot != nullptr ? slot->stack_lo.load(std::memory_order_relaxed) : 0;
  uintptr_t hi = slot != nullptr ? slot->stack_hi.load(std::memory_order_relaxed) : 0;
  MachineState state = machine_state_from_ucontext(ucontext);
  WalkResult walk = walk_stack(state, lo, hi, sample.frames, RawSample::kMaxFrames);
  sample.depth = static_cast<uint32_t>(walk.depth);
  sample.leaf_unwound = walk.leaf_unwound;
  read_stack_top(state.sp, lo, hi, sample.stack_top);
  ring->push(sample);
}

}  // namespace

bool install_cpu_signal_handler(int signo, SampleRing* ring, const char** refusal) {
  g_ring.store(ring, std::memory_order_release);
  int expected = 0;
  if (!g_installed_signo.compare_exchange_strong(expected, signo)) return expected == signo;
  struct sigaction previous {};
  if (sigaction(signo, nullptr, &previous) != 0) {
    g_installed_signo.store(0);
    *refusal = "cannot read the SIGPROF disposition";
    return false;
  }
  bool host_owns_it = (previous.sa_flags & SA_SIGINFO) != 0
                          ? previous.sa_sigaction != nullptr
                          : (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN);
  if (host_owns_it) {
    // Never take a signal the program handles itself (its own profiler,
    // ITIMER_PROF timing...): its handler would stop working.
    g_installed_signo.store(0);
    *refusal = "the program has its own SIGPROF handler";
    return false;
  }
  struct sigaction action {};
  action.sa_sigaction = on_cpu_signal;
  action.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  // Nothing may interrupt the handler between claiming a ring cell and
  // publishing it (a host handler leaving by siglongjmp would strand the cell).
  sigfillset(&action.sa_mask);
  if (sigaction(signo, &action, nullptr) != 0) {
    g_installed_signo.store(0);
    *refusal = "cannot install the SIGPROF handler";
    return false;
  }
  return true;
}

void set_cpu_sampling_enabled(bool enabled) { g_enabled.store(enabled, std::memory_order_release); }

uint64_t cpu_signals_seen() { return g_seen.load(std::memory_order_relaxed); }

}  // namespace cpprof::capture
