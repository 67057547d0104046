#include "sources/cpu/cpu_profiler.h"

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <string>

#include "capture/cpu_signal.h"
#include "capture/signal_safe.h"
#include "capture/thread_hooks.h"
#include "capture/thread_table.h"
#include "profile/builder.h"
#include "sources/cpu/leaf_caller.h"
#include "sources/cpu/thread_timers.h"
#include "sources/threads/internal_thread.h"
#include "sources/threads/thread_scan.h"

namespace cpprof::sources {
namespace {

constexpr auto kDrainInterval = std::chrono::milliseconds(100);
constexpr int kScanEvery = 10;  // drains between /proc/self/task scans

// The period new threads are armed with; 0 while no window is open. Read by
// the thread-start hook, which cannot reach the profiler object.
std::atomic<int64_t> g_active_period_ns{0};
// Whether threads get perf events (else CPU-time timers); set before the
// period when sampling starts.
std::atomic<bool> g_use_perf{false};

void on_thread_start(capture::ThreadSlot* slot) {
  int64_t period = g_active_period_ns.load(std::memory_order_acquire);
  if (slot == nullptr || period == 0) return;
  arm_thread_timer(slot, capture::cpu_signal(), period, g_use_perf.load(std::memory_order_relaxed));
  // Sampling may have stopped while we armed; do not leave a timer behind.
  if (g_active_period_ns.load(std::memory_order_acquire) == 0) disarm_thread_timer(slot, false);
}

void on_thread_exit(capture::ThreadSlot* slot) { disarm_thread_timer(slot, /*final=*/true); }

// Set in a child forked while sampling state existed: the parent's windows,
// drain thread and lock are not the child's, so it must not sample.
std::atomic<bool> g_forked{false};

// Runs in the child right after fork(). Only the forking thread exists
// there, POSIX timers and perf events are not inherited (the child's
// threads have other tids), but the perf event descriptors are: close the
// child's copies, forget the timer ids (they are the parent's) and the
// other threads.
void after_fork_in_child() {
  g_forked.store(true, std::memory_order_relaxed);
  g_active_period_ns.store(0, std::memory_order_relaxed);
  capture::set_cpu_sampling_enabled(false);
  forget_thread_timers_after_fork();
  int self = capture::current_tid();
  for (capture::ThreadSlot& slot : capture::thread_table()) {
    int tid = slot.tid.load(std::memory_order_relaxed);
    if (tid != 0 && tid != self) capture::thread_table().release(&slot);
  }
}

int64_t realtime_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

std::string signal_name(int signo) {
  return signo == SIGPROF ? "SIGPROF" : "signal " + std::to_string(signo);
}

// Why the windows open when the program took `lost` end early; `next` is
// the signal the handler went to instead (0: none, `refusal` says why).
std::string takeover_error(int lost, int next, const char* refusal) {
  const std::string name = signal_name(lost);
  std::string why = "the program installed its own " + name +
                    " handler during the profile; cpprof stopped sampling on " + name +
                    " so that it keeps working";
  if (next > 0)
    return why + "; ask again: the next profile samples on signal " + std::to_string(next);
  return why + "; cpprof has no other signal to sample on (" + refusal + ")";
}

}  // namespace

class CpuProfiler::Window {
 public:
  Window(CpuProfiler* owner, uint64_t drops_at_open)
      : owner_(owner), opened_ns_(realtime_ns()), drops_at_open_(drops_at_open) {}
  ~Window() {
    std::lock_guard lock(owner_->mu_);
    owner_->close_locked(this);
  }
  Window(const Window&) = delete;
  Window& operator=(const Window&) = delete;

  CpuProfiler* owner_;
  const int64_t opened_ns_;
  const uint64_t drops_at_open_;
  Aggregate stacks_;
  bool closed_ = false;
  std::string error_;     // why sampling stopped before the window ended
  int64_t ended_ns_ = 0;  // when it stopped so; 0: at finish
};

size_t CpuProfiler::StackHash::operator()(const std::vector<uint64_t>& stack) const {
  uint64_t h = 1469598103934665603ull;
  for (uint64_t pc : stack) h = (h ^ pc) * 1099511628211ull;
  return static_cast<size_t>(h);
}

CpuProfiler::CpuProfiler(symbolize::Symbolizer& symbolizer, CpuOptions options)
    : symbolizer_(symbolizer),
      period_ns_(1000000000 / std::clamp(options.hz, 1, 10000)),
      mode_(options.mode),
      mode_in_use_(options.mode == CpuMode::kPerf    ? "perf"
                   : options.mode == CpuMode::kTimer ? "timer"
                                                     : "auto"),
      leaf_caller_(std::make_unique<LeafCaller>(symbolizer)) {
  ring_cells_ = options.ring_cells;
}

CpuProfiler::~CpuProfiler() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (Window* window : windows_) window->closed_ = true;
    windows_.clear();
    stop_sampling_locked();
  }
  wake_.notify_all();
  if (drain_thread_.joinable()) drain_thread_.join();
}

std::shared_ptr<CpuProfiler::Window> CpuProfiler::open_window(std::string* error) {
  if (g_forked.load(std::memory_order_relaxed)) {
    *error = "this process was forked from a profiled one; its CPU sampler stays off";
    return nullptr;
  }
  std::lock_guard lock(mu_);
  check_signal_locked();  // the next window must not join a sampler that lost its signal
  if (windows_.empty() && !start_sampling_locked(error)) return nullptr;
  drain_locked();  // samples taken before this window belong to older ones
  auto window = std::make_shared<Window>(this, ring_.dropped());
  windows_.push_back(window.get());
  return window;
}

bool CpuProfiler::choose_trigger_locked(std::string* error) {
  bool perf = false;
  std::string why;
  if (mode_ != CpuMode::kTimer) {
    PerfFdRange range = current_perf_fd_range();
    if (range.size() > 0) {
      set_perf_fd_range(range);
      perf = perf_events_usable(&why);
    } else {
      rlimit limit{};
      getrlimit(RLIMIT_NOFILE, &limit);
      why = "the RLIMIT_NOFILE soft limit (" + std::to_string(limit.rlim_cur) +
            ") leaves no room for perf event descriptors (they go at 256 and above)";
    }
  }
  if (mode_ == CpuMode::kPerf && !perf) {
    *error = "CPU mode \"perf\" was asked for, but " + why;
    return false;
  }
  g_use_perf.store(perf, std::memory_order_relaxed);
  std::string in_use = !perf                          ? "timer"
                       : perf_events_exclude_kernel() ? "perf (user time only)"
                                                      : "perf";
  if (mode_ == CpuMode::kAuto) in_use = "auto: " + in_use + (perf ? "" : " (" + why + ")");
  mode_in_use_ = in_use;
  return true;
}

void CpuProfiler::arm_every_thread() {
  // Registers threads found in /proc/self/task (not armable while exiting),
  // then arms every registered thread that has no trigger yet.
  scan_threads([](capture::ThreadSlot* slot) { disarm_thread_timer(slot, true); });
  for (capture::ThreadSlot& slot : capture::thread_table()) {
    if (slot.tid.load(std::memory_order_acquire) != 0) {
      arm_thread_timer(&slot, signo_, period_ns_, g_use_perf.load(std::memory_order_relaxed));
    }
  }
}

bool CpuProfiler::start_sampling_locked(std::string* error) {
  if (!choose_trigger_locked(error)) return false;
  if (!ring_.reserved() && !ring_.reserve(ring_cells_)) {
    *error = "cannot reserve memory for CPU samples";
    return false;
  }
  const char* refusal = nullptr;
  int signo = capture::install_cpu_signal_handler(&ring_, &refusal);
  if (signo == 0) {
    *error = refusal;
    return false;
  }
  signo_ = signo;
  if (signo != capture::kCpuSignal) {  // mode_in_use_ was set afresh by choose_trigger_locked
    mode_in_use_ += ", on signal " + std::to_string(signo) + " (the program handles SIGPROF)";
  }
  // Rows before timers: the first samples already unwind through libc.
  refresh_process_unwind_tables();
  capture::set_thread_hooks({on_thread_start, on_thread_exit});
  static std::once_flag at_fork;
  std::call_once(at_fork, [] { pthread_atfork(nullptr, nullptr, after_fork_in_child); });
  capture::set_cpu_sampling_enabled(true);
  g_active_period_ns.store(period_ns_, std::memory_order_release);
  arm_every_thread();
  if (!drain_thread_.joinable()) {
    drain_thread_ = spawn_internal_thread("cpprof-cpu", [this] { drain_loop(); });
  }
  wake_.notify_all();
  return true;
}

void CpuProfiler::disarm_every_thread() {
  g_active_period_ns.store(0, std::memory_order_release);  // first: starting threads arm none
  for (capture::ThreadSlot& slot : capture::thread_table()) {
    if (slot.tid.load(std::memory_order_acquire) != 0) disarm_thread_timer(&slot, false);
  }
}

void CpuProfiler::stop_sampling_locked() {
  disarm_every_thread();
  capture::set_cpu_sampling_enabled(false);
  while (true) {  // discard what no window wants any more
    capture::RawSample raw;
    if (!ring_.pop(&raw)) break;
  }
}

void CpuProfiler::check_signal_locked() {
  if (!windows_.empty() && capture::cpu_signal_taken(signo_)) give_up_signal_locked();
}

void CpuProfiler::give_up_signal_locked() {
  disarm_every_thread();  // at once: the program's handler gets only its own ticks from now
  drain_locked();         // the samples from before stay in the windows
  stop_sampling_locked();
  const char* refusal = "";
  const int next = capture::ensure_cpu_signal_handler(&refusal);
  const std::string error = takeover_error(signo_, next, refusal);
  const int64_t now = realtime_ns();
  for (Window* window : windows_) {
    window->closed_ = true;
    window->error_ = error;
    window->ended_ns_ = now;
  }
  windows_.clear();
  mode_in_use_ += "; gave " + signal_name(signo_) + " up to the program's own handler";
  if (next > 0) mode_in_use_ += ", the next profile samples on signal " + std::to_string(next);
}

void CpuProfiler::close_locked(Window* window) {
  if (window->closed_) return;
  window->closed_ = true;
  windows_.erase(std::remove(windows_.begin(), windows_.end(), window), windows_.end());
  if (windows_.empty() && !stopping_) stop_sampling_locked();
}

void CpuProfiler::add_sample_locked(const capture::RawSample& raw) {
  if (raw.depth == 0) return;
  std::vector<uint64_t> stack;
  stack.reserve(raw.depth + 1);
  stack.push_back(raw.frames[0]);  // the interrupted PC, as is
  uint64_t chain_first = raw.depth > 1 ? raw.frames[1] : 0;
  if (!raw.leaf_unwound) {  // no unwind row at the leaf: guess its caller from the stack top
    if (uint64_t caller = leaf_caller_->find(raw.frames[0], chain_first, raw.stack_top)) {
      stack.push_back(caller - 1);
    }
  }
  for (uint32_t i = 1; i < raw.depth; ++i) {
    // cpprof's own pthread_create trampoline is no frame of the program's.
    if (!capture::in_thread_start_trampoline(raw.frames[i] - 1)) stack.push_back(raw.frames[i] - 1);
  }
  for (Window* window : windows_) {
    Counts& counts = window->stacks_[stack];
    counts.samples += 1;
    counts.periods += static_cast<int64_t>(raw.weight);
  }
}

void CpuProfiler::drain_locked() {
  capture::RawSample raw;
  while (ring_.pop(&raw)) {
    if (!windows_.empty()) add_sample_locked(raw);
  }
}

void CpuProfiler::drain_loop() {
  std::unique_lock lock(mu_);
  int drains = 0;
  while (!stopping_) {
    if (windows_.empty()) {
      wake_.wait(lock, [this] { return stopping_ || !windows_.empty(); });
      continue;
    }
    wake_.wait_for(lock, kDrainInterval);
    check_signal_locked();
    if (stopping_ || windows_.empty()) continue;
    drain_locked();
    refresh_process_unwind_tables();  // objects dlopen()ed since: cheap when none
    if (++drains % kScanEvery == 0) {
      // Threads started without our hooks (raw clone, or before we loaded).
      arm_every_thread();
    }
  }
}

profile::Profile CpuProfiler::finish(const std::shared_ptr<Window>& window, std::string* error) {
  Aggregate stacks;
  int64_t lost = 0;
  int64_t ended_ns = 0;
  {
    std::lock_guard lock(mu_);
    if (!window->closed_) check_signal_locked();
    if (!window->closed_) drain_locked();
    stacks.swap(window->stacks_);
    lost = static_cast<int64_t>(ring_.dropped() - window->drops_at_open_);
    if (error != nullptr) *error = window->error_;
    ended_ns = window->ended_ns_;
    close_locked(window.get());
  }
  profile::ProfileBuilder builder(symbolizer_, {{"samples", "count"}, {"cpu", "nanoseconds"}},
                                  {"cpu", "nanoseconds"}, period_ns_);
  for (const auto& [stack, counts] : stacks) {
    int64_t values[2] = {counts.samples, counts.periods * period_ns_};
    builder.add_sample(stack, values);
  }
  if (lost > 0) {
    int64_t values[2] = {lost, lost * period_ns_};
    builder.add_synthetic_sample("(lost samples)", values);
  }
  if (ended_ns == 0) ended_ns = realtime_ns();
  builder.set_time(window->opened_ns_, ended_ns - window->opened_ns_);
  return builder.build();
}

CpuStats CpuProfiler::stats() {
  std::lock_guard lock(mu_);
  CpuStats s;
  s.samples = ring_.pushed();
  s.dropped = ring_.dropped();
  s.windows_open = static_cast<int64_t>(windows_.size());
  s.timers_armed = armed_thread_timers();
  s.perf_fds_open = open_perf_events();
  s.mode = mode_in_use_;
  s.ring_bytes = ring_.bytes();
  return s;
}

}  // namespace cpprof::sources
