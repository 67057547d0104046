// CPPROF_OUT: a program that runs 0.5 s and exits normally leaves a CPU
// profile of its whole run and a heap profile, named with its pid, that
// `go tool pprof -symbolize=none` reads; linked, preloaded and under
// `cpprof run --out`. Nothing on abort; a bad directory costs a log line.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "support/child_process.h"
#include "support/pprof_tool.h"

namespace cpprof::test {
namespace {

using namespace std::chrono_literals;

struct TempDir {
  std::string path;
  TempDir() {
    char name[] = "/tmp/cpprof-out-XXXXXX";
    path = mkdtemp(name);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

int64_t samples_under(const RawProfile& raw, const std::string& function, int index) {
  int64_t sum = 0;
  for (const RawSample& sample : raw.samples) {
    for (const std::string& name : raw.stack(sample)) {
      if (name.find(function) != std::string::npos) {
        sum += sample.values.at(index);
        break;
      }
    }
  }
  return sum;
}

enum class How { kLinked, kPreload, kCpprofRun };

// Runs short_program to its end; returns its pid and wait status.
std::pair<pid_t, int> run(How how, const std::string& dir, bool abort_it = false) {
  std::vector<std::string> argv;
  std::map<std::string, std::string> env = {{"CPPROF_LOG", "stderr"}, {"CPPROF_HTTP", ""}};
  switch (how) {
    case How::kLinked:
      argv = {built_binary("short_program_linked")};
      env["CPPROF_OUT"] = dir;
      break;
    case How::kPreload:
      argv = {built_binary("short_program")};
      env["LD_PRELOAD"] = built_library();
      env["CPPROF_OUT"] = dir;
      break;
    case How::kCpprofRun:
      argv = {built_binary("cpprof"),       "run", "--http", "127.0.0.1:0", "--out", dir, "--",
              built_binary("short_program")};
      break;
  }
  if (abort_it) argv.push_back("--abort");
  ChildProcess child(argv, env);
  if (!child.started()) return {0, -1};
  child.close_stdin();
  const pid_t pid = child.pid();
  std::optional<int> status = child.wait(60s);
  return {pid, status.value_or(-1)};
}

class ExitProfiles : public ::testing::TestWithParam<How> {};

TEST_P(ExitProfiles, AHalfSecondProgramLeavesItsCpuAndHeapProfiles) {
#ifdef CPPROF_SANITIZE
  if (GetParam() != How::kLinked) GTEST_SKIP() << "preloading needs the release build (DESIGN.md)";
#endif
  TempDir dir;
  auto [pid, status] = run(GetParam(), dir.path);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;
  const std::string cpu = dir.path + "/cpu." + std::to_string(pid) + ".pb.gz";
  const std::string heap = dir.path + "/heap." + std::to_string(pid) + ".pb.gz";
  ASSERT_TRUE(std::filesystem::exists(cpu)) << cpu;

  RawProfile raw;
  ASSERT_TRUE(read_raw_file(cpu, &raw));
  ASSERT_EQ(raw.sample_types.size(), 2u);
  EXPECT_EQ(raw.sample_types[1].type, "cpu");
  // 0.5 s at 100 Hz is about 50 samples; the whole run, from load.
  EXPECT_GE(samples_under(raw, "short_burn", 0), 25);
  EXPECT_GE(raw.duration_nanos, 400000000);

#ifndef CPPROF_SANITIZE  // no heap sampling there
  ASSERT_TRUE(std::filesystem::exists(heap)) << heap;
  RawProfile heap_raw;
  ASSERT_TRUE(read_raw_file(heap, &heap_raw));
  ASSERT_EQ(heap_raw.sample_types.size(), 4u);
  EXPECT_EQ(heap_raw.sample_types[3].type, "inuse_space");
  // 8 MiB kept in 64 KiB blocks: unbiased, within a factor of two.
  const int64_t kept = samples_under(heap_raw, "short_alloc", 3);
  EXPECT_GT(kept, 4 << 20);
  EXPECT_LT(kept, 16 << 20);
#endif
  // Nothing half-written is left behind.
  for (const auto& entry : std::filesystem::directory_iterator(dir.path)) {
    EXPECT_EQ(entry.path().extension(), ".gz") << entry.path();
  }
}

TEST_P(ExitProfiles, NothingIsWrittenWhenTheProgramAborts) {
#ifdef CPPROF_SANITIZE
  if (GetParam() != How::kLinked) GTEST_SKIP() << "preloading needs the release build (DESIGN.md)";
#endif
  TempDir dir;
  auto [pid, status] = run(GetParam(), dir.path, /*abort_it=*/true);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT) << "wait status " << status;
  EXPECT_TRUE(std::filesystem::is_empty(dir.path));
}

std::string how_name(const ::testing::TestParamInfo<How>& param) {
  switch (param.param) {
    case How::kLinked:
      return "linked";
    case How::kPreload:
      return "LD_PRELOAD";
    case How::kCpprofRun:
      break;
  }
  return "cpprof_run";
}

INSTANTIATE_TEST_SUITE_P(Launches, ExitProfiles,
                         ::testing::Values(How::kLinked, How::kPreload, How::kCpprofRun),
                         how_name);

TEST(ExitProfilesDirectory, ANonDirectoryCostsALogLineAndNothingElse) {
#ifdef CPPROF_SANITIZE
  GTEST_SKIP() << "preloading needs the release build (DESIGN.md)";
#endif
  ChildProcess child({built_binary("short_program")}, {{"LD_PRELOAD", built_library()},
                                                       {"CPPROF_OUT", "/nonexistent/dir"},
                                                       {"CPPROF_LOG", "/dev/stdout"},
                                                       {"CPPROF_HTTP", ""}});
  ASSERT_TRUE(child.started());
  child.close_stdin();
  std::string out;
  while (auto line = child.read_line(30s)) out += *line + "\n";
  std::optional<int> status = child.wait(30s);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
  EXPECT_NE(out.find("CPPROF_OUT=/nonexistent/dir: not a writable directory"), std::string::npos)
      << out;
}

}  // namespace
}  // namespace cpprof::test
