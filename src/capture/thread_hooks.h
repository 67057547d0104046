// Interposed pthread_create: every thread started after the library loads
// (std::thread included) registers itself in the ThreadTable before running
// user code, and releases its slot when it exits, even via pthread_exit or
// cancellation (a destructor in the start frame runs during forced unwinding).
//
// The start routine and argument travel to the new thread in a fixed pool
// of start records (no allocation); if the pool is exhausted, the thread
// starts unhooked and a /proc/self/task scan finds it later.
#pragma once

#include "capture/thread_table.h"

namespace cpprof::capture {

// Called on the new thread after it registered (slot may be nullptr when
// the table is full) and on the exiting thread before its slot is released.
// The CPU sampler uses them to arm and delete per-thread timers. Set once;
// the functions must be safe to call from any thread at any time.
struct ThreadHooks {
  void (*on_start)(ThreadSlot* slot) = nullptr;
  void (*on_exit)(ThreadSlot* slot) = nullptr;
};
void set_thread_hooks(ThreadHooks hooks);

// While alive on a thread, threads it creates are marked as cpprof's own.
class InternalThreadScope {
 public:
  InternalThreadScope();
  ~InternalThreadScope();
  InternalThreadScope(const InternalThreadScope&) = delete;
  InternalThreadScope& operator=(const InternalThreadScope&) = delete;

 private:
  bool previous_;
};

// Registers the calling thread in a fresh slot (unless it already has one
// of its own), marked internal or not, with its stack bounds; returns the
// slot or nullptr if the table is full.
ThreadSlot* register_current_thread(bool internal);

// Records the calling thread's stack bounds in `slot` (pthread_getattr_np).
// Not async-signal-safe: it may allocate. Call from the thread itself.
void record_current_stack_bounds(ThreadSlot* slot);

// Whether `pc` lies in the trampoline every hooked thread starts in, below
// the program's own start routine, or in the pthread_create interposer:
// cpprof's frames, which profiles leave out.
bool in_thread_start_trampoline(uintptr_t pc);

// Where a thread was created: the stack of the pthread_create call that
// started it (return addresses, innermost first) and the creating thread.
inline constexpr size_t kCreationFrames = 32;
struct ThreadCreation {
  int creator_tid = 0;
  uint32_t depth = 0;
  uint64_t frames[kCreationFrames] = {};
};

// Copies the creation record of the thread that holds `slot` in its
// generation `generation` (ThreadSlot::generation read by the caller);
// false if the slot has moved on to another thread meanwhile, or the
// thread did not start through our pthread_create. Thread-safe.
bool thread_creation(const ThreadSlot* slot, uint64_t generation, ThreadCreation* out);

// Threads the host has started through pthread_create since cpprof loaded
// (cpprof's own not included), whether they still run or not.
uint64_t host_threads_created();

// Start records in use, and threads that started unhooked because the pool was full.
uint64_t unhooked_thread_starts();

// Memory the creation records and start records hold: their pages written
// so far (the arrays are reserved up front). Relaxed loads; safe anywhere.
uint64_t thread_records_memory_bytes();

}  // namespace cpprof::capture
