#include "sources/cpu/perf_events.h"

#include <fcntl.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>

#include "capture/signal_safe.h"

namespace cpprof::sources {
namespace {

constexpr int64_t kFloor = 256;      // lowest descriptor an event may take
constexpr int64_t kTopMargin = 16;   // descriptors left free under the soft limit
constexpr int64_t kCeiling = 16384;  // keeps the kernel's fd table small
constexpr int64_t kMaxEvents = 256;  // and at most a quarter of the soft limit

// Set once a kernel has refused an event that counts kernel time (below).
std::atomic<bool> g_exclude_kernel{false};

int perf_event_open(perf_event_attr* attr, int tid) {
  return static_cast<int>(syscall(SYS_perf_event_open, attr, tid, -1, -1, PERF_FLAG_FD_CLOEXEC));
}

// Opens a disabled event on `tid`; returns the fd or -errno.
int open_disabled(int tid, int64_t period_ns) {
  perf_event_attr attr{};
  attr.size = sizeof(attr);
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_CPU_CLOCK;
  attr.sample_period = static_cast<uint64_t>(period_ns);
  attr.disabled = 1;
  attr.exclude_hv = 1;
  attr.exclude_kernel = g_exclude_kernel.load(std::memory_order_relaxed) ? 1 : 0;
  int fd = perf_event_open(&attr, tid);
  if (fd < 0 && (errno == EACCES || errno == EPERM) && attr.exclude_kernel == 0) {
    // Without CAP_PERFMON, kernel.perf_event_paranoid=2 (the default) only
    // allows events that exclude the kernel. What that loses: the hrtimer
    // overflows that land while the thread runs in the kernel (system
    // calls, page faults) are dropped instead of signalled, so system time
    // goes unsampled and the profile's total falls short by it. Counting
    // kernel time, the signal arrives on the return to user space and is
    // charged to the frame that made the system call, as timers do.
    attr.exclude_kernel = 1;
    fd = perf_event_open(&attr, tid);
    if (fd >= 0) g_exclude_kernel.store(true, std::memory_order_relaxed);
  }
  return fd >= 0 ? fd : -errno;
}

std::string paranoid_level() {
  std::ifstream in("/proc/sys/kernel/perf_event_paranoid");
  std::string level;
  if (!(in >> level)) return "unknown";
  return level;
}

}  // namespace

PerfFdRange perf_fd_range(uint64_t soft_limit) {
  int64_t soft = static_cast<int64_t>(std::min<uint64_t>(soft_limit, INT_MAX));
  int64_t top = std::min(soft - kTopMargin, kCeiling);
  int64_t size = std::min(kMaxEvents, soft / 4);
  int64_t base = std::max(top - size, kFloor);
  if (base >= top) return {};
  return {static_cast<int>(base), static_cast<int>(top)};
}

PerfFdRange current_perf_fd_range() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return {};
  return perf_fd_range(limit.rlim_cur == RLIM_INFINITY ? UINT64_MAX : limit.rlim_cur);
}

bool perf_events_usable(std::string* why) {
  int fd = open_disabled(capture::current_tid(), 10000000);
  if (fd >= 0) {
    close(fd);
    return true;
  }
  *why = std::string("perf_event_open(cpu-clock) was refused: ") + std::strerror(-fd) +
         " (kernel.perf_event_paranoid is " + paranoid_level() + ")";
  return false;
}

int open_perf_event(int tid, int signo, int64_t period_ns, PerfFdRange range) {
  capture::ErrnoGuard errno_guard;
  if (range.size() <= 0) return -EMFILE;
  int low = open_disabled(tid, period_ns);
  if (low < 0) return low;
  // Moved at once, so the host's next open() gets the number it would have got.
  int fd = fcntl(low, F_DUPFD_CLOEXEC, range.base);
  int dup_error = errno;
  close(low);
  if (fd < 0) return -dup_error;  // EINVAL: the soft limit fell under base
  if (fd >= range.limit) {
    close(fd);  // the range is full (perhaps of the host's own descriptors)
    return -EMFILE;
  }
  f_owner_ex owner{F_OWNER_TID, tid};
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_ASYNC) != 0 || fcntl(fd, F_SETSIG, signo) != 0 ||
      fcntl(fd, F_SETOWN_EX, &owner) != 0 || ioctl(fd, PERF_EVENT_IOC_ENABLE, 0) != 0) {
    int error = errno;
    close(fd);
    return -error;
  }
  return fd;
}

void close_perf_event(int fd) {
  capture::ErrnoGuard errno_guard;
  ioctl(fd, PERF_EVENT_IOC_DISABLE, 0);
  close(fd);
}

bool perf_events_exclude_kernel() { return g_exclude_kernel.load(std::memory_order_relaxed); }

}  // namespace cpprof::sources
