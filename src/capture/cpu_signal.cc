#include "capture/cpu_signal.h"

#include <signal.h>

#include <atomic>

#include "capture/frame_walk.h"
#include "capture/signal_safe.h"
#include "capture/thread_capture.h"
#include "capture/thread_table.h"
#include "capture/unwind.h"

namespace cpprof::capture {
namespace {

std::atomic<SampleRing*> g_ring{nullptr};
std::atomic<bool> g_enabled{false};
std::atomic<uint64_t> g_seen{0};
std::atomic<int> g_installed_signo{0};
// Signals the program took from cpprof (bit signo - 1): never used again.
std::atomic<uint64_t> g_given_up{0};
static_assert(std::atomic<uint64_t>::is_always_lock_free);

// Reads the two words at the interrupted SP, but only inside known stack bounds.
CPPROF_READS_RAW_STACK void read_stack_top(uintptr_t sp, uintptr_t lo, uintptr_t hi,
                                           uint64_t out[2]) {
  if (hi == 0 || sp < lo || sp > hi - 2 * sizeof(uintptr_t) || sp % sizeof(uintptr_t) != 0) return;
  const auto* words = reinterpret_cast<const uintptr_t*>(sp);
  out[0] = words[0];
  out[1] = words[1];
}

void on_cpu_signal(int signo, siginfo_t* info, void* ucontext) {
  ErrnoGuard errno_guard;
  if (answer_capture_request(info, ucontext)) return;  // a goroutine dump, not a CPU sample
  // A signal cpprof gave up, passed on by the program's handler that took
  // it (or ours, put back by the program): its ticks are the program's.
  if (signo != g_installed_signo.load(std::memory_order_relaxed)) return;
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

namespace {

// Whether the program has a handler of its own (or ignores) `signo`.
bool taken(int signo) {
  struct sigaction current {};
  if (sigaction(signo, nullptr, &current) != 0) return true;
  if ((current.sa_flags & SA_SIGINFO) != 0) return current.sa_sigaction != nullptr;
  return current.sa_handler != SIG_DFL;
}

uint64_t signal_bit(int signo) {
  return signo >= 1 && signo <= 64 ? uint64_t{1} << (signo - 1) : 0;
}

bool given_up(int signo) {
  return (g_given_up.load(std::memory_order_acquire) & signal_bit(signo)) != 0;
}

// Whether the handler for `signo` is on_cpu_signal.
bool handler_is_ours(int signo) {
  struct sigaction current {};
  if (sigaction(signo, nullptr, &current) != 0) return false;
  return (current.sa_flags & SA_SIGINFO) != 0 && current.sa_sigaction == on_cpu_signal;
}

bool usable(int signo) { return !given_up(signo) && !taken(signo); }

// SIGPROF if free, else the highest free real-time signal (programs that
// use real-time signals usually count up from SIGRTMIN); 0 if none.
int free_cpu_signal() {
  if (usable(kCpuSignal)) return kCpuSignal;
  for (int signo = SIGRTMAX - 1; signo >= SIGRTMIN + 4; --signo) {
    if (usable(signo)) return signo;
  }
  return 0;
}

}  // namespace

int cpu_signal() {
  int signo = g_installed_signo.load(std::memory_order_acquire);
  return signo > 0 ? signo : kCpuSignal;
}

int install_cpu_signal_handler(SampleRing* ring, const char** refusal) {
  g_ring.store(ring, std::memory_order_release);
  return ensure_cpu_signal_handler(refusal);
}

bool cpu_signal_taken(int signo) {
  if (given_up(signo)) return true;
  if (handler_is_ours(signo)) return false;
  g_given_up.fetch_or(signal_bit(signo), std::memory_order_acq_rel);
  return true;
}

int ensure_cpu_signal_handler(const char** refusal) {
  int installed = g_installed_signo.load(std::memory_order_acquire);
  if (installed > 0 && !cpu_signal_taken(installed)) return installed;
  // Never take a signal the program handles itself: its handler would stop
  // working. (Callers serialise installs; -1 marks one in progress.)
  if (installed < 0 || !g_installed_signo.compare_exchange_strong(installed, -1)) {
    *refusal = "the CPU signal handler is being installed";
    return 0;
  }
  int signo = free_cpu_signal();
  if (signo == 0) {
    g_installed_signo.store(0);
    *refusal = "the program handles SIGPROF and every real-time signal itself";
    return 0;
  }
  struct sigaction action {};
  action.sa_sigaction = on_cpu_signal;
  action.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  // Nothing may interrupt the handler between claiming a ring cell and
  // publishing it (a host handler leaving by siglongjmp would strand the cell).
  sigfillset(&action.sa_mask);
  if (sigaction(signo, &action, nullptr) != 0) {
    g_installed_signo.store(0);
    *refusal = "cannot install the CPU signal handler";
    return 0;
  }
  g_installed_signo.store(signo, std::memory_order_release);
  return signo;
}

void set_cpu_sampling_enabled(bool enabled) { g_enabled.store(enabled, std::memory_order_release); }

uint64_t cpu_signals_seen() { return g_seen.load(std::memory_order_relaxed); }

}  // namespace cpprof::capture
