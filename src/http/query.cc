#include "http/query.h"

#include <algorithm>
#include <limits>

namespace cpprof::http {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes %XX escapes; in a query '+' also stands for a space (form encoding).
bool percent_decode(std::string_view in, bool plus_is_space, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      int hi = hex_value(in[i + 1]);
      int lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out->push_back(' ');
    } else {
      out->push_back(c);
    }
  }
  return true;
}

bool parse_query(std::string_view query, std::vector<QueryParam>* params, std::string* error) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    if (pair.find(';') != std::string_view::npos) {
      *error = "invalid semicolon separator in query";
      return false;
    }
    size_t eq = pair.find('=');
    QueryParam param;
    if (!percent_decode(pair.substr(0, eq), true, &param.key) ||
        (eq != std::string_view::npos &&
         !percent_decode(pair.substr(eq + 1), true, &param.value))) {
      *error = "malformed %-escape in query";
      return false;
    }
    params->push_back(std::move(param));
  }
  return true;
}

}  // namespace

bool parse_target(std::string_view target, Target* out, std::string* error) {
  *out = Target();
  for (std::string_view scheme : {"http://", "https://"}) {
    if (target.substr(0, scheme.size()) == scheme) {
      target.remove_prefix(scheme.size());
      size_t slash = target.find_first_of("/?");
      target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
      if (!target.empty() && target[0] == '?') {
        *error = "malformed request target";
        return false;
      }
      break;
    }
  }
  if (target.empty() || target[0] != '/') {
    *error = "malformed request target";
    return false;
  }
  size_t question = target.find('?');
  if (!percent_decode(target.substr(0, question), false, &out->path)) {
    *error = "malformed %-escape in path";
    return false;
  }
  if (question == std::string_view::npos) return true;
  out->raw_query = std::string(target.substr(question + 1));
  return parse_query(out->raw_query, &out->params, error);
}

const std::string* find_param(const std::vector<QueryParam>& params, std::string_view key) {
  for (const QueryParam& param : params) {
    if (param.key == key) return &param.value;
  }
  return nullptr;
}

bool parse_int(std::string_view text, int64_t* out) {
  bool negative = false;
  if (!text.empty() && (text[0] == '+' || text[0] == '-')) {
    negative = text[0] == '-';
    text.remove_prefix(1);
  }
  if (text.empty()) return false;
  // Accumulate as a negative number so that INT64_MIN parses too.
  int64_t value = 0;
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    int digit = c - '0';
    if (value < (kMin + digit) / 10) return false;
    value = value * 10 - digit;
  }
  if (!negative) {
    if (value == kMin) return false;
    value = -value;
  }
  *out = value;
  return true;
}

bool check_profile_params(const std::vector<QueryParam>& params, int max_seconds,
                          std::span<const int> text_debug_levels, ProfileParams* out,
                          std::string* error) {
  *out = ProfileParams();
  const std::string* seconds = find_param(params, "seconds");
  if (seconds != nullptr && !seconds->empty()) {
    int64_t value = 0;
    if (!parse_int(*seconds, &value) || value <= 0) {
      *error = R"(invalid value for "seconds" - must be a positive integer)";
      return false;
    }
    if (value > max_seconds) {
      *error = R"(invalid value for "seconds" - must be at most )" + std::to_string(max_seconds);
      return false;
    }
    out->seconds = static_cast<int>(value);
  }
  const std::string* debug = find_param(params, "debug");
  if (debug != nullptr && !debug->empty()) {
    int64_t value = 0;
    if (!parse_int(*debug, &value)) {
      *error = R"(invalid value for "debug" - must be an integer)";
      return false;
    }
    if (value != 0 && out->seconds > 0) {
      *error = "seconds and debug params are incompatible";
      return false;
    }
    if (value != 0 && std::find(text_debug_levels.begin(), text_debug_levels.end(), value) ==
                          text_debug_levels.end()) {
      std::string supported = "0";
      for (int level : text_debug_levels) supported += ", " + std::to_string(level);
      *error = R"(invalid value for "debug" - this profile supports )" + supported;
      return false;
    }
    out->debug = static_cast<int>(value);
  }
  const std::string* gc = find_param(params, "gc");
  int64_t gc_value = 0;
  out->gc = gc != nullptr && parse_int(*gc, &gc_value) && gc_value > 0;
  return true;
}

}  // namespace cpprof::http
