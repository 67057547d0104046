// Loading cpprof without asking for a server costs nothing, and `cpprof run`
// is transparent: same pid, same exit code, same death by signal.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "support/child_process.h"
#include "support/preload.h"

namespace cpprof::test {
namespace {

using namespace std::chrono_literals;

// The sanitizers cannot link -static: the static test programs exist only
// in the release build.
#ifdef CPPROF_SANITIZE
#define SKIP_IF_NO_STATIC_PROGRAMS() GTEST_SKIP() << "the sanitizer build links nothing -static"
#else
#define SKIP_IF_NO_STATIC_PROGRAMS() (void)0
#endif

std::string probe(std::vector<std::string> argv, std::map<std::string, std::string> env) {
  ChildProcess child(std::move(argv), std::move(env));
  std::optional<std::string> line = child.read_line(30s);
  child.wait(30s);
  return line.value_or("(no output)");
}

// What `cpprof run --http 127.0.0.1:0 -- ARGS...` printed on stdout and
// stderr (merged by a shell that then execs it), and its wait status.
struct RunOutput {
  std::vector<std::string> lines;
  std::optional<int> status;
};

RunOutput run_capturing_stderr(std::vector<std::string> args,
                               std::map<std::string, std::string> env = {},
                               const std::string& http = "127.0.0.1:0") {
  std::vector<std::string> command = {
      "/bin/sh", "-c", "exec \"$@\" 2>&1", "sh", built_binary("cpprof"), "run", "--http",
      http,      "--"};
  command.insert(command.end(), args.begin(), args.end());
  env["CPPROF_LOG"] = "off";
  ChildProcess child(command, env);
  RunOutput out;
  while (std::optional<std::string> line = child.read_line(30s)) out.lines.push_back(*line);
  out.status = child.wait(30s);
  return out;
}

size_t lines_containing(const RunOutput& out, const std::string& text) {
  size_t n = 0;
  for (const std::string& line : out.lines) n += line.find(text) != std::string::npos;
  return n;
}

std::string joined(const RunOutput& out) {
  std::string text;
  for (const std::string& line : out.lines) text += line + "\n";
  return text;
}

std::string static_warning(const std::string& program) {
  return "cpprof: " + program +
         " is statically linked: libcpprof.so cannot be preloaded into it, so nothing will be "
         "profiled or served (link it with cpprof instead)";
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

// LD_PRELOAD cannot reach a program without a dynamic loader: cpprof run
// says so in one line, then runs it anyway, as asked.
TEST(Launch, CpprofRunSaysOnceThatAStaticProgramCannotBeProfiledAndRunsIt) {
  SKIP_IF_NO_STATIC_PROGRAMS();
  for (const char* name : {"exit_three_static", "exit_three_static_pie"}) {
    const std::string program = built_binary(name);
    // A fixed port: the "profiling ... at http://" line would print for it,
    // and must not, since nothing will serve there.
    RunOutput out = run_capturing_stderr({program}, {}, "127.0.0.1:6999");
    ASSERT_TRUE(out.status.has_value()) << name;
    EXPECT_TRUE(WIFEXITED(*out.status) && WEXITSTATUS(*out.status) == 3) << name;
    EXPECT_EQ(out.lines, std::vector<std::string>{static_warning(program)}) << joined(out);
  }
}

TEST(Launch, CpprofRunFindsAStaticProgramInPathAsExecWould) {
  SKIP_IF_NO_STATIC_PROGRAMS();
  const std::string bin = built_binary("");
  RunOutput out = run_capturing_stderr({"exit_three_static"},
                                       {{"PATH", "/nonexistent:" + bin + ":/usr/bin:/bin"}});
  ASSERT_TRUE(out.status.has_value());
  EXPECT_TRUE(WIFEXITED(*out.status) && WEXITSTATUS(*out.status) == 3);
  EXPECT_EQ(out.lines, std::vector<std::string>{static_warning("exit_three_static")});
}

TEST(Launch, CpprofRunSaysNothingAboutDynamicProgramsAndScripts) {
  SKIP_IF_PRELOAD_IMPOSSIBLE();
  RunOutput dynamic = run_capturing_stderr({built_binary("exit_three")});
  ASSERT_TRUE(dynamic.status.has_value());
  EXPECT_TRUE(WIFEXITED(*dynamic.status) && WEXITSTATUS(*dynamic.status) == 3);
  EXPECT_EQ(lines_containing(dynamic, "statically linked"), 0u) << joined(dynamic);
  char script_path[] = "/tmp/cpprof-launch-script-XXXXXX";
  int fd = mkstemp(script_path);
  ASSERT_GE(fd, 0);
  const std::string text = "#!/bin/sh\nexit 3\n";
  ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  fchmod(fd, 0700);
  close(fd);
  RunOutput script = run_capturing_stderr({script_path});
  unlink(script_path);
  ASSERT_TRUE(script.status.has_value());
  EXPECT_TRUE(WIFEXITED(*script.status) && WEXITSTATUS(*script.status) == 3);
  EXPECT_EQ(lines_containing(script, "statically linked"), 0u) << joined(script);
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
