// CpuProfiler: one sampler serving any number of concurrent windows.
//
// While at least one window is open, every thread of the host (not
// cpprof's own) has a perf cpu-clock event or a CPU-time timer
// (thread_timers.h, chosen by CpuMode) whose signal makes
// the handler (capture/cpu_signal.h) push a raw stack into one SampleRing.
// A drain thread empties the ring every 100 ms, turns raw stacks into
// profile stacks (return address - 1 for callers, the interrupted PC as is,
// the missing caller of frameless leaves put back) and adds each to every
// open window, so that each request sees exactly its own interval. When
// the last window closes the timers are deleted and nothing runs.
//
// Each sample is weighted by the CPU time it stands for, (1 + timer
// overruns) periods: CPU-time timers fire at most once per kernel tick, so
// at 1000 Hz on a 250 Hz kernel one signal stands for about four periods;
// a perf event signals every period (weight 1).
//
// The program may install its own handler for the signal cpprof samples on
// after sampling started (its own ITIMER_PROF profiler, say). The drain
// thread notices within one drain (and open_window and finish check too):
// it stops every timer and perf event at once, so that the program's handler
// sees only its own ticks, ends the open windows with an error that says
// so, and installs the handler for another free signal, which the next
// window samples on. cpprof never takes that signal back.
//
// Thread-safe: windows may be opened and finished from any threads.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "capture/sample_ring.h"
#include "profile/profile.h"
#include "sources/cpu/unwind_tables.h"
#include "symbolize/symbolizer.h"

namespace cpprof::sources {

class LeafCaller;

// What triggers samples. Decided each time sampling starts (the first
// window opens).
enum class CpuMode {
  kAuto,   // perf events if this process may open them, else timers
  kPerf,   // perf events; windows are refused (with the reason) if they cannot be opened
  kTimer,  // CPU-time timers only
};

struct CpuOptions {
  int hz = 100;              // samples per CPU-second per thread
  size_t ring_cells = 8192;  // raw samples buffered between drains
  CpuMode mode = CpuMode::kAuto;
};

// Counters for the index page.
struct CpuStats {
  uint64_t samples = 0;  // raw samples taken
  uint64_t dropped = 0;  // raw samples lost because the ring was full
  int64_t windows_open = 0;
  int64_t timers_armed = 0;
  int64_t perf_fds_open = 0;
  uint64_t ring_bytes = 0;
  // "perf" or "timer" (as last decided), with "auto: " in front if auto
  // chose it and why perf events were not used; "auto" before the first window.
  std::string mode;
};

class CpuProfiler {
 public:
  class Window;

  // `symbolizer` must outlive the profiler. Only one CpuProfiler may sample
  // at a time in a process (there is one signal handler).
  CpuProfiler(symbolize::Symbolizer& symbolizer, CpuOptions options);
  ~CpuProfiler();
  CpuProfiler(const CpuProfiler&) = delete;
  CpuProfiler& operator=(const CpuProfiler&) = delete;

  // Starts a window now. nullptr with `error` set if sampling cannot start.
  std::shared_ptr<Window> open_window(std::string* error);

  // Ends `window` and returns its profile. A window dropped without finish
  // simply closes. If sampling had to stop during the window (the program
  // took the signal), the profile holds the samples until then and `error`
  // (if given) the reason; otherwise `error` is set to "".
  profile::Profile finish(const std::shared_ptr<Window>& window, std::string* error = nullptr);

  int64_t period_ns() const { return period_ns_; }
  CpuStats stats();

  // The profiler's lock; held across fork() (api/fork_safety.cc).
  std::mutex& fork_mutex() { return mu_; }

 private:
  struct Counts {
    int64_t samples = 0;
    int64_t periods = 0;
  };
  struct StackHash {
    size_t operator()(const std::vector<uint64_t>& stack) const;
  };
  using Aggregate = std::unordered_map<std::vector<uint64_t>, Counts, StackHash>;

  bool choose_trigger_locked(std::string* error);
  bool start_sampling_locked(std::string* error);
  // Finds threads we have no hook for and arms every thread; under mu_.
  void arm_every_thread();
  void disarm_every_thread();
  void stop_sampling_locked();
  // If the program took the signal: gives it up and ends every window.
  void check_signal_locked();
  void give_up_signal_locked();
  void drain_locked();
  void close_locked(Window* window);
  void add_sample_locked(const capture::RawSample& raw);
  void drain_loop();

  symbolize::Symbolizer& symbolizer_;
  const int64_t period_ns_;
  const CpuMode mode_;
  std::string mode_in_use_;  // as CpuStats::mode says; under mu_
  int signo_ = 0;            // the signal threads are armed with; under mu_
  capture::SampleRing ring_;
  size_t ring_cells_ = 0;

  std::mutex mu_;
  std::condition_variable wake_;
  std::vector<Window*> windows_;  // open windows (owned by their shared_ptrs)
  bool stopping_ = false;
  std::thread drain_thread_;
  std::unique_ptr<LeafCaller> leaf_caller_;  // used by whoever drains, under mu_
};

}  // namespace cpprof::sources
