// Loading cpprof without asking for a server costs nothing, and `cpprof run`
// is transparent: same pid, same exit code, same death by signal.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>

#include "support/child_process.h"

namespace cpprof::test {
namespace {

using namespace std::chrono_literals;

// `cpprof run` preloads libcpprof.so, which an ASan build cannot do into an
// uninstrumented program.
#ifdef CPPROF_SANITIZE
#define SKIP_IF_PRELOAD_IMPOSSIBLE() \
  GTEST_SKIP() << "preloading needs the release build (DESIGN.md)"
#else
#define SKIP_IF_PRELOAD_IMPOSSIBLE() (void)0
#endif

std::string probe(std::vector<std::string> argv, std::map<std::string, std::string> env) {
  ChildProcess child(std::move(argv), std::move(env));
  std::optional<std::string> line = child.read_line(30s);
  child.wait(30s);
  return line.value_or("(no output)");
}

TEST(Launch, LinkedLibraryWithoutCpprofHttpStartsNoThreadAndNoTimer) {
  EXPECT_EQ(probe({built_binary("no_server_probe_linked")}, {{"CPPROF_HTTP", ""}}),
            "threads 1 timers 0");
}

TEST(Launch, PreloadedLibraryWithoutCpprofHttpStartsNoThreadAndNoTimer) {
  SKIP_IF_PRELOAD_IMPOSSIBLE();
  EXPECT_EQ(probe({built_binary("no_server_probe")},
                  {{"CPPROF_HTTP", ""}, {"LD_PRELOAD", built_library()}}),
            "threads 1 timers 0");
}

TEST(Launch, CpprofRunReturnsTheProgramsExitCode) {
  SKIP_IF_PRELOAD_IMPOSSIBLE();
  ChildProcess child(
      {built_binary("cpprof"), "run", "--http", "127.0.0.1:0", "--", "/bin/sh", "-c", "exit 7"},
      {{"CPPROF_LOG", "off"}});
  std::optional<int> status = child.wait(30s);
  ASSERT_TRUE(status.has_value());
  ASSERT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 7);
}

TEST(Launch, CpprofRunDiesOfTheProgramsSignal) {
  SKIP_IF_PRELOAD_IMPOSSIBLE();
  ChildProcess child({built_binary("cpprof"), "run", "--http", "127.0.0.1:0", "--", "/bin/sh", "-c",
                      "kill -TERM $$"},
                     {{"CPPROF_LOG", "off"}});
  std::optional<int> status = child.wait(30s);
  ASSERT_TRUE(status.has_value());
  ASSERT_TRUE(WIFSIGNALED(*status));
  EXPECT_EQ(WTERMSIG(*status), SIGTERM);
}

TEST(Launch, CpprofRunKeepsThePid) {
  SKIP_IF_PRELOAD_IMPOSSIBLE();
  ChildProcess child({built_binary("cpprof"), "run", "--", "/bin/sh", "-c", "echo $$"},
                     {{"CPPROF_LOG", "off"}, {"CPPROF_HTTP", ""}});
  std::optional<std::string> line = child.read_line(30s);
  ASSERT_TRUE(line.has_value());
  EXPECT_EQ(*line, std::to_string(child.pid()));
}

TEST(Launch, CpprofRunServesFromTheLaunchedProcessOnlyNotItsChildren) {
  SKIP_IF_PRELOAD_IMPOSSIBLE();
  char log_path[] = "/tmp/cpprof-launch-log-XXXXXX";
  int fd = mkstemp(log_path);
  ASSERT_GE(fd, 0);
  close(fd);
  // A shell script's commands inherit the preload, as with pyenv's shims.
  ChildProcess child({built_binary("cpprof"), "run", "--http", "127.0.0.1:0", "--", "/bin/sh", "-c",
                      "/bin/true; /bin/true; echo $$; sleep 1"},
                     {{"CPPROF_LOG", log_path}});
  std::optional<std::string> pid = child.read_line(30s);
  ASSERT_TRUE(child.wait(30s).has_value());
  std::ifstream in(log_path);
  std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  unlink(log_path);
  ASSERT_TRUE(pid.has_value());
  size_t first = log.find("serving http://");
  ASSERT_NE(first, std::string::npos) << log;
  EXPECT_EQ(log.find("serving http://", first + 1), std::string::npos) << log;
  EXPECT_NE(log.find("(pid " + *pid + ")"), std::string::npos) << log;
  EXPECT_EQ(log.find("not serving"), std::string::npos) << log;
}

TEST(Launch, CpprofRunExplainsBadUsage) {
  for (std::vector<std::string> args : {std::vector<std::string>{"run"},
                                        {"run", "--http"},
                                        {"run", "--http", "nonsense", "--", "true"},
                                        {"frobnicate"},
                                        {"run", "--bogus", "--", "true"}}) {
    args.insert(args.begin(), built_binary("cpprof"));
    ChildProcess child(args);
    std::optional<int> status = child.wait(30s);
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2) << args[1];
  }
  ChildProcess missing({built_binary("cpprof"), "run", "--", "/nonexistent/program"});
  std::optional<int> status = missing.wait(30s);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 127);
}

}  // namespace
}  // namespace cpprof::test
