// ThreadLeakListener in a real test binary: the test that leaves a worker
// behind fails (naming where it was created), the others pass, and the
// binary's exit code says so.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <string>

#include "support/child_process.h"

namespace cpprof::test {
namespace {

using namespace std::chrono_literals;

TEST(LeakListener, FailsOnlyTheTestThatLeaks) {
  ChildProcess child({built_binary("leak_listener_program"), "--gtest_color=no"});
  ASSERT_TRUE(child.started());
  child.close_stdin();
  std::string out;
  while (auto line = child.read_line(60s)) out += *line + "\n";
  std::optional<int> status = child.wait(30s);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1) << out;
  EXPECT_NE(out.find("[       OK ] Listener.JoinsItsThread"), std::string::npos) << out;
  EXPECT_NE(out.find("[  FAILED  ] Listener.LeavesAWorkerBehind"), std::string::npos) << out;
  EXPECT_NE(out.find("[       OK ] Listener.RunsAfterTheLeak"), std::string::npos) << out;
  EXPECT_NE(out.find("1 thread(s) leaked"), std::string::npos) << out;
  EXPECT_NE(out.find("created by (anonymous namespace)::spawn_forgotten_worker"), std::string::npos)
      << out;
  EXPECT_NE(out.find("wait_forever"), std::string::npos) << out;
}

}  // namespace
}  // namespace cpprof::test
