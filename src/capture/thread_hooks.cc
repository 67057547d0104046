#include "capture/thread_hooks.h"

#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>

#include <unistd.h>

#include <atomic>
#include <cstdint>

#include "capture/alloc_counters.h"
#include "capture/cpu_signal.h"
#include "capture/signal_safe.h"
#include "capture/unwind.h"

extern "C" void* __libc_stack_end;  // the main thread's stack top (glibc)

// Defined by the linker around the section of hooked_thread_start.
extern "C" [[gnu::visibility("hidden")]] const char __start_cpprof_thread_start[];
extern "C" [[gnu::visibility("hidden")]] const char __stop_cpprof_thread_start[];

namespace cpprof::capture {
namespace {

using StartRoutine = void* (*)(void*);
using PthreadCreate = int (*)(pthread_t*, const pthread_attr_t*, StartRoutine, void*);

struct StartRecord {
  std::atomic<bool> busy{false};
  StartRoutine routine = nullptr;
  void* arg = nullptr;
  bool internal = false;
  ThreadCreation creation;
};

// A slot's creation record, written by the thread that holds the slot.
// `generation` (the slot's, stored last) says whose it is: a reader checks
// it before and after copying, as with a sequence lock.
struct CreationCell {
  std::atomic<uint64_t> generation{0};
  std::atomic<int> creator_tid{0};
  std::atomic<uint32_t> depth{0};
  std::atomic<uint64_t> frames[kCreationFrames] = {};
};
constinit CreationCell g_creations[ThreadTable::kCapacity];
std::atomic<uint64_t> g_host_created{0};

CreationCell* creation_cell(const ThreadSlot* slot) {
  const ptrdiff_t index = slot - thread_table().begin();
  if (index < 0 || static_cast<size_t>(index) >= ThreadTable::kCapacity) return nullptr;
  return &g_creations[index];
}

void publish_creation(ThreadSlot* slot, const ThreadCreation& creation) {
  CreationCell* cell = creation_cell(slot);
  if (cell == nullptr) return;
  cell->generation.store(0, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  cell->creator_tid.store(creation.creator_tid, std::memory_order_relaxed);
  cell->depth.store(creation.depth, std::memory_order_relaxed);
  for (uint32_t i = 0; i < creation.depth; ++i) {
    cell->frames[i].store(creation.frames[i], std::memory_order_relaxed);
  }
  cell->generation.store(slot->generation.load(std::memory_order_relaxed),
                         std::memory_order_release);
}

// The calling thread's stack from the caller of the function whose frame
// is `frame` outwards (that function needs a frame record: we build with
// frame pointers). Unknown bounds give just the return address.
void walk_from_frame(const uintptr_t* frame, uintptr_t return_address, ThreadCreation* out) {
  uintptr_t lo = 0;
  uintptr_t hi = 0;
  if (ThreadSlot* slot = current_thread_slot()) {
    lo = slot->stack_lo.load(std::memory_order_relaxed);
    hi = slot->stack_hi.load(std::memory_order_acquire);
  }
  if (hi == 0 && current_tid() == getpid()) hi = reinterpret_cast<uintptr_t>(__libc_stack_end);
  MachineState state;
  state.pc = return_address;
  state.sp = reinterpret_cast<uintptr_t>(frame) + 2 * sizeof(uintptr_t);
  state.fp = frame[0];
  out->depth = static_cast<uint32_t>(walk_stack(state, lo, hi, out->frames, kCreationFrames).depth);
  out->creator_tid = current_tid();
}

constexpr size_t kStartRecords = 1024;
constinit StartRecord g_records[kStartRecords];
std::atomic<uint64_t> g_unhooked{0};
std::atomic<size_t> g_records_high_water{0};  // records at or above were never written
std::atomic<void (*)(ThreadSlot*)> g_on_start{nullptr};
std::atomic<void (*)(ThreadSlot*)> g_on_exit{nullptr};
[[gnu::tls_model("initial-exec")]] constinit thread_local bool t_creating_internal = false;

StartRecord* claim_record() {
  for (size_t i = 0; i < kStartRecords; ++i) {
    StartRecord& record = g_records[i];
    bool expected = false;
    if (!record.busy.load(std::memory_order_relaxed) &&
        record.busy.compare_exchange_strong(expected, true, std::memory_order_acquire)) {
      size_t high = g_records_high_water.load(std::memory_order_relaxed);
      while (high < i + 1 &&
             !g_records_high_water.compare_exchange_weak(high, i + 1, std::memory_order_relaxed)) {
      }
      return &record;
    }
  }
  return nullptr;
}

// Runs when the hooked thread leaves its start routine, however it leaves.
class ExitGuard {
 public:
  explicit ExitGuard(ThreadSlot* slot) : slot_(slot) {}
  ~ExitGuard() {
    release_thread_alloc_counters();
    if (slot_ == nullptr) return;
    if (auto on_exit = g_on_exit.load(std::memory_order_acquire)) on_exit(slot_);
    thread_table().release(slot_);
    set_current_thread_slot(nullptr);
  }
  ExitGuard(const ExitGuard&) = delete;
  ExitGuard& operator=(const ExitGuard&) = delete;

 private:
  ThreadSlot* slot_;
};

// In a section of its own, so that the linker's __start_/__stop_ symbols
// bound its code exactly, with or without a symbol table.
[[gnu::section("cpprof_thread_start"), gnu::noinline]] void* hooked_thread_start(void* raw) {
  auto* record = static_cast<StartRecord*>(raw);
  StartRoutine routine = record->routine;
  void* arg = record->arg;
  bool internal = record->internal;
  ThreadCreation creation = record->creation;
  record->busy.store(false, std::memory_order_release);
  if (internal) mark_thread_allocs_internal();  // before it allocates

  ThreadSlot* slot = nullptr;
  {
    InternalAllocScope own;  // what registering allocates is cpprof's
    slot = register_current_thread(internal);
  }
  if (slot != nullptr) {
    publish_creation(slot, creation);
    slot->hooked.store(true, std::memory_order_release);
  }
  if (!internal) {
    g_host_created.fetch_add(1, std::memory_order_relaxed);
    // Hosts often start workers with every signal blocked (liblzma does,
    // so that only the main thread sees SIGINT). A blocked timer signal
    // would stay pending and the thread would never be sampled.
    sigset_t sampling;
    sigemptyset(&sampling);
    sigaddset(&sampling, cpu_signal());
    pthread_sigmask(SIG_UNBLOCK, &sampling, nullptr);
  }
  ExitGuard guard(slot);
  if (auto on_start = g_on_start.load(std::memory_order_acquire)) on_start(slot);
  return routine(arg);
}

// Resolved at the first pthread_create (the caller's ordinary context, where
// the loader's lock is fine). An atomic rather than a function-local static:
// a static's guard is a lock. Two first callers at once both look it up.
std::atomic<PthreadCreate> g_real_pthread_create{nullptr};

PthreadCreate real_pthread_create() {
  PthreadCreate real = g_real_pthread_create.load(std::memory_order_acquire);
  if (real == nullptr) {
    real = reinterpret_cast<PthreadCreate>(dlsym(RTLD_NEXT, "pthread_create"));
    g_real_pthread_create.store(real, std::memory_order_release);
  }
  return real;
}

}  // namespace

void set_thread_hooks(ThreadHooks hooks) {
  g_on_start.store(hooks.on_start, std::memory_order_release);
  g_on_exit.store(hooks.on_exit, std::memory_order_release);
}

InternalThreadScope::InternalThreadScope() : previous_(t_creating_internal) {
  t_creating_internal = true;
}
InternalThreadScope::~InternalThreadScope() { t_creating_internal = previous_; }

ThreadSlot* register_current_thread(bool internal) {
  if (internal) mark_thread_allocs_internal();
  ThreadSlot* slot = current_thread_slot();
  if (slot != nullptr && slot->hooked.load(std::memory_order_acquire)) {
    // Already ours (spawn_internal_thread after the hook ran): only mark it.
    if (internal) slot->internal.store(true, std::memory_order_release);
    return slot;
  }
  slot = thread_table().claim(current_tid(), internal);
  if (slot == nullptr) return nullptr;
  slot->pthread.store(static_cast<uint64_t>(pthread_self()), std::memory_order_relaxed);
  record_current_stack_bounds(slot);
  set_current_thread_slot(slot);
  return slot;
}

void record_current_stack_bounds(ThreadSlot* slot) {
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return;
  void* addr = nullptr;
  size_t size = 0;
  if (pthread_attr_getstack(&attr, &addr, &size) == 0 && addr != nullptr) {
    slot->stack_lo.store(reinterpret_cast<uintptr_t>(addr), std::memory_order_relaxed);
    slot->stack_hi.store(reinterpret_cast<uintptr_t>(addr) + size, std::memory_order_release);
  }
  pthread_attr_destroy(&attr);
}

bool in_thread_start_trampoline(uintptr_t pc) {
  return pc >= reinterpret_cast<uintptr_t>(__start_cpprof_thread_start) &&
         pc < reinterpret_cast<uintptr_t>(__stop_cpprof_thread_start);
}

bool thread_creation(const ThreadSlot* slot, uint64_t generation, ThreadCreation* out) {
  const CreationCell* cell = creation_cell(slot);
  if (cell == nullptr || generation == 0) return false;
  if (cell->generation.load(std::memory_order_acquire) != generation) return false;
  out->creator_tid = cell->creator_tid.load(std::memory_order_relaxed);
  out->depth = cell->depth.load(std::memory_order_relaxed);
  if (out->depth > kCreationFrames) return false;
  for (uint32_t i = 0; i < out->depth; ++i) {
    out->frames[i] = cell->frames[i].load(std::memory_order_relaxed);
  }
  std::atomic_thread_fence(std::memory_order_acquire);
  return cell->generation.load(std::memory_order_relaxed) == generation;
}

uint64_t host_threads_created() { return g_host_created.load(std::memory_order_relaxed); }

uint64_t unhooked_thread_starts() { return g_unhooked.load(std::memory_order_relaxed); }

uint64_t thread_records_memory_bytes() {
  const size_t slots = static_cast<size_t>(thread_table().end() - thread_table().begin());
  const size_t records = g_records_high_water.load(std::memory_order_relaxed);
  return pages_spanned(g_creations, slots * sizeof(CreationCell)) +
         pages_spanned(g_records, records * sizeof(StartRecord));
}

}  // namespace cpprof::capture

// The interposer itself: exported with default visibility so that it wins
// symbol resolution over libc's when the library is linked or preloaded.
// In the trampoline's section: its frame (under whatever glibc's
// pthread_create allocates) is cpprof's, and profiles leave it out too.
extern "C" [[gnu::visibility("default"), gnu::section("cpprof_thread_start")]] int pthread_create(
    pthread_t* thread, const pthread_attr_t* attr, void* (*routine)(void*), void* arg) {
  using namespace cpprof::capture;
  PthreadCreate real = real_pthread_create();
  if (real == nullptr) return EAGAIN;
  StartRecord* record = claim_record();
  if (record == nullptr) {
    g_unhooked.fetch_add(1, std::memory_order_relaxed);
    return real(thread, attr, routine, arg);
  }
  record->routine = routine;
  record->arg = arg;
  record->internal = t_creating_internal;
  walk_from_frame(static_cast<const uintptr_t*>(__builtin_frame_address(0)),
                  reinterpret_cast<uintptr_t>(__builtin_return_address(0)), &record->creation);
  int rc = real(thread, attr, hooked_thread_start, record);
  if (rc != 0) record->busy.store(false, std::memory_order_release);
  return rc;
}
