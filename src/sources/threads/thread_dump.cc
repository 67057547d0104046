#include "sources/threads/thread_dump.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string_view>
#include <utility>

#include "capture/cpu_signal.h"
#include "capture/thread_capture.h"
#include "capture/thread_hooks.h"
#include "capture/thread_table.h"
#include "capture/unwind.h"
#include "sources/cpu/unwind_tables.h"
#include "sources/threads/perf_stack_capture.h"

extern "C" void* __libc_stack_end;  // the main thread's stack top (glibc)

namespace cpprof::sources {
namespace {

constexpr size_t kPage = 4096;
constexpr size_t kMaxCopy = 256 * 1024;       // stack bytes copied from a blocked thread at most
constexpr size_t kUnboundedCopy = 64 * 1024;  // ...when its stack's top is unknown

// Reads a small /proc file into `buf` (NUL-terminated); false if it is gone.
bool read_proc(const char* path, char* buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = read(fd, buf, size - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  return true;
}

std::string task_path(int tid, const char* file) {
  return "/proc/self/task/" + std::to_string(tid) + "/" + file;
}

}  // namespace

std::vector<int> process_thread_ids() {
  std::vector<int> tids;
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return tids;
  while (dirent* entry = readdir(dir)) {
    int tid = std::atoi(entry->d_name);
    if (tid > 0) tids.push_back(tid);
  }
  closedir(dir);
  std::sort(tids.begin(), tids.end());
  return tids;
}

namespace {

// Name and state from /proc/self/task/TID/stat: "tid (comm) S ...", where
// comm may itself hold spaces and parentheses.
bool read_stat(int tid, ThreadRecord* record) {
  char buf[1024];
  if (!read_proc(task_path(tid, "stat").c_str(), buf, sizeof buf)) return false;
  const char* open_paren = std::strchr(buf, '(');
  const char* close_paren = std::strrchr(buf, ')');
  if (open_paren == nullptr || close_paren == nullptr || close_paren < open_paren) return false;
  record->name.assign(open_paren + 1, close_paren);
  if (close_paren[1] == ' ' && close_paren[2] != '\0') record->state = close_paren[2];
  return true;
}

// /proc/self/task/TID/syscall: "running", or "NR args... SP PC" for a
// thread blocked in system call NR ("-1 SP PC": blocked outside one).
struct SyscallLine {
  bool readable = false;
  bool running = false;
  int64_t number = -1;
  uintptr_t sp = 0;
  uintptr_t pc = 0;
  bool operator==(const SyscallLine&) const = default;
};

SyscallLine read_syscall(int tid) {
  SyscallLine line;
  char buf[256];
  if (!read_proc(task_path(tid, "syscall").c_str(), buf, sizeof buf)) return line;
  line.readable = true;
  if (std::strncmp(buf, "running", 7) == 0) {
    line.running = true;
    return line;
  }
  std::vector<uint64_t> fields;
  char* cursor = buf;
  line.number = std::strtoll(cursor, &cursor, 10);
  while (*cursor != '\0' && *cursor != '\n') {
    char* end = nullptr;
    uint64_t value = std::strtoull(cursor, &end, 16);
    if (end == cursor) break;
    fields.push_back(value);
    cursor = end;
  }
  if (fields.size() < 2) {
    line.readable = false;
    return line;
  }
  line.sp = fields[fields.size() - 2];
  line.pc = fields[fields.size() - 1];
  return line;
}

// Whether the thread blocks `signo` (SigBlk in its status); true if unknown.
bool blocks_signal(int tid, int signo) {
  char buf[2048];
  if (!read_proc(task_path(tid, "status").c_str(), buf, sizeof buf)) return true;
  const char* field = std::strstr(buf, "\nSigBlk:");
  if (field == nullptr) return true;
  const uint64_t mask = std::strtoull(field + 8, nullptr, 16);
  return ((mask >> (signo - 1)) & 1) != 0;
}

// Copies [from, from + size) of this process's memory into `into`, one
// page per piece so that a fault (a stack unmapped by an exiting thread)
// ends the copy there; returns the bytes copied.
size_t copy_memory(uintptr_t from, void* into, size_t size) {
  constexpr size_t kPieces = kMaxCopy / kPage + 1;
  iovec remote[kPieces];
  size_t pieces = 0;
  for (uintptr_t at = from; at < from + size && pieces < kPieces; ++pieces) {
    const uintptr_t page_end = (at & ~(kPage - 1)) + kPage;
    const uintptr_t end = std::min<uintptr_t>(page_end, from + size);
    remote[pieces] = {reinterpret_cast<void*>(at), end - at};
    at = end;
  }
  iovec local{into, size};
  const ssize_t n = process_vm_readv(getpid(), &local, 1, remote, pieces, 0);
  if (n >= 0) return static_cast<size_t>(n);
  // Not permitted here (a seccomp filter): /proc/self/mem says EIO on a
  // fault instead. Read page by page for the same reason.
  int fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  size_t copied = 0;
  for (size_t i = 0; i < pieces; ++i) {
    const ssize_t got = pread(fd, static_cast<char*>(into) + copied, remote[i].iov_len,
                              static_cast<off_t>(reinterpret_cast<uintptr_t>(remote[i].iov_base)));
    if (got != static_cast<ssize_t>(remote[i].iov_len)) break;
    copied += remote[i].iov_len;
  }
  close(fd);
  return copied;
}

// The stack of a thread blocked at `line`, walked over a copy.
std::vector<uint64_t> walk_blocked(const SyscallLine& line, uintptr_t stack_hi,
                                   std::vector<char>* copy) {
  size_t size = kUnboundedCopy;
  if (stack_hi > line.sp) size = std::min<size_t>(stack_hi - line.sp, kMaxCopy);
  copy->resize(size);
  const size_t copied = copy_memory(line.sp, copy->data(), size);
  capture::MachineState state;
  state.pc = line.pc;
  state.sp = line.sp;
  state.fp = 0;  // not in /proc: rows that need it end the walk (most code has SP-based rows)
  uint64_t frames[capture::kCaptureFrames];
  const size_t depth = capture::walk_stack_copy(state, line.sp, copy->data(), copied & ~size_t{7},
                                                frames, capture::kCaptureFrames)
                           .depth;
  return {frames, frames + depth};
}

// cpprof's frames at the bottom of hooked threads are not the program's.
void drop_own_frames(std::vector<uint64_t>* stack) {
  std::erase_if(*stack, [](uint64_t address) {
    return capture::in_thread_start_trampoline(static_cast<uintptr_t>(address - 1));
  });
}

// What the thread table knows of `tid`.
struct Known {
  bool internal = false;
  uintptr_t stack_lo = 0;
  uintptr_t stack_hi = 0;
  const capture::ThreadSlot* slot = nullptr;
  uint64_t generation = 0;
};

Known lookup(int tid) {
  Known known;
  capture::ThreadSlot* slot = capture::thread_table().find(tid);
  if (slot != nullptr) {
    known.slot = slot;
    known.generation = slot->generation.load(std::memory_order_acquire);
    known.internal = slot->internal.load(std::memory_order_acquire);
    known.stack_lo = slot->stack_lo.load(std::memory_order_relaxed);
    known.stack_hi = slot->stack_hi.load(std::memory_order_acquire);
  }
  if (known.stack_hi == 0 && tid == getpid()) {
    known.stack_hi = reinterpret_cast<uintptr_t>(__libc_stack_end);
  }
  return known;
}

// A thread blocked at `line`: walk, then make sure it stayed where it was.
void capture_blocked(ThreadRecord* record, SyscallLine line, uintptr_t stack_hi,
                     std::vector<char>* copy) {
  record->syscall = line.number;
  for (int attempt = 0; attempt < 3; ++attempt) {
    record->stack = walk_blocked(line, stack_hi, copy);
    record->source = StackSource::kBlocked;
    const SyscallLine again = read_syscall(record->tid);
    if (again == line) return;
    if (!again.readable || again.running) {
      record->note = "it woke while being read: the stack may be inexact";
      return;
    }
    line = again;
    record->syscall = line.number;
  }
  record->note = "it kept moving while being read: the stack may be inexact";
}

void set_live_stack(ThreadRecord* record, const uint64_t* frames, size_t depth) {
  record->source = StackSource::kLive;
  record->syscall = -1;
  record->stack.assign(frames, frames + depth);
  if (!record->stack.empty()) record->stack[0] += 1;  // the exact PC, as a return address
}

// The threads that were running: sampled by perf events where permitted
// (nothing is sent to them); one that gave no sample because it blocked
// meanwhile is read as a blocked thread. Where perf events are not
// permitted, the CPU signal asks them (a thread that enters a blocking
// call in the microseconds between our look and the signal may then see
// EINTR: docs/threads.md).
void capture_running(ThreadDump* dump, const std::vector<capture::CaptureRequest>& running,
                     const std::vector<size_t>& record_of, int64_t timeout_ns,
                     std::vector<char>* copy) {
  std::vector<int> tids;
  for (const capture::CaptureRequest& request : running) tids.push_back(request.tid);
  std::vector<PerfStack> sampled;
  std::string perf_refusal;
  const bool perf = capture_running_stacks(tids, timeout_ns, &sampled, &perf_refusal);
  std::vector<capture::CaptureRequest> by_signal;
  std::vector<size_t> by_signal_record;
  const int signo = capture::cpu_signal();
  for (size_t i = 0; i < running.size(); ++i) {
    ThreadRecord& record = dump->threads[record_of[i]];
    if (perf && sampled[i].sampled) {
      set_live_stack(&record, sampled[i].frames.data(), sampled[i].frames.size());
      continue;
    }
    const SyscallLine line = read_syscall(record.tid);
    if (line.readable && !line.running) {
      capture_blocked(&record, line, running[i].stack_hi, copy);
    } else if (perf && sampled[i].opened) {
      record.note = "running, but not in user space while sampled (a long system call?)";
    } else if (blocks_signal(record.tid, signo)) {
      record.note = "running with the capture signal blocked: not interrupted";
    } else {
      by_signal.push_back(running[i]);
      by_signal_record.push_back(record_of[i]);
    }
  }
  if (by_signal.empty()) return;
  const char* refusal = nullptr;
  const bool asked =
      capture::capture_live_stacks(by_signal.data(), by_signal.size(), timeout_ns, &refusal);
  for (size_t i = 0; i < by_signal.size(); ++i) {
    ThreadRecord& record = dump->threads[by_signal_record[i]];
    if (!asked) {
      record.note = "running; not captured (" + perf_refusal + "; " + refusal + ")";
    } else if (!by_signal[i].answered) {
      record.note = "running; did not answer in time";
    } else {
      set_live_stack(&record, by_signal[i].frames, by_signal[i].depth);
    }
  }
}

}  // namespace

std::mutex& thread_dump_mutex() {
  static std::mutex* mu = new std::mutex;  // never destroyed: dumps may run at exit
  return *mu;
}

ThreadDump dump_threads(const DumpOptions& options) {
  std::lock_guard<std::mutex> lock(thread_dump_mutex());
  ThreadDump dump;
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  dump.time_nanos = now.tv_sec * 1000000000LL + now.tv_nsec;
  // Objects loaded since the last refresh need their rows for the walks
  // (ours, and the creation stacks pthread_create records from now on).
  refresh_process_unwind_tables();

  std::vector<capture::CaptureRequest> live;
  std::vector<size_t> live_record;  // index into dump.threads of each live request
  std::vector<char> copy;
  for (int tid : process_thread_ids()) {
    const Known known = lookup(tid);
    if (known.internal) {
      ++dump.internal;
      continue;
    }
    ThreadRecord record;
    record.tid = tid;
    if (!read_stat(tid, &record)) continue;  // exited
    if (known.slot != nullptr) {
      capture::ThreadCreation creation;
      if (capture::thread_creation(known.slot, known.generation, &creation)) {
        record.created_by.assign(creation.frames, creation.frames + creation.depth);
        record.creator_tid = creation.creator_tid;
      }
    }
    SyscallLine line = read_syscall(tid);
    if (!line.running) record.syscall = line.number;
    if (!options.stacks) {
      dump.threads.push_back(std::move(record));
      continue;
    }
    if (!line.readable) {
      record.note =
          "its stack could not be read (/proc/self/task/" + std::to_string(tid) + "/syscall)";
    } else if (line.running) {
      capture::CaptureRequest request;
      request.tid = tid;
      request.stack_lo = known.stack_lo;
      request.stack_hi = known.stack_hi;
      live.push_back(request);
      live_record.push_back(dump.threads.size());
    } else {
      capture_blocked(&record, line, known.stack_hi, &copy);
    }
    dump.threads.push_back(std::move(record));
  }
  if (!live.empty()) capture_running(&dump, live, live_record, options.live_timeout_ns, &copy);

  // A thread that answered after exiting, or that was gone by the time it was asked.
  std::erase_if(dump.threads, [](const ThreadRecord& record) {
    return record.source == StackSource::kNone && record.stack.empty() &&
           access(task_path(record.tid, "stat").c_str(), F_OK) != 0;
  });
  for (ThreadRecord& record : dump.threads) {
    drop_own_frames(&record.stack);
    drop_own_frames(&record.created_by);
  }
  return dump;
}

int64_t host_thread_count() {
  const std::vector<int> tids = process_thread_ids();
  if (tids.empty()) return -1;
  int64_t count = 0;
  for (int tid : tids) {
    const capture::ThreadSlot* slot = capture::thread_table().find(tid);
    if (slot == nullptr || !slot->internal.load(std::memory_order_relaxed)) ++count;
  }
  return count;
}

std::string thread_state_name(char state) {
  switch (state) {
    case 'R':
      return "running";
    case 'S':
      return "sleeping";
    case 'D':
      return "disk wait";
    case 'T':
      return "stopped";
    case 't':
      return "tracing stop";
    case 'Z':
      return "zombie";
    case 'X':
      return "dead";
    case 'I':
      return "idle";
    default:
      return std::string("state ") + state;
  }
}

std::string syscall_name(int64_t number) {
  static const std::pair<int64_t, const char*> kNames[] = {
      {SYS_read, "read"},
      {SYS_write, "write"},
      {SYS_readv, "readv"},
      {SYS_writev, "writev"},
      {SYS_pread64, "pread64"},
      {SYS_pwrite64, "pwrite64"},
      {SYS_open, "open"},
      {SYS_openat, "openat"},
      {SYS_close, "close"},
      {SYS_poll, "poll"},
      {SYS_ppoll, "ppoll"},
      {SYS_select, "select"},
      {SYS_pselect6, "pselect6"},
      {SYS_epoll_wait, "epoll_wait"},
      {SYS_epoll_pwait, "epoll_pwait"},
#ifdef SYS_epoll_pwait2
      {SYS_epoll_pwait2, "epoll_pwait2"},
#endif
      {SYS_nanosleep, "nanosleep"},
      {SYS_clock_nanosleep, "clock_nanosleep"},
      {SYS_futex, "futex"},
#ifdef SYS_futex_waitv
      {SYS_futex_waitv, "futex_waitv"},
#endif
      {SYS_accept, "accept"},
      {SYS_accept4, "accept4"},
      {SYS_connect, "connect"},
      {SYS_recvfrom, "recvfrom"},
      {SYS_recvmsg, "recvmsg"},
      {SYS_recvmmsg, "recvmmsg"},
      {SYS_sendto, "sendto"},
      {SYS_sendmsg, "sendmsg"},
      {SYS_wait4, "wait4"},
      {SYS_waitid, "waitid"},
      {SYS_pause, "pause"},
      {SYS_rt_sigsuspend, "rt_sigsuspend"},
      {SYS_rt_sigtimedwait, "rt_sigtimedwait"},
      {SYS_io_getevents, "io_getevents"},
#ifdef SYS_io_uring_enter
      {SYS_io_uring_enter, "io_uring_enter"},
#endif
      {SYS_msgrcv, "msgrcv"},
      {SYS_msgsnd, "msgsnd"},
      {SYS_semop, "semop"},
      {SYS_semtimedop, "semtimedop"},
      {SYS_mq_timedreceive, "mq_timedreceive"},
      {SYS_mq_timedsend, "mq_timedsend"},
      {SYS_flock, "flock"},
      {SYS_fcntl, "fcntl"},
      {SYS_fsync, "fsync"},
      {SYS_fdatasync, "fdatasync"},
      {SYS_ioctl, "ioctl"},
      {SYS_sched_yield, "sched_yield"},
      {SYS_restart_syscall, "restart_syscall"},
      {SYS_sendfile, "sendfile"},
      {SYS_splice, "splice"},
      {SYS_mmap, "mmap"},
      {SYS_munmap, "munmap"},
      {SYS_madvise, "madvise"},
      {SYS_exit, "exit"},
      {SYS_exit_group, "exit_group"},
  };
  for (const auto& [nr, name] : kNames) {
    if (nr == number) return name;
  }
  return "syscall " + std::to_string(number);
}

}  // namespace cpprof::sources
