// The process's threads as cpprof sees them for /debug/pprof/goroutine:
// ids, names, states, current stacks and where each was created, for
// programs and tests that want them without HTTP (the thread-leak check
// in cpprof/testing.h is built on this).
//
// Taking the stacks never disturbs a thread: one blocked in the kernel is
// read from /proc and never signalled (its blocking call does not fail
// with EINTR); one that is running walks its own stack on cpprof's CPU
// signal. cpprof's own threads are never listed. docs/threads.md explains
// what can make a stack incomplete.
//
// Thread-safe; allocates; not for signal handlers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cpprof/export.h"

namespace cpprof {

// One frame of a symbolized stack (inlined calls are frames of their own).
struct StackFrame {
  std::string function;  // demangled, shortened as pprof shows it; empty if unknown
  std::string file;      // source file; empty if unknown
  int64_t line = 0;      // 0 if unknown
  uint64_t address = 0;  // the code address (a caller's frame: its call instruction)
};

// A thread of the process.
struct ThreadInfo {
  int tid = 0;
  std::string name;               // pthread_setname_np's (the kernel's comm)
  std::string state;              // "running", "sleeping", "disk wait"...
  std::string syscall;            // the system call it is blocked in; empty if none
  std::string note;               // why the stack is missing or may be inexact; empty if neither
  std::vector<StackFrame> stack;  // innermost first
  std::vector<StackFrame> creation_stack;  // the pthread_create call's; empty if unknown
  int creator_tid = 0;                     // the thread that created it; 0 if unknown
  // The thread as /debug/pprof/goroutine?debug=2 prints it (Go's traceback
  // form), followed by its whole creation stack.
  std::string description;
};

// Every thread of the process except cpprof's own, with symbolized stacks.
CPPROF_EXPORT std::vector<ThreadInfo> threads();

// The ids of those threads only: cheap (reads /proc/self/task, walks nothing).
CPPROF_EXPORT std::vector<int> thread_ids();

}  // namespace cpprof
