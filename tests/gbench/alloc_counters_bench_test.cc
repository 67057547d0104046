// Runs alloc_counters_bench (a Google Benchmark program using
// cpprof/benchmark.h) and reads back what it printed: the console table
// must show each benchmark's exact allocs/iter and B/iter, the JSON file
// the same counters at full precision, and the MemoryManager's fields.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "support/child_process.h"

namespace cpprof::test {
namespace {

using namespace std::chrono_literals;

// What every benchmark of alloc_counters_bench.cc allocates per iteration,
// and how the console prints the bytes (Google Benchmark shortens numbers
// to 6 significant digits with an SI prefix).
struct Expected {
  std::string name;
  int threads;
  uint64_t allocs;
  uint64_t bytes;
  std::string console_bytes;
};

const std::vector<Expected>& expected_benchmarks() {
  static const std::vector<Expected> expected = {
      {"BM_StackOnly", 1, 0, 0, "0"},
      {"BM_NewInt", 1, 1, 4, "4"},
      {"BM_NewInt/threads:2", 2, 1, 4, "4"},
      {"BM_VectorPushBack", 1, 18, 1048572, "1048.57k"},
      {"BM_VectorPushBackReserved", 1, 1, 400000, "400k"},
      {"BM_StringAppend", 1, 3, 213, "213"},
  };
  return expected;
}

// One row of the console table: "name time unit cpu unit iterations k=v...".
struct ConsoleRow {
  int64_t iterations = 0;
  std::map<std::string, std::string> counters;
};

// A flat JSON object of the "benchmarks" array: numbers and strings.
struct JsonRun {
  std::map<std::string, double> numbers;
  std::map<std::string, std::string> strings;
};

struct BenchOutput {
  int exit_status = -1;
  std::vector<std::string> stdout_lines;
  std::string json;
};

// Runs the benchmark program briefly; the console table goes to stdout and
// the JSON report to a temporary file.
BenchOutput run_bench() {
  BenchOutput out;
  char dir[] = "/tmp/cpprof_gbench_XXXXXX";
  if (mkdtemp(dir) == nullptr) return out;
  const std::string json_path = std::string(dir) + "/out.json";
  {
    ChildProcess child({built_binary("alloc_counters_bench"), "--benchmark_min_time=0.01",
                        "--benchmark_color=false", "--benchmark_out=" + json_path,
                        "--benchmark_out_format=json"});
    if (child.started()) {
      while (std::optional<std::string> line = child.read_line(120s)) {
        out.stdout_lines.push_back(*line);
      }
      std::optional<int> status = child.wait(30s);
      if (status) out.exit_status = *status;
    }
  }
  std::ifstream in(json_path);
  std::stringstream text;
  text << in.rdbuf();
  out.json = text.str();
  unlink(json_path.c_str());
  rmdir(dir);
  return out;
}

std::vector<std::string> split_whitespace(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> words;
  for (std::string word; in >> word;) words.push_back(word);
  return words;
}

// The rows after the table's header, by benchmark name.
std::map<std::string, ConsoleRow> parse_console(const std::vector<std::string>& lines) {
  std::map<std::string, ConsoleRow> rows;
  bool in_table = false;
  for (const std::string& line : lines) {
    std::vector<std::string> words = split_whitespace(line);
    if (words.empty() || line.rfind("---", 0) == 0) continue;
    if (words[0] == "Benchmark") {
      in_table = true;
      continue;
    }
    // name, real time, unit, CPU time, unit, iterations, counters.
    if (!in_table || words.size() < 6) continue;
    ConsoleRow row;
    row.iterations = std::atoll(words[5].c_str());
    for (size_t i = 6; i < words.size(); ++i) {
      size_t eq = words[i].find('=');
      if (eq != std::string::npos) row.counters[words[i].substr(0, eq)] = words[i].substr(eq + 1);
    }
    rows[words[0]] = row;
  }
  return rows;
}

// Google Benchmark's JSON report, only as far as the "benchmarks" array of
// flat objects goes (which is all 1.7.1 writes there).
class JsonScanner {
 public:
  explicit JsonScanner(const std::string& text) : text_(text) {}

  std::optional<std::map<std::string, JsonRun>> benchmarks() {
    const std::string key = "\"benchmarks\"";
    pos_ = text_.find(key);
    if (pos_ == std::string::npos) return std::nullopt;
    pos_ += key.size();
    if (!skip_to(':') || !skip_to('[')) return std::nullopt;
    std::map<std::string, JsonRun> runs;
    for (;;) {
      skip_space();
      if (pos_ >= text_.size()) return std::nullopt;
      if (text_[pos_] == ']') return runs;
      if (text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      std::optional<JsonRun> run = object();
      if (!run || run->strings.count("name") == 0) return std::nullopt;
      runs[run->strings["name"]] = *run;
    }
  }

 private:
  std::optional<JsonRun> object() {
    if (!skip_to('{')) return std::nullopt;
    JsonRun run;
    for (;;) {
      skip_space();
      if (pos_ >= text_.size()) return std::nullopt;
      if (text_[pos_] == '}') {
        ++pos_;
        return run;
      }
      if (text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      std::optional<std::string> key = string();
      if (!key || !skip_to(':')) return std::nullopt;
      skip_space();
      if (pos_ < text_.size() && text_[pos_] == '"') {
        std::optional<std::string> value = string();
        if (!value) return std::nullopt;
        run.strings[*key] = *value;
      } else {
        const char* start = text_.c_str() + pos_;
        char* end = nullptr;
        double value = std::strtod(start, &end);
        if (end == start) {
          // true/false: not needed here.
          while (pos_ < text_.size() && std::isalpha(static_cast<unsigned char>(text_[pos_]))) {
            ++pos_;
          }
          continue;
        }
        pos_ += static_cast<size_t>(end - start);
        run.numbers[*key] = value;
      }
    }
  }

  std::optional<std::string> string() {
    if (!skip_to('"')) return std::nullopt;
    std::string value;
    while (pos_ < text_.size() && text_[pos_] != '"') {
      if (text_[pos_] == '\\' && pos_ + 1 < text_.size()) ++pos_;
      value += text_[pos_++];
    }
    if (pos_ >= text_.size()) return std::nullopt;
    ++pos_;
    return value;
  }

  bool skip_to(char c) {
    skip_space();
    if (pos_ >= text_.size() || text_[pos_] != c) return false;
    ++pos_;
    return true;
  }

  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }

  const std::string& text_;
  size_t pos_ = 0;
};

class GbenchAllocCounters : public ::testing::Test {
 protected:
  void SetUp() override {
    output_ = run_bench();
    ASSERT_TRUE(WIFEXITED(output_.exit_status) && WEXITSTATUS(output_.exit_status) == 0)
        << "alloc_counters_bench did not exit cleanly (wait status " << output_.exit_status << ")";
  }

  BenchOutput output_;
};

TEST_F(GbenchAllocCounters, ConsoleTableShowsExactAllocsAndBytesPerIteration) {
  std::map<std::string, ConsoleRow> rows = parse_console(output_.stdout_lines);
  std::string printed;
  for (const std::string& line : output_.stdout_lines) printed += line + "\n";
  ASSERT_EQ(rows.size(), expected_benchmarks().size()) << printed;
  for (const Expected& want : expected_benchmarks()) {
    SCOPED_TRACE(want.name);
    ASSERT_EQ(rows.count(want.name), 1u) << printed;
    ConsoleRow& row = rows[want.name];
    EXPECT_GT(row.iterations, 0);
    EXPECT_EQ(row.counters["allocs/iter"], std::to_string(want.allocs)) << printed;
    EXPECT_EQ(row.counters["B/iter"], want.console_bytes) << printed;
  }
}

TEST_F(GbenchAllocCounters, JsonCountersAreExact) {
  EXPECT_NE(output_.json.find("\"cpprof_alloc_counting\": \"available\""), std::string::npos)
      << "the program says cpprof cannot count its allocations:\n"
      << output_.json;
  std::optional<std::map<std::string, JsonRun>> runs = JsonScanner(output_.json).benchmarks();
  ASSERT_TRUE(runs.has_value()) << output_.json;
  for (const Expected& want : expected_benchmarks()) {
    SCOPED_TRACE(want.name);
    ASSERT_EQ(runs->count(want.name), 1u) << output_.json;
    JsonRun& run = (*runs)[want.name];
    ASSERT_EQ(run.numbers.count("allocs/iter"), 1u);
    ASSERT_EQ(run.numbers.count("B/iter"), 1u);
    // The total divided by the iterations: exactly the integer when every
    // iteration allocated alike, and off by at least 1/iterations if a
    // single allocation more or less was counted.
    EXPECT_EQ(run.numbers["allocs/iter"], static_cast<double>(want.allocs));
    EXPECT_EQ(run.numbers["B/iter"], static_cast<double>(want.bytes));
  }
}

// Google Benchmark 1.7.1 runs each benchmark once more, for at most 16
// iterations on one thread, between MemoryManager::Start() and Stop(), and
// writes num_allocs / those iterations as "allocs_per_iter". That count is
// the whole process's and includes the framework's own allocations for the
// run, so it can only be compared from below, with a bound on the extra.
TEST_F(GbenchAllocCounters, JsonMemoryManagerFieldsCountAtLeastTheBenchmarksAllocations) {
  std::optional<std::map<std::string, JsonRun>> runs = JsonScanner(output_.json).benchmarks();
  ASSERT_TRUE(runs.has_value()) << output_.json;
  for (const Expected& want : expected_benchmarks()) {
    SCOPED_TRACE(want.name);
    ASSERT_EQ(runs->count(want.name), 1u) << output_.json;
    JsonRun& run = (*runs)[want.name];
    ASSERT_EQ(run.numbers.count("iterations"), 1u);
    ASSERT_EQ(run.numbers.count("allocs_per_iter"), 1u) << "no memory result: MemoryManager unused";
    ASSERT_EQ(run.numbers.count("total_allocated_bytes"), 1u);
    ASSERT_EQ(run.numbers.count("max_bytes_used"), 1u);
    // "iterations" adds up all threads; the memory run's count is per thread.
    const double per_thread = run.numbers["iterations"] / want.threads;
    const double memory_iterations = std::min(16.0, per_thread);
    const double allocs = std::round(run.numbers["allocs_per_iter"] * memory_iterations);
    const double benchmark_allocs = static_cast<double>(want.allocs) * memory_iterations;
    EXPECT_GE(allocs, benchmark_allocs);
    // The framework's own: a handful per run (thread manager, counters).
    EXPECT_LE(allocs - benchmark_allocs, 32) << "allocs_per_iter " << run.numbers["allocs_per_iter"]
                                             << " over " << memory_iterations << " iterations";
    const double bytes = run.numbers["total_allocated_bytes"];
    const double benchmark_bytes = static_cast<double>(want.bytes) * memory_iterations;
    EXPECT_GE(bytes, benchmark_bytes);
    EXPECT_LE(bytes - benchmark_bytes, 64 * 1024);
    // Unknown to cpprof (it does not count bytes freed): 0, the framework's
    // default, and net_heap_growth left out as "not available".
    EXPECT_EQ(run.numbers["max_bytes_used"], 0);
    EXPECT_EQ(run.numbers.count("net_heap_growth"), 0u);
  }
}

}  // namespace
}  // namespace cpprof::test
