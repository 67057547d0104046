// Inlined frames end to end: a process spinning in a function that was
// inlined into another (cpu_burner --inlined), profiled through its server,
// read back by `go tool pprof -symbolize=none`. The inlined function must
// show at the line it spins on and its caller at the line of the call, as
// `go tool pprof -lines` prints them; /debug/pprof/symbol names the
// innermost function, as Go's does.
#include <gtest/gtest.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <string>

#include "burner_target.h"
#include "support/http_client.h"
#include "support/pprof_tool.h"

namespace cpprof::test {
namespace {

using namespace std::chrono_literals;

const std::string kBurnerSource =
    std::string(CPPROF_TEST_SOURCE_DIR) + "/tests/integration/cpu_burner.cc";

// The number of the line that follows the first line containing `marker`
// in `path`; 0 if there is none.
int line_after(const std::string& path, const std::string& marker) {
  std::ifstream in(path);
  std::string text;
  for (int number = 1; std::getline(in, text); ++number) {
    if (text.find(marker) != std::string::npos) return number + 1;
  }
  return 0;
}

bool is_frame(const RawLine& line, const std::string& function, int at_line) {
  return line.function.find(function) != std::string::npos && line.file == kBurnerSource &&
         line.line == at_line;
}

class InlinedFrames : public ::testing::TestWithParam<Launch> {};

TEST_P(InlinedFrames, ShowTheInlinedFunctionAndItsCallerAtTheirLines) {
  const Launch how = GetParam();
#ifdef CPPROF_SANITIZE
  if (how != Launch::kLinked) GTEST_SKIP() << "preloading needs the release build (DESIGN.md)";
#endif
  const int hot_line = line_after(kBurnerSource, "inlined-frames-test: the hot line");
  const int call_line = line_after(kBurnerSource, "inlined-frames-test: the call line");
  ASSERT_GT(hot_line, 0) << kBurnerSource;
  ASSERT_GT(call_line, 0) << kBurnerSource;

  std::string error;
  Target target = start_burner(how, /*threads=*/1, /*hz=*/100, &error, {"--inlined"});
  ASSERT_NE(target.port, 0) << error;
  HttpResponse response = http_get(target.port, "/debug/pprof/profile?seconds=3");
  ASSERT_EQ(response.status, 200) << response.error << response.body;

  RawProfile raw;
  ASSERT_TRUE(read_raw(response.body, &raw));
  const int cpu = raw.sample_type_index("cpu");
  ASSERT_GE(cpu, 0);
  int64_t all = 0;
  int64_t inlined = 0;  // CPU whose leaf is the hot line inside burn_inlined_caller
  uint64_t hot_address = 0;
  for (const RawSample& s : raw.samples) {
    all += s.values[cpu];
    if (s.location_ids.empty()) continue;
    const RawLocation* leaf = raw.location(s.location_ids[0]);
    ASSERT_NE(leaf, nullptr);
    if (leaf->lines.size() >= 2 && is_frame(leaf->lines[0], "burn_inlined_hot", hot_line) &&
        is_frame(leaf->lines[1], "burn_inlined_caller", call_line)) {
      inlined += s.values[cpu];
      hot_address = leaf->address;
    }
  }
  ASSERT_GT(all, 0);
  // The workers do nothing else; the rest is reading the thread's CPU clock.
  EXPECT_GT(static_cast<double>(inlined), 0.8 * static_cast<double>(all))
      << "expected burn_inlined_hot " << kBurnerSource << ":" << hot_line
      << " inlined into burn_inlined_caller at line " << call_line;
  ASSERT_FALSE(raw.mappings.empty());
  EXPECT_TRUE(raw.mappings[0].has_inline_frames);
  EXPECT_TRUE(raw.mappings[0].has_line_numbers);

  // What a user reads.
  const PprofResult top = run_pprof_on_bytes(response.body, {"-lines", "-top"});
  ASSERT_TRUE(top.ok()) << top.err;
  const std::string hot =
      "burn_inlined_hot " + kBurnerSource + ":" + std::to_string(hot_line) + " (inline)";
  const std::string caller =
      "burn_inlined_caller " + kBurnerSource + ":" + std::to_string(call_line);
  EXPECT_NE(top.out.find(hot), std::string::npos) << hot << " not in\n" << top.out;
  EXPECT_NE(top.out.find(caller), std::string::npos) << caller << " not in\n" << top.out;

  // The symbol endpoint answers from the same symbolizer, innermost first.
  ASSERT_NE(hot_address, 0u);
  char hex[32];
  std::snprintf(hex, sizeof(hex), "%#" PRIx64, hot_address);
  HttpResponse symbol = http_get(target.port, std::string("/debug/pprof/symbol?") + hex);
  ASSERT_EQ(symbol.status, 200) << symbol.error;
  EXPECT_NE(symbol.body.find(std::string(hex) + " (anonymous namespace)::burn_inlined_hot\n"),
            std::string::npos)
      << symbol.body;

  target.process->close_stdin();
  std::optional<int> status = target.process->wait(30s);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
}

INSTANTIATE_TEST_SUITE_P(Launches, InlinedFrames,
                         ::testing::Values(Launch::kLinked, Launch::kPreload),
                         [](const auto& param_info) {
                           return param_info.param == Launch::kLinked ? std::string("linked")
                                                                      : std::string("preload");
                         });

}  // namespace
}  // namespace cpprof::test
