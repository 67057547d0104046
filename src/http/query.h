// Request targets and the query parameters of /debug/pprof/<name>.
//
// Pure functions, no I/O: unit-tested and fuzzed (tests/fuzz/query_fuzz.cc).
// The rules follow Go's net/http/pprof where Go checks a value, and are
// stricter where Go silently falls back: a malformed `seconds` or `debug`
// is a 400, never a 30-second profile started by a typo.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cpprof::http {

// One decoded key=value pair of a query string.
struct QueryParam {
  std::string key;
  std::string value;
};

// A request target split into its parts.
struct Target {
  std::string path;                // percent-decoded ('+' stays '+')
  std::string raw_query;           // after '?', as sent (Go's URL.RawQuery; /symbol reads it)
  std::vector<QueryParam> params;  // decoded ('+' is a space), in order, empty pairs dropped
};

// Splits an origin-form ("/a/b?x=1") or absolute-form ("http://h/a?x=1")
// target. False with a one-line `error` on anything else, on a malformed
// %-escape anywhere, or on a ';' in the query (Go 1.17+ rejects ';' as a
// separator; silently dropping the pair could turn "seconds=5;debug=1" into
// a 30-second profile).
bool parse_target(std::string_view target, Target* out, std::string* error);

// The first value of `key`, as Go's FormValue; nullptr if absent.
const std::string* find_param(const std::vector<QueryParam>& params, std::string_view key);

// Parses a base-10 integer with an optional sign, like Go's strconv.ParseInt
// (no spaces, no overflow). False if `text` is not one.
bool parse_int(std::string_view text, int64_t* out);

// The checked parameters of a profile request.
struct ProfileParams {
  int seconds = 0;  // 0: not given
  int debug = 0;    // 0: gzipped protobuf
  bool gc = false;  // Go's gc=1 (run a GC first); accepted, means nothing here
};

// Checks `seconds` (an integer 1..max_seconds), `debug` (0 or one of
// `text_debug_levels`) and that they are not combined, ignoring unknown
// keys. An empty value counts as absent, as in Go. False with a one-line
// `error` (for a 400) otherwise.
bool check_profile_params(const std::vector<QueryParam>& params, int max_seconds,
                          std::span<const int> text_debug_levels, ProfileParams* out,
                          std::string* error);

}  // namespace cpprof::http
