// Bearer-token check for every request when ServerConfig::token is set.
// Profiles reveal memory layout and code, so the comparison takes the same
// time wherever the first differing byte is. Pure; thread-safe.
#pragma once

#include <string_view>

namespace cpprof::http {

// True when `authorization` (the Authorization header's value) is
// "Bearer <token>" (scheme case-insensitive, as RFC 6750 says) and the
// credentials equal `token`. The time taken depends on the lengths only.
bool bearer_token_matches(std::string_view authorization, std::string_view token);

// Constant-time equality of two byte strings (time depends on the longer length).
bool constant_time_equals(std::string_view a, std::string_view b);

}  // namespace cpprof::http
