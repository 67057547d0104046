// libFuzzer target for request-target and profile-parameter parsing: every
// input must parse or be refused with a one-line message, never crash, and
// accepted values must lie within the documented bounds.
//
// Not built by default. Build and run, for example:
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
//     tests/fuzz/query_fuzz.cc src/http/query.cc -o /tmp/query_fuzz
//   /tmp/query_fuzz -max_total_time=60 tests/fuzz/corpus/query
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "http/query.h"

namespace {

void require(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cpprof::http;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  Target target;
  std::string error;
  if (!parse_target(input, &target, &error)) {
    require(!error.empty() && error.find('\n') == std::string::npos);
    return 0;
  }
  require(!target.path.empty() && target.path[0] == '/');
  const std::vector<int> levels = {1, 2};
  constexpr int kMaxSeconds = 3600;
  ProfileParams params;
  if (check_profile_params(target.params, kMaxSeconds, levels, &params, &error)) {
    require(params.seconds >= 0 && params.seconds <= kMaxSeconds);
    require(params.debug == 0 || params.debug == 1 || params.debug == 2);
    require(params.seconds == 0 || params.debug == 0);
  } else {
    require(!error.empty() && error.find('\n') == std::string::npos);
  }
  int64_t value = 0;
  if (parse_int(input, &value)) require(!input.empty());
  return 0;
}
