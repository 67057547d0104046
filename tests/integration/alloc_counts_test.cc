// Allocation counts of whole processes, read from the index page the way
// an operator sees them: linked, LD_PRELOADed into an unmodified binary,
// and under `cpprof run`. Two runs of alloc_burner that differ only in
// their number of iterations must differ by exactly the allocations,
// frees and bytes those iterations make.
#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <regex>
#include <string>

#include "burner_target.h"
#include "support/http_client.h"

namespace cpprof::test {
namespace {

struct Counts {
  uint64_t allocs = 0;
  uint64_t frees = 0;
  uint64_t bytes = 0;
};

// The value of the index page's row `key`; false if the row is missing or
// not a number.
bool row(const std::string& page, const std::string& key, uint64_t* value) {
  std::smatch match;
  if (!std::regex_search(page, match, std::regex("<td>" + key + ":</td><td>([0-9]+)</td>"))) {
    return false;
  }
  *value = std::stoull(match[1].str());
  return true;
}

// Runs alloc_burner with `iterations` and reads its counters once it is
// ready (its main thread allocates nothing more after that).
bool run_and_count(Launch how, long iterations, Counts* counts, std::string* error) {
  Target target = start_program(
      how, "alloc_burner", {"--iterations", std::to_string(iterations), "--size", "100"}, error);
  if (target.port == 0) return false;
  HttpResponse response = http_get(target.port, "/debug/pprof/");
  if (response.status != 200) {
    *error = "index page: " + std::to_string(response.status) + " " + response.error;
    return false;
  }
  if (!row(response.body, "allocations", &counts->allocs) ||
      !row(response.body, "frees", &counts->frees) ||
      !row(response.body, "bytes allocated", &counts->bytes)) {
    *error = "no allocation rows on the index page:\n" + response.body;
    return false;
  }
  return true;
}

class AllocCounts : public ::testing::TestWithParam<Launch> {};

TEST_P(AllocCounts, TwoRunsDifferByExactlyTheAllocationsOfTheirExtraIterations) {
  const Launch how = GetParam();
#ifdef CPPROF_SANITIZE
  if (how != Launch::kLinked) GTEST_SKIP() << "preloading needs the release build (DESIGN.md)";
#endif
  constexpr long kIterations = 100000;
  std::string error;
  Counts base;
  Counts busy;
  ASSERT_TRUE(run_and_count(how, 0, &base, &error)) << error;
  ASSERT_TRUE(run_and_count(how, kIterations, &busy, &error)) << error;
  EXPECT_GT(base.allocs, 0u) << "start-up allocates: nothing counted at all?";
  EXPECT_EQ(busy.allocs - base.allocs, 2u * kIterations);
  EXPECT_EQ(busy.frees - base.frees, 2u * kIterations);
  EXPECT_EQ(busy.bytes - base.bytes, 2u * 100 * kIterations);
}

// A program that defines malloc itself keeps its allocator for everything,
// `new` included, and is told (page and log) that nothing is counted.
TEST(ProgramWithItsOwnMalloc, KeepsItsAllocatorAndIsToldNothingIsCounted) {
#ifdef CPPROF_SANITIZE
  GTEST_SKIP() << "preloading needs the release build (DESIGN.md)";
#endif
  std::string error;
  Target target = start_program(Launch::kPreload, "own_malloc", {}, &error);
  ASSERT_NE(target.port, 0) << error;
  EXPECT_EQ(target.process->read_line(std::chrono::seconds(10)).value_or("(nothing)"),
            "new reached the program's malloc: yes");
  HttpResponse response = http_get(target.port, "/debug/pprof/");
  ASSERT_EQ(response.status, 200) << response.error;
  EXPECT_NE(response.body.find("<td>allocations:</td><td>not counted (the program&#39;s malloc"),
            std::string::npos)
      << response.body;
  std::ifstream log(target.log_path);
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  // One line, not one per server or per request.
  const size_t first = text.find("allocations are not counted");
  EXPECT_NE(first, std::string::npos) << text;
  EXPECT_EQ(text.find("allocations are not counted", first + 1), std::string::npos) << text;
}

// A program whose malloc wraps the next one (dlsym(RTLD_NEXT)): under the
// preload that is cpprof's, which must forward down, not back up to the
// program's malloc (that would never return), and then counts everything.
TEST(ProgramWithAMallocWrapper, StartsAndIsCountedThroughIt) {
#ifdef CPPROF_SANITIZE
  GTEST_SKIP() << "preloading needs the release build (DESIGN.md)";
#endif
  std::string error;
  Target target = start_program(Launch::kPreload, "own_malloc_next", {}, &error);
  ASSERT_NE(target.port, 0) << error;
  EXPECT_EQ(target.process->read_line(std::chrono::seconds(10)).value_or("(nothing)"),
            "new reached the program's malloc: yes");
  HttpResponse response = http_get(target.port, "/debug/pprof/");
  ASSERT_EQ(response.status, 200) << response.error;
  uint64_t allocs = 0;
  EXPECT_TRUE(row(response.body, "allocations", &allocs)) << response.body;
  EXPECT_GT(allocs, 0u);
}

INSTANTIATE_TEST_SUITE_P(Launches, AllocCounts,
                         ::testing::Values(Launch::kLinked, Launch::kPreload, Launch::kCpprofRun),
                         [](const auto& param_info) {
                           std::string name = launch_name(param_info.param);
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace cpprof::test
