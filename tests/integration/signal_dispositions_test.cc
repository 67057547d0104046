// The host's signals stay the host's: loading cpprof (preloaded, serving)
// changes no signal disposition, and a host that writes to a closed socket
// gets its own SIGPIPE behaviour, killed by default or EPIPE when it
// ignores the signal.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "support/child_process.h"
#include "support/http_client.h"

namespace cpprof::test {
namespace {

using namespace std::chrono_literals;

#ifdef CPPROF_SANITIZE
#define SKIP_PRELOAD() GTEST_SKIP() << "preloading needs the release build (DESIGN.md)"
#else
#define SKIP_PRELOAD() (void)0
#endif

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
  SKIP_PRELOAD();
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
  SKIP_PRELOAD();
  ChildProcess child({built_binary("signal_host"), "sigpipe"}, preload_env());
  std::optional<int> status = child.wait(30s);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGPIPE) << "wait status " << *status;
}

TEST(SignalDispositions, AHostThatIgnoresSigpipeGetsEpipe) {
  SKIP_PRELOAD();
  ChildProcess child({built_binary("signal_host"), "sigpipe", "--ignore"}, preload_env());
  bool epipe = false;
  while (auto line = child.read_line(30s)) epipe = epipe || *line == "EPIPE";
  std::optional<int> status = child.wait(30s);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(epipe);
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "wait status " << *status;
}

}  // namespace
}  // namespace cpprof::test
