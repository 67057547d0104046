// The one Profile model: what every source builds and every encoder writes.
//
// It mirrors profile.proto (github.com/google/pprof/proto/profile.proto) with
// strings held by value; the encoder builds the string table. Ids of
// mappings, locations and functions start at 1 and 0 means "none".
// A plain value type: no thread-safety of its own.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cpprof::profile {

// A sample value's kind and unit, e.g. {"cpu", "nanoseconds"}.
struct ValueType {
  std::string type;
  std::string unit;
};

// A label on a sample: either a string (str) or a number (num, num_unit).
struct Label {
  std::string key;
  std::string str;
  int64_t num = 0;
  std::string num_unit;
};

struct Sample {
  std::vector<uint64_t> location_ids;  // leaf first
  std::vector<int64_t> values;         // one per Profile::sample_types
  std::vector<Label> labels;
};

struct Mapping {
  uint64_t id = 0;
  uint64_t memory_start = 0;
  uint64_t memory_limit = 0;
  uint64_t file_offset = 0;
  std::string filename;
  std::string build_id;
  bool has_functions = false;
  bool has_filenames = false;
  bool has_line_numbers = false;
  bool has_inline_frames = false;
};

struct Line {
  uint64_t function_id = 0;
  int64_t line = 0;
};

struct Location {
  uint64_t id = 0;
  uint64_t mapping_id = 0;  // 0 for synthetic locations
  uint64_t address = 0;
  std::vector<Line> lines;  // innermost (inlined) first, as profile.proto says
};

struct Function {
  uint64_t id = 0;
  std::string name;         // demangled
  std::string system_name;  // mangled
  std::string filename;
  int64_t start_line = 0;
};

struct Profile {
  std::vector<ValueType> sample_types;
  std::vector<Sample> samples;
  std::vector<Mapping> mappings;  // the main executable first, as pprof expects
  std::vector<Location> locations;
  std::vector<Function> functions;
  std::vector<std::string> comments;
  int64_t time_nanos = 0;      // wall time when collection started
  int64_t duration_nanos = 0;  // length of the collection window
  ValueType period_type;
  int64_t period = 0;
  std::string default_sample_type;  // empty: pprof uses the last sample type
};

}  // namespace cpprof::profile
