// CPPROF_CPU_MODE: parsed into Options::cpu_mode, bad values refused with
// a line that names the variable and the accepted values.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>

#include "cpprof/options.h"

namespace cpprof {
namespace {

class CpuModeVariable : public ::testing::Test {
 protected:
  void TearDown() override { unsetenv("CPPROF_CPU_MODE"); }

  Options parse(const char* value, std::string* error, Options defaults = {}) {
    setenv("CPPROF_CPU_MODE", value, 1);
    return options_from_environment(defaults, error);
  }
};

TEST_F(CpuModeVariable, DefaultsToAuto) {
  unsetenv("CPPROF_CPU_MODE");
  std::string error;
  EXPECT_EQ(options_from_environment({}, &error).cpu_mode, CpuMode::kAuto);
  EXPECT_EQ(error, "");
  EXPECT_EQ(Options{}.cpu_mode, CpuMode::kAuto);
}

TEST_F(CpuModeVariable, AcceptsAutoPerfAndTimer) {
  std::string error;
  EXPECT_EQ(parse("perf", &error).cpu_mode, CpuMode::kPerf);
  EXPECT_EQ(error, "");
  EXPECT_EQ(parse("timer", &error).cpu_mode, CpuMode::kTimer);
  EXPECT_EQ(error, "");
  EXPECT_EQ(parse("auto", &error, {.cpu_mode = CpuMode::kTimer}).cpu_mode, CpuMode::kAuto);
  EXPECT_EQ(error, "");
}

TEST_F(CpuModeVariable, AnEmptyValueKeepsTheDefault) {
  std::string error;
  EXPECT_EQ(parse("", &error, {.cpu_mode = CpuMode::kTimer}).cpu_mode, CpuMode::kTimer);
  EXPECT_EQ(error, "");
}

TEST_F(CpuModeVariable, RefusesAnythingElseNamingTheChoices) {
  for (const char* bad : {"PERF", "timers", "perf ", "hrtimer", "1"}) {
    std::string error;
    Options options = parse(bad, &error, {.cpu_mode = CpuMode::kTimer});
    EXPECT_EQ(error, "CPPROF_CPU_MODE=" + std::string(bad) + ": expected auto, perf or timer");
    EXPECT_EQ(options.cpu_mode, CpuMode::kTimer) << "a bad value changes nothing";
  }
}

TEST_F(CpuModeVariable, IsReportedWithOtherBadValues) {
  setenv("CPPROF_CPU_HZ", "fast", 1);
  std::string error;
  parse("turbo", &error);
  unsetenv("CPPROF_CPU_HZ");
  EXPECT_NE(error.find("CPPROF_CPU_HZ=fast"), std::string::npos) << error;
  EXPECT_NE(error.find("CPPROF_CPU_MODE=turbo"), std::string::npos) << error;
}

}  // namespace
}  // namespace cpprof
