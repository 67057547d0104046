// The CPU profile end to end: a process burning CPU in known proportions,
// profiled linked, preloaded and under `cpprof run`, read back by
// `go tool pprof -symbolize=none` and compared with what the process did.
#include <gtest/gtest.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <tuple>

#include "burner_target.h"
#include "support/http_client.h"
#include "support/pprof_tool.h"

namespace cpprof::test {
namespace {

using namespace std::chrono_literals;

// Long enough for ~4000 signals from two busy threads (CPU-time timers
// deliver at most 250 per second per thread), so that a 60% share has a
// standard error under 0.8 percentage points: the tolerance of 3 is then
// about four standard errors, and the test fails for real errors only.
int window_seconds(int hz) { return hz >= 250 ? 8 : 20; }

struct Measured {
  RawProfile raw;
  double process_cpu_ns = 0;  // CPU the process used during the profile's window
};

// Requests a CPU profile of `seconds` and measures the process's CPU time
// around it, scaled to the profile's own duration (the request also spans
// connection set-up and symbolization, during which the burner keeps burning).
::testing::AssertionResult profile_and_measure(Target& target, int seconds, Measured* out) {
  auto wall0 = std::chrono::steady_clock::now();
  auto cpu0 = target.process->cpu_time();
  HttpResponse response =
      http_get(target.port, "/debug/pprof/profile?seconds=" + std::to_string(seconds));
  auto cpu1 = target.process->cpu_time();
  auto wall1 = std::chrono::steady_clock::now();
  if (response.status != 200) {
    return ::testing::AssertionFailure()
           << "status " << response.status << " " << response.error << " " << response.body;
  }
  ::testing::AssertionResult read = read_raw(response.body, &out->raw);
  if (!read) return read;
  double wall = std::chrono::duration<double, std::nano>(wall1 - wall0).count();
  double cpu = std::chrono::duration<double, std::nano>(cpu1 - cpu0).count();
  out->process_cpu_ns = cpu * static_cast<double>(out->raw.duration_nanos) / wall;
  return ::testing::AssertionSuccess();
}

int64_t total(const RawProfile& raw, int index) {
  int64_t sum = 0;
  for (const RawSample& s : raw.samples) sum += s.values[index];
  return sum;
}

// Value of the samples whose stack contains `function` (pprof's "cum").
int64_t cumulative(const RawProfile& raw, int index, const std::string& function) {
  int64_t sum = 0;
  for (const RawSample& s : raw.samples) {
    for (const std::string& name : raw.stack(s)) {
      if (name.find(function) != std::string::npos) {
        sum += s.values[index];
        break;
      }
    }
  }
  return sum;
}

// The stacks outside the three burn functions, for failure messages.
std::string elsewhere(const RawProfile& raw, int index) {
  std::string out;
  for (const RawSample& s : raw.samples) {
    std::string joined;
    for (const std::string& name : raw.stack(s)) joined += name + " < ";
    if (joined.find("burn_") != std::string::npos) continue;
    out += "[" + std::to_string(s.values[index] / 1000000) + " ms] " + joined + "\n";
  }
  return out;
}

void expect_well_formed(const RawProfile& raw, int seconds) {
  ASSERT_EQ(raw.sample_types.size(), 2u);
  EXPECT_EQ(raw.sample_types[0].type, "samples");
  EXPECT_EQ(raw.sample_types[0].unit, "count");
  EXPECT_EQ(raw.sample_types[1].type, "cpu");
  EXPECT_EQ(raw.sample_types[1].unit, "nanoseconds");
  EXPECT_TRUE(raw.has_period_type);
  EXPECT_EQ(raw.period_type.type, "cpu");
  EXPECT_EQ(raw.period_type.unit, "nanoseconds");
  EXPECT_GT(raw.period, 0);
  EXPECT_GT(raw.time_nanos, 0);
  EXPECT_GE(raw.duration_nanos, (seconds - 0.1) * 1e9);
  ASSERT_FALSE(raw.mappings.empty());
  EXPECT_NE(raw.mappings[0].filename.find("cpu_burner"), std::string::npos)
      << "the main binary must be the first mapping";
  EXPECT_FALSE(raw.mappings[0].build_id.empty());
  ASSERT_FALSE(raw.samples.empty());
  for (const RawSample& s : raw.samples) {
    std::vector<std::string> stack = raw.stack(s);
    ASSERT_FALSE(stack.empty());
    for (const std::string& name : stack) EXPECT_FALSE(name.empty());
  }
}

class CpuProfileAccuracy : public ::testing::TestWithParam<std::tuple<Launch, int>> {};

TEST_P(CpuProfileAccuracy, SplitAndTotalMatchWhatTheProcessDid) {
  auto [how, hz] = GetParam();
#ifdef CPPROF_SANITIZE
  if (how != Launch::kLinked) GTEST_SKIP() << "preloading needs the release build (DESIGN.md)";
#endif
  std::string error;
  Target target = start_burner(how, /*threads=*/2, hz, &error);
  ASSERT_NE(target.port, 0) << error;
  if (how == Launch::kCpprofRun) {
    EXPECT_EQ(target.served_pid, target.process->pid()) << "cpprof run must keep the pid";
  }
  Measured m;
  ASSERT_TRUE(profile_and_measure(target, window_seconds(hz), &m));
  ASSERT_NO_FATAL_FAILURE(expect_well_formed(m.raw, window_seconds(hz)));
  EXPECT_EQ(m.raw.period, 1000000000 / hz);

  const int cpu = 1;
  double all = static_cast<double>(total(m.raw, cpu));
  ASSERT_GT(all, 0);
  double sixty = 100.0 * static_cast<double>(cumulative(m.raw, cpu, "burn_sixty")) / all;
  double thirty = 100.0 * static_cast<double>(cumulative(m.raw, cpu, "burn_thirty")) / all;
  double ten = 100.0 * static_cast<double>(cumulative(m.raw, cpu, "burn_ten")) / all;
  std::string shares = "shares: " + std::to_string(sixty) + " / " + std::to_string(thirty) + " / " +
                       std::to_string(ten) + "; elsewhere: " + elsewhere(m.raw, cpu);
  EXPECT_NEAR(sixty, 60.0, 3.0) << shares;
  EXPECT_NEAR(thirty, 30.0, 3.0) << shares;
  EXPECT_NEAR(ten, 10.0, 3.0) << shares;
  // The workers run on two threads: both must be in the profile's stacks.
  EXPECT_GT(cumulative(m.raw, cpu, "worker"), 0.9 * all);

  EXPECT_NEAR(all, m.process_cpu_ns, 0.05 * m.process_cpu_ns)
      << "profile total " << all / 1e9 << " s, process used " << m.process_cpu_ns / 1e9 << " s";
  target.process->close_stdin();
  std::optional<int> status = target.process->wait(30s);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
}

INSTANTIATE_TEST_SUITE_P(AllLaunches, CpuProfileAccuracy,
                         ::testing::Combine(::testing::Values(Launch::kLinked, Launch::kPreload,
                                                              Launch::kCpprofRun),
                                            ::testing::Values(100, 1000)),
                         [](const auto& param_info) {
                           std::string name = launch_name(std::get<0>(param_info.param));
                           for (char& c : name)
                             c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return name + "_" + std::to_string(std::get<1>(param_info.param)) + "Hz";
                         });

// CPPROF_CPU_MODE forced each way, whatever `auto` would pick on the
// machine, so that both triggers are exercised. perf events signal every
// period: at 1000 Hz, at least 900 samples per CPU-second of each busy
// thread. CPU-time timers signal at most once per kernel tick but weight
// each signal by its overruns. Both must get the total right.
class CpuProfileForcedMode : public ::testing::TestWithParam<std::tuple<Launch, std::string>> {};

// Whether this machine lets an unprivileged-looking process open a
// cpu-clock event at all (kernel.perf_event_paranoid=3, seccomp...).
bool machine_allows_perf_events() {
  perf_event_attr attr{};
  attr.size = sizeof(attr);
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_CPU_CLOCK;
  attr.sample_period = 1000000;
  attr.disabled = 1;
  attr.exclude_kernel = 1;
  long fd = syscall(SYS_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
  if (fd < 0) return false;
  close(static_cast<int>(fd));
  return true;
}

TEST_P(CpuProfileForcedMode, RateAndTotalMatchWhatTheProcessDid) {
  auto [how, mode] = GetParam();
#ifdef CPPROF_SANITIZE
  if (how != Launch::kLinked) GTEST_SKIP() << "preloading needs the release build (DESIGN.md)";
#endif
  if (mode == "perf" && !machine_allows_perf_events()) {
    GTEST_SKIP() << "this machine refuses perf_event_open";
  }
  const int hz = 1000;
  std::string error;
  Target target = start_burner(how, /*threads=*/2, hz, &error, {}, {{"CPPROF_CPU_MODE", mode}});
  ASSERT_NE(target.port, 0) << error;
  Measured m;
  ASSERT_TRUE(profile_and_measure(target, window_seconds(hz), &m));
  ASSERT_NO_FATAL_FAILURE(expect_well_formed(m.raw, window_seconds(hz)));

  double all = static_cast<double>(total(m.raw, 1));
  EXPECT_NEAR(all, m.process_cpu_ns, 0.05 * m.process_cpu_ns)
      << "profile total " << all / 1e9 << " s, process used " << m.process_cpu_ns / 1e9 << " s";
  double sixty = 100.0 * static_cast<double>(cumulative(m.raw, 1, "burn_sixty")) / all;
  EXPECT_NEAR(sixty, 60.0, 3.0) << "elsewhere: " << elsewhere(m.raw, 1);
  // Samples in the workers per CPU-second of the whole process: a lower
  // bound of the rate per busy thread (cpprof's own threads add CPU, no samples).
  double per_cpu_second =
      static_cast<double>(cumulative(m.raw, 0, "worker")) / (m.process_cpu_ns / 1e9);
  RecordProperty("samples_per_cpu_second", std::to_string(per_cpu_second));
  std::printf("%s, %s: %.0f samples per CPU-second, profile %.3f s, process %.3f s\n", mode.c_str(),
              launch_name(how), per_cpu_second, all / 1e9, m.process_cpu_ns / 1e9);
  if (mode == "perf") {
    EXPECT_GE(per_cpu_second, 900);
  }

  HttpResponse index = http_get(target.port, "/debug/pprof/", {}, 10s);
  EXPECT_NE(index.body.find("CPU sampling mode:</td><td>" + mode), std::string::npos)
      << "the index page must say which trigger is in use";
  target.process->close_stdin();
  std::optional<int> status = target.process->wait(30s);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
}

INSTANTIATE_TEST_SUITE_P(BothModes, CpuProfileForcedMode,
                         ::testing::Combine(::testing::Values(Launch::kLinked, Launch::kPreload),
                                            ::testing::Values("perf", "timer")),
                         [](const auto& param_info) {
                           std::string name = launch_name(std::get<0>(param_info.param));
                           for (char& c : name)
                             c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return name + "_" + std::get<1>(param_info.param);
                         });

// Where perf_event_open is refused (a seccomp filter in the burner stands in
// for kernel.perf_event_paranoid=3 or a container's profile).
TEST(CpuProfile, ForcedPerfModeWherePerfEventsAreRefusedAnswers503WithTheReasonAndLogsOnce) {
#ifdef CPPROF_SANITIZE
  GTEST_SKIP() << "preloading needs the release build (DESIGN.md)";
#endif
  std::string error;
  Target target = start_burner(Launch::kPreload, 1, 1000, &error, {"--deny-perf"},
                               {{"CPPROF_CPU_MODE", "perf"}});
  ASSERT_NE(target.port, 0) << error;
  for (int i = 0; i < 2; ++i) {
    HttpResponse r = http_get(target.port, "/debug/pprof/profile?seconds=1", {}, 10s);
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_EQ(r.header("x-go-pprof"), "1");
    EXPECT_NE(r.body.find("perf_event_open"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("Permission denied"), std::string::npos) << r.body;
  }
  EXPECT_EQ(http_get(target.port, "/debug/pprof/cmdline").status, 200) << "the host lives on";
  std::ifstream log(target.log_path);
  int lines = 0;
  for (std::string line; std::getline(log, line);) {
    lines += line.find("perf_event_open") != std::string::npos;
  }
  EXPECT_EQ(lines, 1) << "one log line, not one per request";
}

TEST(CpuProfile, AutoModeWherePerfEventsAreRefusedUsesTimersAndKeepsTheTotal) {
  std::string error;
  Target target = start_burner(Launch::kLinked, 2, 1000, &error, {"--deny-perf"},
                               {{"CPPROF_CPU_MODE", "auto"}});
  ASSERT_NE(target.port, 0) << error;
  Measured m;
  ASSERT_TRUE(profile_and_measure(target, 3, &m));
  double all = static_cast<double>(total(m.raw, 1));
  EXPECT_NEAR(all, m.process_cpu_ns, 0.05 * m.process_cpu_ns);
  HttpResponse index = http_get(target.port, "/debug/pprof/", {}, 10s);
  EXPECT_NE(index.body.find("CPU sampling mode:</td><td>auto: timer"), std::string::npos)
      << index.body;
}

TEST(CpuProfile, ConcurrentWindowsAreEachServedWhileTheIndexAnswers) {
  std::string error;
  Target target = start_burner(Launch::kLinked, 2, 100, &error);
  ASSERT_NE(target.port, 0) << error;
  HttpResponse first;
  HttpResponse second;
  std::thread a([&] { first = http_get(target.port, "/debug/pprof/profile?seconds=2"); });
  std::thread b([&] { second = http_get(target.port, "/debug/pprof/profile?seconds=2"); });
  std::this_thread::sleep_for(500ms);  // both windows are open now
  HttpResponse index = http_get(target.port, "/debug/pprof/", {}, 5s);
  HttpResponse cmdline = http_get(target.port, "/debug/pprof/cmdline", {}, 5s);
  a.join();
  b.join();
  EXPECT_EQ(index.status, 200);
  EXPECT_NE(index.body.find("profile"), std::string::npos);
  EXPECT_EQ(cmdline.status, 200);
  EXPECT_NE(cmdline.body.find("cpu_burner_linked"), std::string::npos);
  for (HttpResponse* r : {&first, &second}) {
    ASSERT_EQ(r->status, 200) << r->error << r->body;
    EXPECT_EQ(r->header("content-type"), "application/octet-stream");
    RawProfile raw;
    ASSERT_TRUE(read_raw(r->body, &raw));
    EXPECT_GT(total(raw, 1), 1e9) << "a 2 s window of 2 busy threads holds > 1 s of CPU";
    EXPECT_GT(cumulative(raw, 1, "burn_sixty"), 0);
  }
}

TEST(CpuProfile, ThreadsStartedWithEverySignalBlockedAreStillSampled) {
#ifdef CPPROF_SANITIZE
  GTEST_SKIP() << "preloading needs the release build (DESIGN.md)";
#endif
  // As liblzma (xz -T2) starts its workers: all signals blocked.
  std::string error;
  Target target = start_burner(Launch::kCpprofRun, 2, 100, &error, {"--block-signals"});
  ASSERT_NE(target.port, 0) << error;
  Measured m;
  ASSERT_TRUE(profile_and_measure(target, 3, &m));
  double all = static_cast<double>(total(m.raw, 1));
  EXPECT_GT(cumulative(m.raw, 1, "burn_sixty"), 0.4 * all);
  EXPECT_NEAR(all, m.process_cpu_ns, 0.05 * m.process_cpu_ns);
}

TEST(CpuProfile, BadParametersAreRefusedAndTheProcessKeepsRunning) {
  std::string error;
  Target target = start_burner(Launch::kLinked, 1, 100, &error);
  ASSERT_NE(target.port, 0) << error;
  for (const char* target_path :
       {"/debug/pprof/profile?seconds=abc", "/debug/pprof/profile?seconds=0",
        "/debug/pprof/profile?seconds=-1", "/debug/pprof/profile?seconds=3601",
        "/debug/pprof/profile?seconds=1&debug=1"}) {
    HttpResponse r = http_get(target.port, target_path, {}, 10s);
    EXPECT_EQ(r.status, 400) << target_path;
    EXPECT_EQ(r.header("x-go-pprof"), "1") << target_path;
  }
  EXPECT_EQ(http_get(target.port, "/debug/pprof/nosuchprofile").status, 404);
  HttpResponse ok = http_get(target.port, "/debug/pprof/profile?seconds=1&gc=1&unknown=x");
  EXPECT_EQ(ok.status, 200);
  RawProfile raw;
  EXPECT_TRUE(read_raw(ok.body, &raw));
}

}  // namespace
}  // namespace cpprof::test
