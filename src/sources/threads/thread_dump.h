// A dump of every thread of the process, for the goroutine and
// threadcreate profiles and the thread-leak check, taken without
// disturbing the threads:
//   - a thread blocked in the kernel (/proc/self/task/TID/syscall gives
//     its system call, SP and PC) is never signalled: its stack is copied
//     with process_vm_readv (a fault ends the copy, not the process) and
//     walked with the published DWARF rows from that PC and SP. The
//     syscall line is read again afterwards; if the thread moved, it is
//     read once more, and then marked if it still moves;
//   - a running thread is asked by the CPU signal to walk its own stack
//     (capture/thread_capture); all of them at once, waiting a bounded
//     time. A thread that blocks that signal is not asked.
// A thread that exits meanwhile drops out; one that cannot be captured is
// kept with what is known and a note saying why.
//
// Every stack holds return addresses, innermost first: the caller's site
// of each entry is entry - 1 (a live thread's exact PC is stored as PC + 1
// to follow that rule; a blocked thread's PC is the address after its
// syscall instruction, which already does).
//
// Not for signal handlers: reads /proc and allocates. One dump at a time
// (callers serialise; dump_threads() takes a lock).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace cpprof::sources {

// How a thread's stack was obtained.
enum class StackSource {
  kNone,     // not captured: see ThreadRecord::note
  kLive,     // walked by the thread itself, on our signal
  kBlocked,  // walked from its PC and SP in the kernel, without disturbing it
};

struct ThreadRecord {
  int tid = 0;
  std::string name;      // /proc comm (pthread_setname_np)
  char state = '?';      // /proc state letter: R, S, D, T, t, Z...
  int64_t syscall = -1;  // the system call it waits in; -1: none (running) or unknown
  StackSource source = StackSource::kNone;
  std::string note;                  // why the stack is missing or may be inexact; empty if neither
  std::vector<uint64_t> stack;       // return addresses, innermost first
  std::vector<uint64_t> created_by;  // the pthread_create call's stack; empty if unknown
  int creator_tid = 0;               // 0 if unknown
};

struct ThreadDump {
  std::vector<ThreadRecord> threads;  // the host's threads, by tid
  int64_t internal = 0;               // cpprof's own threads, left out
  int64_t time_nanos = 0;             // CLOCK_REALTIME when the dump began
};

struct DumpOptions {
  bool stacks = true;                   // false: ids, names, states only (cheap)
  int64_t live_timeout_ns = 200000000;  // how long running threads may take to answer
};

// Dumps every thread of the process but cpprof's own.
ThreadDump dump_threads(const DumpOptions& options = {});

// The lock dump_threads takes; held across fork() (api/fork_safety.cc).
std::mutex& thread_dump_mutex();

// The words /proc state letters stand for ("running", "sleeping", "disk wait"...).
std::string thread_state_name(char state);

// The name of system call `number` on this architecture ("epoll_wait"),
// or "syscall N" for one without a name here.
std::string syscall_name(int64_t number);

// Every thread of the process now (cpprof's included), from /proc/self/task,
// sorted; empty if /proc is unavailable.
std::vector<int> process_thread_ids();

// The host's threads now (not cpprof's), from /proc/self/task; -1 if unknown.
int64_t host_thread_count();

}  // namespace cpprof::sources
