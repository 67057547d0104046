// The host's signals stay the host's: loading cpprof (preloaded, serving)
// changes no signal disposition, and a host that writes to a closed socket
// gets its own SIGPIPE behaviour, killed by default or EPIPE when it
// ignores the signal. A host with its own SIGPROF handler keeps it working
// through CPU profiles, whether it installs it before one or during one.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/child_process.h"
#include "support/http_client.h"
#include "support/pprof_tool.h"
#include "support/preload.h"

namespace cpprof::test {
namespace {

using namespace std::chrono_literals;

std::map<std::string, std::string> preload_env() {
  return {{"LD_PRELOAD", built_library()},
          {"CPPROF_HTTP", "127.0.0.1:0"},
          {"CPPROF_LOG", "/dev/stdout"}};
}

// "start"/"later" lines, keyed by signal number: "handler flags"; and the
// port cpprof's log line names, if any.
struct Dispositions {
  std::map<int, std::string> start;
  std::map<int, std::string> later;
  uint16_t port = 0;
};

Dispositions read_dispositions(ChildProcess& child, const std::function<void(uint16_t)>& between) {
  Dispositions d;
  while (auto line = child.read_line(30s)) {
    if (*line == "ready") break;
    if (line->rfind("cpprof: serving http://127.0.0.1:", 0) == 0) {
      d.port = static_cast<uint16_t>(std::stoi(line->substr(33)));
      continue;
    }
    const size_t a = line->find(' ');
    const size_t b = line->find(' ', a + 1);
    if (line->rfind("start", 0) == 0)
      d.start[std::stoi(line->substr(a + 1, b - a - 1))] = line->substr(b + 1);
  }
  between(d.port);
  child.close_stdin();
  while (auto line = child.read_line(30s)) {
    const size_t a = line->find(' ');
    const size_t b = line->find(' ', a + 1);
    if (line->rfind("later", 0) == 0)
      d.later[std::stoi(line->substr(a + 1, b - a - 1))] = line->substr(b + 1);
  }
  return d;
}

TEST(SignalDispositions, LoadingAndServingChangeNone) {
  SKIP_IF_PRELOAD_IMPOSSIBLE();
  ChildProcess plain({built_binary("signal_host"), "dispositions"});
  const Dispositions without = read_dispositions(plain, [](uint16_t) {});
  ASSERT_FALSE(without.start.empty());

  ChildProcess preloaded({built_binary("signal_host"), "dispositions"}, preload_env());
  const Dispositions with = read_dispositions(preloaded, [](uint16_t port) {
    // The server works meanwhile: its index, a thread dump, a heap profile.
    ASSERT_NE(port, 0);
    for (const char* path : {"/debug/pprof/", "/debug/pprof/goroutine?debug=2", "/debug/pprof/heap",
                             "/debug/pprof/threadcreate"}) {
      EXPECT_EQ(http_get(port, path).status, 200) << path;
    }
  });
  ASSERT_EQ(with.later.size(), with.start.size());
  ASSERT_EQ(without.later.size(), without.start.size());
  // The program installs no handler: SIG_DFL and SIG_IGN only, equal sets.
  EXPECT_EQ(with.start, without.start);
  EXPECT_EQ(with.later, without.later);
  EXPECT_EQ(with.later, with.start);
  plain.wait(10s);
  preloaded.wait(10s);
}

TEST(SignalDispositions, AWriteToAClosedSocketStillKillsAHostThatKeepsSigpipeDefault) {
  SKIP_IF_PRELOAD_IMPOSSIBLE();
  ChildProcess child({built_binary("signal_host"), "sigpipe"}, preload_env());
  std::optional<int> status = child.wait(30s);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGPIPE) << "wait status " << *status;
}

TEST(SignalDispositions, AHostThatIgnoresSigpipeGetsEpipe) {
  SKIP_IF_PRELOAD_IMPOSSIBLE();
  ChildProcess child({built_binary("signal_host"), "sigpipe", "--ignore"}, preload_env());
  bool epipe = false;
  while (auto line = child.read_line(30s)) epipe = epipe || *line == "EPIPE";
  std::optional<int> status = child.wait(30s);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(epipe);
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "wait status " << *status;
}

// signal_host sigprof, preloaded with cpprof: its port, and its SIGPROF counts.
class SigprofHost {
 public:
  // `now`: the host installs its handler before the test profiles it.
  SigprofHost(bool now, const std::string& cpu_mode)
      : child_({built_binary("signal_host"), "sigprof", now ? "--now" : ""}, env(cpu_mode)) {
    if (auto rest = child_.wait_for_line("cpprof: serving http://127.0.0.1:", 30s)) {
      port_ = static_cast<uint16_t>(std::stoi(*rest));
    }
    ready_ = child_.wait_for_line("ready", 30s).has_value();
  }

  bool ready() const { return ready_ && port_ != 0; }
  uint16_t port() const { return port_; }

  // The host installs its SIGPROF handler and starts its ITIMER_PROF now.
  bool install() {
    return child_.write_stdin("install\n") && child_.wait_for_line("installed", 30s).has_value();
  }

  struct Counts {
    long own = -1;    // from the host's ITIMER_PROF
    long other = -1;  // from anything else: cpprof's triggers, had they kept SIGPROF
  };
  Counts count() {
    Counts counts;
    if (!child_.write_stdin("count\n")) return counts;
    if (auto rest = child_.wait_for_line("count ", 30s)) {
      std::istringstream(*rest) >> counts.own >> counts.other;
    }
    return counts;
  }

 private:
  static std::map<std::string, std::string> env(const std::string& cpu_mode) {
    std::map<std::string, std::string> vars = preload_env();
    vars["CPPROF_CPU_MODE"] = cpu_mode;
    return vars;
  }

  ChildProcess child_;
  uint16_t port_ = 0;
  bool ready_ = false;
};

// A 200 answer to a CPU profile request, with samples in host_burn.
::testing::AssertionResult burns_in_profile(const HttpResponse& response) {
  if (response.status != 200) {
    return ::testing::AssertionFailure()
           << "status " << response.status << " " << response.error << " " << response.body;
  }
  RawProfile raw;
  ::testing::AssertionResult read = read_raw(response.body, &raw);
  if (!read) return read;
  for (const RawSample& sample : raw.samples) {
    for (const std::string& name : raw.stack(sample)) {
      if (name.find("host_burn") != std::string::npos) return ::testing::AssertionSuccess();
    }
  }
  return ::testing::AssertionFailure() << raw.samples.size() << " samples, none in host_burn";
}

// The index page's "CPU sampling mode" row.
std::string sampling_mode(uint16_t port) {
  const std::string page = http_get(port, "/debug/pprof/").body;
  const size_t row = page.find("CPU sampling mode");
  return row == std::string::npos ? page : page.substr(row, 200);
}

TEST(SignalDispositions, AHostSigprofHandlerKeepsFiringDuringACpuProfile) {
  SKIP_IF_PRELOAD_IMPOSSIBLE();
  SigprofHost host(/*now=*/true, "auto");
  ASSERT_TRUE(host.ready());
  const SigprofHost::Counts before = host.count();
  const HttpResponse profile = http_get(host.port(), "/debug/pprof/profile?seconds=2");
  const SigprofHost::Counts after = host.count();
  EXPECT_TRUE(burns_in_profile(profile));
  // 2 s of a busy process give ~200 ticks of a 10 ms ITIMER_PROF.
  EXPECT_GT(after.own, before.own + 20) << "the host's handler stopped firing";
  EXPECT_EQ(after.other, 0) << "cpprof's signals reached the host's SIGPROF handler";
  const std::string mode = sampling_mode(host.port());
  EXPECT_NE(mode.find("on signal "), std::string::npos) << mode;
  EXPECT_NE(mode.find("the program handles SIGPROF"), std::string::npos) << mode;
}

// The host installs its SIGPROF handler while a CPU profile runs on SIGPROF.
void takeover_during_a_profile(const std::string& cpu_mode) {
  SigprofHost host(/*now=*/false, cpu_mode);
  ASSERT_TRUE(host.ready());
  std::future<HttpResponse> pending = std::async(std::launch::async, [&host] {
    return http_get(host.port(), "/debug/pprof/profile?seconds=3");
  });
  std::this_thread::sleep_for(1s);
  ASSERT_TRUE(host.install());
  const SigprofHost::Counts installed = host.count();
  const HttpResponse during = pending.get();
  if (during.body.find("CPU mode \"perf\" was asked for") != std::string::npos) {
    GTEST_SKIP() << during.body;
  }
  const SigprofHost::Counts ended = host.count();
  EXPECT_GT(ended.own, installed.own) << "the host's handler does not fire";
  // Sampling stopped early: the server answers 503 with the reason as the
  // body (X-Go-Pprof: 1, so that pprof prints it).
  EXPECT_EQ(during.status, 503) << during.body;
  EXPECT_EQ(during.header("X-Go-Pprof"), "1");
  EXPECT_NE(during.body.find("the program installed its own SIGPROF handler during the profile"),
            std::string::npos)
      << during.body;
  const std::string next_text = "the next profile samples on signal ";
  const size_t at = during.body.find(next_text);
  ASSERT_NE(at, std::string::npos) << during.body;
  const int next = std::stoi(during.body.substr(at + next_text.size()));
  EXPECT_GE(next, SIGRTMIN);

  // Asked again: samples on the other signal, the host's handler keeps
  // firing and sees none of cpprof's signals any more.
  const HttpResponse again = http_get(host.port(), "/debug/pprof/profile?seconds=2");
  const SigprofHost::Counts later = host.count();
  EXPECT_TRUE(burns_in_profile(again));
  EXPECT_GT(later.own, ended.own + 20) << "the host's handler stopped firing";
  EXPECT_EQ(later.other, ended.other) << "cpprof's signals still reach the host's SIGPROF handler";
  const std::string mode = sampling_mode(host.port());
  EXPECT_NE(mode.find("on signal " + std::to_string(next)), std::string::npos) << mode;
}

TEST(SignalDispositions, AHostSigprofHandlerInstalledDuringATimerProfileTakesSigprofOver) {
  SKIP_IF_PRELOAD_IMPOSSIBLE();
  takeover_during_a_profile("timer");
}

TEST(SignalDispositions, AHostSigprofHandlerInstalledDuringAPerfProfileTakesSigprofOver) {
  SKIP_IF_PRELOAD_IMPOSSIBLE();
  takeover_during_a_profile("perf");
}

TEST(SignalDispositions, AHostSigprofHandlerInstalledBetweenProfilesGetsNoCpprofSignal) {
  SKIP_IF_PRELOAD_IMPOSSIBLE();
  SigprofHost host(/*now=*/false, "auto");
  ASSERT_TRUE(host.ready());
  // The first profile leaves cpprof's handler installed on SIGPROF.
  EXPECT_TRUE(burns_in_profile(http_get(host.port(), "/debug/pprof/profile?seconds=1")));
  ASSERT_TRUE(host.install());
  const SigprofHost::Counts installed = host.count();
  const HttpResponse profile = http_get(host.port(), "/debug/pprof/profile?seconds=2");
  const SigprofHost::Counts after = host.count();
  EXPECT_TRUE(burns_in_profile(profile));
  EXPECT_GT(after.own, installed.own + 20) << "the host's handler stopped firing";
  EXPECT_EQ(after.other, 0) << "cpprof's signals reached the host's SIGPROF handler";
  const std::string mode = sampling_mode(host.port());
  EXPECT_NE(mode.find("the program handles SIGPROF"), std::string::npos) << mode;
}

}  // namespace
}  // namespace cpprof::test
