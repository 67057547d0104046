#include "sources/threads/perf_stack_capture.h"

#include <asm/perf_regs.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "capture/thread_capture.h"
#include "capture/unwind.h"
#include "sources/cpu/perf_events.h"

namespace cpprof::sources {
namespace {

constexpr uint64_t kStackBytes = 32768;  // user stack copied per sample
constexpr size_t kDataPages = 16;        // 64 KiB ring: one sample fits whole
constexpr size_t kPage = 4096;
constexpr size_t kBatch = 6;  // events open at once: 6 rings of 68 KiB
constexpr uint64_t kRegs =
    (1ull << PERF_REG_X86_BP) | (1ull << PERF_REG_X86_SP) | (1ull << PERF_REG_X86_IP);

int64_t now_ns() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return now.tv_sec * 1000000000LL + now.tv_nsec;
}

struct Event {
  int fd = -1;
  void* ring = MAP_FAILED;
};

// Opens the sampling event on `tid`; fd -errno on failure.
Event open_event(int tid, PerfFdRange range) {
  Event event;
  perf_event_attr attr{};
  attr.size = sizeof attr;
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_CPU_CLOCK;
  attr.sample_period = 100000;  // 100 us of the thread's CPU time
  attr.sample_type =
      PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_REGS_USER | PERF_SAMPLE_STACK_USER;
  attr.sample_regs_user = kRegs;
  attr.sample_stack_user = kStackBytes;
  attr.exclude_kernel = 1;
  attr.exclude_hv = 1;
  attr.wakeup_events = 1;
  const int low = static_cast<int>(syscall(SYS_perf_event_open, &attr, tid, -1, -1, 0));
  if (low < 0) {
    event.fd = -errno;
    return event;
  }
  // High in the table, as the CPU sampler's events (perf_events.h).
  event.fd = range.size() > 0 ? fcntl(low, F_DUPFD_CLOEXEC, range.base) : -1;
  if (event.fd < 0) {
    event.fd = low;
    fcntl(low, F_SETFD, FD_CLOEXEC);
  } else {
    close(low);
  }
  event.ring =
      mmap(nullptr, (1 + kDataPages) * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, event.fd, 0);
  if (event.ring == MAP_FAILED) {
    close(event.fd);
    event.fd = -ENOMEM;
  }
  return event;
}

void close_event(Event& event) {
  if (event.ring != MAP_FAILED) munmap(event.ring, (1 + kDataPages) * kPage);
  if (event.fd >= 0) close(event.fd);
  event = Event();
}

// Copies `size` bytes from ring offset `offset` (wrapping) into `into`.
void read_ring(const char* data, uint64_t offset, void* into, size_t size) {
  const size_t capacity = kDataPages * kPage;
  for (size_t i = 0; i < size; ++i) {
    static_cast<char*>(into)[i] = data[(offset + i) % capacity];
  }
}

// The first sample in the ring, walked; false if none has come yet.
bool take_sample(const Event& event, PerfStack* out, std::vector<char>* stack) {
  auto* meta = static_cast<perf_event_mmap_page*>(event.ring);
  const uint64_t head = __atomic_load_n(&meta->data_head, __ATOMIC_ACQUIRE);
  uint64_t tail = meta->data_tail;
  const char* data = static_cast<const char*>(event.ring) + kPage;
  while (tail + sizeof(perf_event_header) <= head) {
    perf_event_header header;
    read_ring(data, tail, &header, sizeof header);
    if (header.size == 0) return false;
    if (header.type == PERF_RECORD_SAMPLE) {
      uint64_t at = tail + sizeof header;
      uint64_t ip = 0, abi = 0, regs[3] = {}, size = 0;
      read_ring(data, at, &ip, 8);
      at += 8 + 8;  // ip, pid/tid
      read_ring(data, at, &abi, 8);
      at += 8;
      if (abi != PERF_SAMPLE_REGS_ABI_NONE) {
        read_ring(data, at, regs, sizeof regs);  // bp, sp, ip: in bit order
        at += sizeof regs;
      }
      read_ring(data, at, &size, 8);
      at += 8;
      uint64_t dyn_size = 0;
      if (size > 0) read_ring(data, at + size, &dyn_size, 8);
      if (abi == PERF_SAMPLE_REGS_ABI_NONE || dyn_size > size) return false;
      stack->resize(dyn_size);
      read_ring(data, at, stack->data(), dyn_size);
      capture::MachineState state;
      state.fp = regs[0];
      state.sp = regs[1];
      state.pc = regs[2];
      uint64_t frames[capture::kCaptureFrames];
      const size_t depth =
          capture::walk_stack_copy(state, state.sp, stack->data(), dyn_size & ~uint64_t{7}, frames,
                                   capture::kCaptureFrames)
              .depth;
      out->frames.assign(frames, frames + depth);
      out->sampled = true;
      return true;
    }
    tail += header.size;
  }
  return false;
}

// Whether `tid` is still there and runnable; a thread that exited or went
// to sleep will give no sample, so waiting for it is pointless.
bool may_still_run(int tid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[512];
  const ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  const char* paren = std::strrchr(buf, ')');
  return paren != nullptr && paren[1] == ' ' && paren[2] == 'R';
}

}  // namespace

bool capture_running_stacks(const std::vector<int>& tids, int64_t timeout_ns,
                            std::vector<PerfStack>* out, std::string* why) {
  out->assign(tids.size(), PerfStack());
  for (size_t i = 0; i < tids.size(); ++i) (*out)[i].tid = tids[i];
  const PerfFdRange range = current_perf_fd_range();
  const int64_t deadline = now_ns() + timeout_ns;
  std::vector<char> stack;
  bool any_opened = false;
  int first_error = 0;
  // A few events at a time: an unprivileged process may lock only
  // perf_event_mlock_kb (516 KiB by default) of rings.
  for (size_t first = 0; first < tids.size(); first += kBatch) {
    const size_t last = std::min(tids.size(), first + kBatch);
    Event events[kBatch];
    for (size_t i = first; i < last; ++i) {
      Event& event = events[i - first];
      event = open_event(tids[i], range);
      (*out)[i].opened = event.fd >= 0;
      if (event.fd >= 0) {
        any_opened = true;
      } else if (first_error == 0 && event.fd != -ESRCH) {
        first_error = -event.fd;
      }
    }
    for (int round = 1;; ++round) {
      size_t waiting = 0;
      for (size_t i = first; i < last; ++i) {
        Event& event = events[i - first];
        if (event.fd < 0) continue;
        if (take_sample(event, &(*out)[i], &stack)) {
          close_event(event);
        } else if (round % 10 == 0 && !may_still_run(tids[i])) {
          close_event(event);  // exited or blocked: the caller reads it from /proc
        } else {
          ++waiting;
        }
      }
      if (waiting == 0 || now_ns() >= deadline) break;
      timespec pause{0, 100000};
      nanosleep(&pause, nullptr);
    }
    for (Event& event : events) close_event(event);
  }
  if (!any_opened && first_error != 0) {
    *why = std::string("perf_event_open: ") + std::strerror(first_error);
    return false;
  }
  return true;
}

}  // namespace cpprof::sources
