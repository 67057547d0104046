#include "api/exit_profiles.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "api/log.h"
#include "api/runtime.h"
#include "capture/alloc_counters.h"
#include "profile/pprof_encoder.h"
#include "sources/heap/heap_profile.h"
#include "sources/heap/heap_snapshot.h"

namespace cpprof::api {
namespace {

// What the exit handler needs; never freed (the handler runs at exit).
struct ExitState {
  std::string dir;
  std::string log;
  Runtime* rt = nullptr;
  std::shared_ptr<sources::CpuProfiler::Window> window;
  pid_t pid = 0;
};
ExitState* g_state = nullptr;

// Writes `bytes` to DIR/NAME through a temporary file and a rename.
bool write_file(const std::string& dir, const std::string& name, const std::string& bytes,
                std::string* error) {
  const std::string path = dir + "/" + name;
  const std::string temporary = path + ".tmp";
  const int fd = open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    *error = temporary + ": " + std::strerror(errno);
    return false;
  }
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *error = temporary + ": " + std::strerror(errno);
      close(fd);
      unlink(temporary.c_str());
      return false;
    }
    written += static_cast<size_t>(n);
  }
  if (close(fd) != 0 || rename(temporary.c_str(), path.c_str()) != 0) {
    *error = path + ": " + std::strerror(errno);
    unlink(temporary.c_str());
    return false;
  }
  return true;
}

void write_exit_profiles() {
  ExitState* state = g_state;  // stays reachable: never freed, never a leak
  // Only the process that started the window: a forked child that exits
  // through exit() has no sampler of its own (and must not overwrite).
  if (state == nullptr || state->pid != getpid()) return;
  static std::atomic<bool> done{false};
  if (done.exchange(true)) return;
  capture::InternalAllocScope own;  // what writing allocates is cpprof's
  const std::string suffix = std::to_string(state->pid) + ".pb.gz";
  std::string written;
  std::string error;
  if (state->window) {
    std::string stopped;
    const profile::Profile cpu = state->rt->cpu->finish(state->window, &stopped);
    if (!stopped.empty())
      log_line(state->log, "CPPROF_OUT: the CPU profile stops early: " + stopped);
    if (write_file(state->dir, "cpu." + suffix, profile::encode_pprof_gz(cpu), &error)) {
      written += " cpu." + suffix;
    } else {
      log_line(state->log, "CPPROF_OUT: " + error);
    }
  }
  const sources::HeapSnapshot heap = sources::take_heap_snapshot();
  if (heap.rate > 0) {
    const profile::Profile profile =
        sources::build_heap_profile(heap, state->rt->symbolizer, sources::HeapProfileKind::kHeap);
    if (write_file(state->dir, "heap." + suffix, profile::encode_pprof_gz(profile), &error)) {
      written += " heap." + suffix;
    } else {
      log_line(state->log, "CPPROF_OUT: " + error);
    }
  }
  if (!written.empty()) log_line(state->log, "wrote" + written + " in " + state->dir);
}

}  // namespace

bool start_exit_profiles(const std::string& dir, const Options& options) {
  struct stat info {};
  if (stat(dir.c_str(), &info) != 0 || !S_ISDIR(info.st_mode) ||
      access(dir.c_str(), W_OK | X_OK) != 0) {
    log_line(options.log, "CPPROF_OUT=" + dir + ": not a writable directory; no profiles at exit");
    return false;
  }
  auto* state = new ExitState;  // never freed: the handler runs at exit
  state->dir = dir;
  state->log = options.log;
  state->rt = &runtime(options);
  state->pid = getpid();
  std::string error;
  state->window = state->rt->cpu->open_window(&error);
  if (!state->window) {
    log_line(options.log, "CPPROF_OUT: no CPU profile at exit: " + error);
  }
  g_state = state;
  std::atexit(write_exit_profiles);
  return state->window != nullptr;
}

}  // namespace cpprof::api
