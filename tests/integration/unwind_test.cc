// Whole stacks where frame pointers are missing: inside glibc's qsort and
// std::sort's internals, and in libraries dlopen()ed while a profile runs
// (one of them unloaded and reloaded in a loop). Linked and preloaded into
// an unmodified binary; read back with `go tool pprof -symbolize=none`.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "burner_target.h"
#include "support/http_client.h"
#include "support/pprof_tool.h"

namespace cpprof::test {
namespace {

using namespace std::chrono_literals;

bool contains(const std::vector<std::string>& stack, const std::string& name) {
  for (const std::string& frame : stack) {
    if (frame == name) return true;
  }
  return false;
}

std::string describe(const std::vector<std::string>& stack) {
  std::string out;
  for (const std::string& frame : stack) out += frame + " < ";
  return out;
}

class Unwinding : public ::testing::TestWithParam<Launch> {
 protected:
  // Starts stack_burner with `work` and reads a CPU profile of `seconds`.
  void profile(const std::string& work, int seconds, RawProfile* raw) {
    Launch how = GetParam();
    std::string error;
    target_ =
        start_program(how, "stack_burner", {"--work", work}, &error, {{"CPPROF_CPU_HZ", "250"}});
    ASSERT_NE(target_.port, 0) << error;
    HttpResponse response =
        http_get(target_.port, "/debug/pprof/profile?seconds=" + std::to_string(seconds), {},
                 std::chrono::seconds(seconds + 60));
    ASSERT_EQ(response.status, 200) << response.error << response.body;
    ASSERT_TRUE(read_raw(response.body, raw));
    ASSERT_FALSE(raw->samples.empty());
  }

  void SetUp() override {
#ifdef CPPROF_SANITIZE
    if (GetParam() != Launch::kLinked) {
      GTEST_SKIP() << "preloading needs the release build (DESIGN.md)";
    }
#endif
  }

  void TearDown() override {
    if (target_.process == nullptr) return;
    target_.process->close_stdin();
    std::optional<int> status = target_.process->wait(30s);
    ASSERT_TRUE(status.has_value()) << "stack_burner did not exit";
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "status " << *status;
  }

  Target target_;
};

// Every sample whose leaf satisfies `is_leaf` must reach main; there must
// be at least `minimum` of them.
void expect_reach_main(const RawProfile& raw, bool (*is_leaf)(const std::string&), int minimum,
                       const char* what) {
  int leaves = 0;
  for (const RawSample& sample : raw.samples) {
    std::vector<std::string> stack = raw.stack(sample);
    if (stack.empty() || !is_leaf(stack.front())) continue;
    leaves += static_cast<int>(sample.values[0]);
    EXPECT_TRUE(contains(stack, "main")) << what << ": " << describe(stack);
  }
  EXPECT_GE(leaves, minimum) << "too few samples with the leaf in " << what;
}

// At least `share` of all samples reach main.
void expect_most_reach_main(const RawProfile& raw, double share) {
  int64_t all = 0;
  int64_t whole = 0;
  std::string broken;
  for (const RawSample& sample : raw.samples) {
    std::vector<std::string> stack = raw.stack(sample);
    all += sample.values[0];
    if (contains(stack, "main")) {
      whole += sample.values[0];
    } else if (broken.size() < 2000) {
      broken += describe(stack) + "\n";
    }
  }
  EXPECT_GE(static_cast<double>(whole), share * static_cast<double>(all))
      << whole << " of " << all << " samples reach main; others:\n"
      << broken;
}

TEST_P(Unwinding, QsortComparatorAndLibcFramesUnwindToMain) {
  RawProfile raw;
  ASSERT_NO_FATAL_FAILURE(profile("qsort", 4, &raw));
  expect_reach_main(
      raw, [](const std::string& leaf) { return leaf == "qsort_compare_ints"; }, 20,
      "qsort's comparator");
  // glibc's merge sort: no frame pointers at all.
  expect_reach_main(
      raw, [](const std::string& leaf) { return leaf.find("msort") != std::string::npos; }, 20,
      "glibc's qsort");
  expect_most_reach_main(raw, 0.97);
}

TEST_P(Unwinding, StdSortInternalsUnwindToMain) {
  RawProfile raw;
  ASSERT_NO_FATAL_FAILURE(profile("stdsort", 4, &raw));
  expect_reach_main(
      raw, [](const std::string& leaf) { return leaf.rfind("std::__", 0) == 0; }, 20,
      "std::sort's internals");
  expect_reach_main(
      raw, [](const std::string& leaf) { return leaf == "stdsort_less"; }, 10,
      "std::sort's comparator");
  expect_most_reach_main(raw, 0.97);
}

TEST_P(Unwinding, ALibraryLoadedDuringTheProfileIsNamedAndUnwound) {
  RawProfile raw;
  ASSERT_NO_FATAL_FAILURE(profile("plugin", 4, &raw));
  // Loaded one second into the four: most of the window is spent inside it.
  int64_t all = 0;
  int64_t in_plugin = 0;
  for (const RawSample& sample : raw.samples) {
    std::vector<std::string> stack = raw.stack(sample);
    all += sample.values[0];
    if (!stack.empty() && stack.front() == "plugin_hot_loop") {
      in_plugin += sample.values[0];
      EXPECT_TRUE(contains(stack, "run_plugin")) << describe(stack);
    }
  }
  EXPECT_GT(in_plugin, all / 2) << in_plugin << " of " << all;
  bool mapped = false;
  for (const RawMapping& m : raw.mappings) {
    mapped |= m.filename.find("libcpprof_test_plugin.so") != std::string::npos;
  }
  EXPECT_TRUE(mapped) << "the plugin has no mapping in the profile";
}

TEST_P(Unwinding, DlopenAndDlcloseInALoopDuringTenSecondsOfProfiling) {
  RawProfile raw;
  ASSERT_NO_FATAL_FAILURE(profile("churn", 10, &raw));
  int64_t plugin = 0;
  int64_t churn = 0;
  for (const RawSample& sample : raw.samples) {
    std::vector<std::string> stack = raw.stack(sample);
    if (contains(stack, "plugin_hot_loop")) plugin += sample.values[0];
    if (contains(stack, "churn_hot_loop")) churn += sample.values[0];
  }
  // Both threads burn most of their time in their library; samples taken
  // in a library that was unloaded since still carry its name.
  EXPECT_GT(plugin, 100);
  EXPECT_GT(churn, 100);
  // The process keeps serving after the churn.
  HttpResponse index = http_get(target_.port, "/debug/pprof/", {}, 10s);
  EXPECT_EQ(index.status, 200);
}

INSTANTIATE_TEST_SUITE_P(LinkedAndPreloaded, Unwinding,
                         ::testing::Values(Launch::kLinked, Launch::kPreload),
                         [](const auto& param_info) {
                           return param_info.param == Launch::kLinked ? "linked" : "preloaded";
                         });

}  // namespace
}  // namespace cpprof::test
