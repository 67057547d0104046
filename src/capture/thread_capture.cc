#include "capture/thread_capture.h"

#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>

#include "capture/cpu_signal.h"
#include "capture/frame_walk.h"
#include "capture/thread_table.h"
#include "capture/unwind.h"

namespace cpprof::capture {
namespace {

constexpr size_t kCells = ThreadTable::kCapacity;
static_assert(kCells <= (1u << 12));

// Phases, in the low two bits of a cell's state (the generation above them).
constexpr uint64_t kFree = 0;
constexpr uint64_t kWaiting = 1;  // request sent, no answer yet
constexpr uint64_t kWriting = 2;  // the handler is walking into the cell
constexpr uint64_t kDone = 3;

// The queued value: generation, cell index, and a tag that tells capture
// requests apart from anything else queued with the same signal.
constexpr uint64_t kTag = 0xc9;
constexpr uint64_t token(uint64_t generation, size_t cell) {
  return (generation << 20) | (static_cast<uint64_t>(cell) << 8) | kTag;
}

struct Cell {
  std::atomic<uint64_t> state{0};  // (generation << 2) | phase
  uintptr_t stack_lo = 0;
  uintptr_t stack_hi = 0;
  uint32_t depth = 0;
  uint64_t frames[kCaptureFrames] = {};
};

constinit Cell g_cells[kCells];
std::atomic<uint64_t> g_generation{0};

int64_t now_ns() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return now.tv_sec * 1000000000LL + now.tv_nsec;
}

bool send_request(int tid, int signo, uint64_t value) {
  siginfo_t info{};
  info.si_signo = signo;
  info.si_code = SI_QUEUE;
  info.si_pid = getpid();
  info.si_uid = getuid();
  info.si_value.sival_ptr = reinterpret_cast<void*>(value);
  return syscall(SYS_rt_tgsigqueueinfo, getpid(), tid, signo, &info) == 0;
}

}  // namespace

bool answer_capture_request(const siginfo_t* info, const void* ucontext) {
  if (info->si_code != SI_QUEUE) return false;
  const auto value = reinterpret_cast<uint64_t>(info->si_value.sival_ptr);
  if ((value & 0xff) != kTag) return false;
  const size_t index = (value >> 8) & 0xfff;
  const uint64_t generation = value >> 20;
  if (index >= kCells) return true;
  Cell& cell = g_cells[index];
  uint64_t expected = (generation << 2) | kWaiting;
  // A late signal (its request timed out, or the cell serves a newer one) stops here.
  if (!cell.state.compare_exchange_strong(expected, (generation << 2) | kWriting,
                                          std::memory_order_acquire)) {
    return true;
  }
  const MachineState state = machine_state_from_ucontext(ucontext);
  cell.depth = static_cast<uint32_t>(
      walk_stack(state, cell.stack_lo, cell.stack_hi, cell.frames, kCaptureFrames).depth);
  cell.state.store((generation << 2) | kDone, std::memory_order_release);
  return true;
}

bool capture_live_stacks(CaptureRequest* requests, size_t count, int64_t timeout_ns,
                         const char** refusal) {
  const int signo = ensure_cpu_signal_handler(refusal);
  if (signo == 0) return false;
  if (count > kCells) count = kCells;
  const uint64_t generation =
      (g_generation.fetch_add(1, std::memory_order_relaxed) + 1) & ((uint64_t{1} << 44) - 1);
  size_t pending = 0;
  for (size_t i = 0; i < count; ++i) {
    Cell& cell = g_cells[i];
    cell.stack_lo = requests[i].stack_lo;
    cell.stack_hi = requests[i].stack_hi;
    cell.depth = 0;
    cell.state.store((generation << 2) | kWaiting, std::memory_order_release);
    if (send_request(requests[i].tid, signo, token(generation, i))) {
      ++pending;
    } else {
      cell.state.store(kFree, std::memory_order_release);  // the thread is gone
    }
  }
  const int64_t deadline = now_ns() + timeout_ns;
  const pid_t pid = getpid();
  while (pending > 0 && now_ns() < deadline) {
    pending = 0;
    for (size_t i = 0; i < count; ++i) {
      if ((g_cells[i].state.load(std::memory_order_acquire) & 3) != kWaiting) continue;
      // A thread that exited before its handler ran will never answer.
      if (syscall(SYS_tgkill, pid, requests[i].tid, 0) != 0) {
        uint64_t waiting = (generation << 2) | kWaiting;
        g_cells[i].state.compare_exchange_strong(waiting, kFree, std::memory_order_acq_rel);
        continue;
      }
      ++pending;
    }
    if (pending > 0) {
      timespec pause{0, 50000};
      nanosleep(&pause, nullptr);
    }
  }
  for (size_t i = 0; i < count; ++i) {
    Cell& cell = g_cells[i];
    uint64_t waiting = (generation << 2) | kWaiting;
    // Withdraw what is still unanswered; a handler already writing finishes first.
    if (cell.state.compare_exchange_strong(waiting, kFree, std::memory_order_acq_rel)) continue;
    while ((cell.state.load(std::memory_order_acquire) & 3) == kWriting) {
      timespec pause{0, 10000};
      nanosleep(&pause, nullptr);
    }
    if (cell.state.load(std::memory_order_acquire) != ((generation << 2) | kDone)) continue;
    requests[i].depth = cell.depth;
    for (uint32_t f = 0; f < cell.depth; ++f) requests[i].frames[f] = cell.frames[f];
    requests[i].answered = true;
    cell.state.store(kFree, std::memory_order_release);
  }
  return true;
}

}  // namespace cpprof::capture
