// `go tool pprof` as the independent reader of the profiles we write.
//
// Every profile test checks our bytes with the real pprof (DESIGN.md), never
// with a decoder of our own alone. This helper runs it and parses the text of
// `-raw`, which prints the decoded profile.proto almost field for field.
//
// pprof always runs with `-symbolize=none`: otherwise it would symbolize from
// the binaries on disk itself and hide our mistakes. It runs hermetically:
// HOME, GOCACHE, GOPATH and PPROF_TMPDIR point into a fresh temporary
// directory, TZ=UTC, GOTOOLCHAIN=local (no toolchain download) and the
// working directory is that temporary directory (no go.mod/go.work is seen).
// Needs `go` (1.19 or later) on PATH; no network.
//
// Thread-safe: each call uses its own temporary directory and child process.
//
// Example:
//   cpprof::test::RawProfile raw;
//   ASSERT_TRUE(cpprof::test::read_raw(encode_pprof_gz(profile), &raw));
//   EXPECT_EQ(raw.stack(raw.samples[0]), (std::vector<std::string>{"leaf", "main"}));
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace cpprof::test {

// What one run of pprof printed, and how it ended.
struct PprofResult {
  int exit_code = -1;  // -1: could not be started, was killed, or timed out
  std::string out;     // stdout
  std::string err;     // stderr; pprof explains a rejected profile here
  bool ok() const { return exit_code == 0; }
};

// Runs `go tool pprof -symbolize=none <flags...> <profile_path>` and waits for
// it (at most `timeout_seconds`, then kills it). `profile_path` may also be a
// URL. Example flags: {"-raw"}, {"-top", "-sample_index=alloc_space"},
// {"-traces"}.
PprofResult run_pprof(const std::string& profile_path, const std::vector<std::string>& flags,
                      int timeout_seconds = 120);

// Writes `profile_bytes` (gzipped or not, pprof takes both) to a temporary
// file, runs pprof on it as run_pprof does, and removes the file.
PprofResult run_pprof_on_bytes(std::string_view profile_bytes,
                               const std::vector<std::string>& flags, int timeout_seconds = 120);

// A sample type or the period type, e.g. {"cpu", "nanoseconds"}.
struct RawValueType {
  std::string type;
  std::string unit;
};

// One source line of a location; pprof prints "??" for a line without function.
struct RawLine {
  std::string function;     // Function.name
  std::string system_name;  // Function.system_name (pprof prints it only if it differs)
  std::string file;         // Function.filename; empty if none. Must not be a
                            // relative name with spaces: -raw is ambiguous there.
  int64_t line = 0;
  int64_t start_line = 0;
};

struct RawLocation {
  uint64_t id = 0;
  uint64_t address = 0;
  uint64_t mapping_id = 0;  // 0: no mapping (synthetic frame)
  bool folded = false;
  std::vector<RawLine> lines;  // innermost (inlined) first
};

// pprof merges adjacent pieces of one file and renumbers mappings from 1 in
// its own order (main binary first) before printing, so ids here are pprof's.
struct RawMapping {
  uint64_t id = 0;
  uint64_t start = 0;
  uint64_t limit = 0;
  uint64_t offset = 0;
  std::string filename;
  std::string build_id;
  bool has_functions = false;
  bool has_filenames = false;
  bool has_line_numbers = false;
  bool has_inline_frames = false;
};

struct RawSample {
  std::vector<int64_t> values;         // one per sample type
  std::vector<uint64_t> location_ids;  // leaf first
  // Labels as pprof prints them, key -> the text inside "[...]": "v1 v2" for
  // string labels, "5 bytes" for a numeric label with unit, "5" without one.
  std::map<std::string, std::string> labels;
};

// The profile as `go tool pprof -raw` printed it.
struct RawProfile {
  std::vector<std::string> comments;
  bool has_period_type = false;
  RawValueType period_type;
  int64_t period = 0;
  int64_t time_nanos = 0;  // 0 if pprof printed no Time (time_nanos unset)
  // -raw cuts the duration to 4 characters ("10.0" for 10.0023s, unit lost),
  // so read_raw takes duration_nanos from the `-top` header instead
  // ("Duration: 10s", "10.01s", "250ms": 3 significant digits). parse_raw
  // alone leaves it 0.
  std::string duration_text;  // as -raw printed it; empty if duration_nanos was unset
  int64_t duration_nanos = 0;
  std::vector<RawValueType> sample_types;
  std::string default_sample_type;  // the type marked [dflt], if any
  std::vector<RawSample> samples;
  std::vector<RawLocation> locations;
  std::vector<RawMapping> mappings;

  // nullptr if there is no such id.
  const RawLocation* location(uint64_t id) const;
  const RawMapping* mapping(uint64_t id) const;
  // Index of the sample type named `type`, or -1.
  int sample_type_index(std::string_view type) const;

  // The function names of a sample's stack, leaf first, each location's
  // inlined frames innermost first. A location without lines contributes its
  // address as "0x...".
  std::vector<std::string> stack(const RawSample& sample) const;
};

// Parses the stdout of `go tool pprof -raw`. On text it does not understand,
// returns false and says which line in `error`.
bool parse_raw(std::string_view text, RawProfile* out, std::string* error);

// run_pprof_on_bytes(bytes, {"-raw"}) + parse_raw (+ a `-top` run for the
// duration), for ASSERT_TRUE: on failure the message holds pprof's exit code
// and stderr, or the parse error and the text.
::testing::AssertionResult read_raw(std::string_view profile_bytes, RawProfile* out);

// The same for a profile file or a URL. A URL is fetched once (pprof -proto)
// and both runs read that copy.
::testing::AssertionResult read_raw_file(const std::string& profile_path, RawProfile* out);

}  // namespace cpprof::test
