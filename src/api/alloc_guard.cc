#include "cpprof/alloc_guard.h"

#include <dlfcn.h>
#include <pthread.h>

#include <new>
#include <string_view>

#include "capture/alloc_counters.h"
#include "capture/alloc_hooks.h"
#include "sources/cpu/unwind_tables.h"
#include "symbolize/symbolizer.h"

namespace cpprof {

struct AllocationGuard::State {
  uint64_t max_allocs = 0;
  capture::AllocTotals start;
  capture::AllocTotals end;
  bool stopped = false;
  bool armed = false;
  uint64_t previous_trap_at = 0;
  capture::AllocTrap* previous_trap = nullptr;
  capture::AllocTrap trap;
};

namespace {

struct StackBounds {
  uintptr_t lo = 0;
  uintptr_t hi = 0;
};
// pthread_getattr_np allocates: once per thread.
[[gnu::tls_model("initial-exec")]] constinit thread_local StackBounds t_stack;

void record_stack_bounds(capture::AllocTrap* trap) {
  if (t_stack.hi == 0) {
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) != 0) return;
    void* addr = nullptr;
    size_t size = 0;
    if (pthread_attr_getstack(&attr, &addr, &size) == 0 && addr != nullptr) {
      t_stack.lo = reinterpret_cast<uintptr_t>(addr);
      t_stack.hi = t_stack.lo + size;
    }
    pthread_attr_destroy(&attr);
  }
  trap->stack_lo = t_stack.lo;
  trap->stack_hi = t_stack.hi;
}

// cpprof's hooks, and a sanitizer runtime's allocation functions under
// them: the frames at the top of the stack that the report leaves out.
bool allocator_frame(uint64_t pc) {
  if (capture::in_alloc_hooks(pc)) return true;
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(pc), &info) == 0 || info.dli_fname == nullptr) return false;
  std::string_view file = info.dli_fname;
  return file.find("libasan") != std::string_view::npos ||
         file.find("libubsan") != std::string_view::npos;
}

symbolize::Symbolizer& report_symbolizer() {
  static auto* symbolizer = new symbolize::Symbolizer;  // lives as long as the process
  return *symbolizer;
}

std::string describe_frame(uint64_t pc, bool return_address) {
  char hex[32];
  snprintf(hex, sizeof hex, "0x%llx", static_cast<unsigned long long>(pc));
  // A return address points after its call: look up the call itself.
  std::vector<symbolize::Frame> frames =
      report_symbolizer().symbolize(return_address ? pc - 1 : pc);
  if (frames.empty()) return std::string("    ") + hex + " ?\n";
  std::string out;
  for (const symbolize::Frame& frame : frames) {
    std::string name = frame.function.empty() ? std::string("?") : frame.function;
    name = name.substr(0, name.find('@'));  // symbol versions: __libc_start_main@@GLIBC_2.34
    out += std::string("    ") + hex + " " + name;
    if (!frame.file.empty()) out += " " + frame.file + ":" + std::to_string(frame.line);
    out += "\n";
  }
  return out;
}

}  // namespace

AllocationGuard::State& AllocationGuard::state() {
  return *std::launder(reinterpret_cast<State*>(storage_));
}
const AllocationGuard::State& AllocationGuard::state() const {
  return *std::launder(reinterpret_cast<const State*>(storage_));
}

AllocationGuard::AllocationGuard(uint64_t max_allocs) {
  static_assert(sizeof(State) <= sizeof(storage_) && alignof(State) <= 16);
  State* state = new (storage_) State;
  {
    // Everything that may allocate happens before counting starts, and
    // counts as cpprof's own (an enclosing guard does not see it).
    capture::InternalAllocScope own;
    sources::refresh_process_unwind_tables();
    record_stack_bounds(&state->trap);
  }
  state->max_allocs = max_allocs;
  capture::current_alloc_counters();
  state->start = capture::thread_alloc_totals();
  uint64_t trap_at = state->start.allocs + max_allocs + 1;
  if (trap_at <= state->start.allocs) trap_at = ~uint64_t{0};  // max_allocs near 2^64
  state->armed = capture::set_alloc_trap(trap_at, &state->trap, &state->previous_trap_at,
                                         &state->previous_trap);
}

AllocationGuard::~AllocationGuard() {
  stop();
  state().~State();
}

void AllocationGuard::stop() {
  if (state().stopped) return;
  state().end = capture::thread_alloc_totals();
  state().stopped = true;
  if (state().armed) {
    capture::set_alloc_trap(state().previous_trap_at, state().previous_trap, nullptr, nullptr);
  }
}

uint64_t AllocationGuard::allocations() const {
  const capture::AllocTotals now = state().stopped ? state().end : capture::thread_alloc_totals();
  return now.allocs - state().start.allocs;
}

uint64_t AllocationGuard::bytes() const {
  const capture::AllocTotals now = state().stopped ? state().end : capture::thread_alloc_totals();
  return now.bytes - state().start.bytes;
}

bool AllocationGuard::exceeded() const { return allocations() > state().max_allocs; }

std::string AllocationGuard::report() const {
  const uint64_t count = allocations();
  if (count <= state().max_allocs) return {};
  std::string out = std::to_string(count) + " heap allocation" + (count == 1 ? "" : "s") + " (" +
                    std::to_string(bytes()) + " bytes), at most " +
                    std::to_string(state().max_allocs) + " allowed.\n";
  const capture::AllocTrap& trap = state().trap;
  if (!trap.sprung) {
    return out + "(no stack: the first allocation past the limit happened under another guard)\n";
  }
  out += "The first allocation past the limit (" + std::to_string(trap.size) + " bytes) was at:\n";
  // Everything down to the outermost allocator frame (malloc or new, where
  // the program called in) is the allocator's: the program starts below.
  size_t i = 0;
  for (size_t j = 0; j < trap.depth; ++j) {
    if (allocator_frame(trap.frames[j])) i = j + 1;
  }
  for (; i < trap.depth; ++i) {
    const std::string frame = describe_frame(trap.frames[i], /*return_address=*/true);
    out += frame;
    if (frame.find(" main ") != std::string::npos) break;  // what runs main is noise
  }
  return out;
}

}  // namespace cpprof
