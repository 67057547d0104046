#include <charconv>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>

#include "cpprof/options.h"

namespace cpprof {
namespace {

const char* env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : nullptr;
}

void append(std::string* error, const std::string& line) {
  if (!error->empty()) *error += "; ";
  *error += line;
}

}  // namespace

Options options_from_environment(Options defaults, std::string* error) {
  Options options = std::move(defaults);
  error->clear();
  if (const char* http = env("CPPROF_HTTP")) options.address = http;
  if (const char* remote = env("CPPROF_ALLOW_REMOTE")) {
    options.allow_remote = std::string_view(remote) == "1";
  }
  if (const char* token = env("CPPROF_TOKEN")) options.token = token;
  if (const char* token_file = env("CPPROF_TOKEN_FILE")) {
    std::ifstream in(token_file);
    std::string token;
    if (in && std::getline(in, token) && !token.empty()) {
      options.token = token;
    } else {
      append(error, std::string("CPPROF_TOKEN_FILE: cannot read a token from ") + token_file);
    }
  }
  if (const char* hz = env("CPPROF_CPU_HZ")) {
    std::string_view text(hz);
    int value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value < 1 || value > 10000) {
      append(error, "CPPROF_CPU_HZ=" + std::string(text) + ": expected a number from 1 to 10000");
    } else {
      options.cpu_hz = value;
    }
  }
  if (const char* mode = env("CPPROF_CPU_MODE")) {
    std::string_view text(mode);
    if (text == "auto") {
      options.cpu_mode = CpuMode::kAuto;
    } else if (text == "perf") {
      options.cpu_mode = CpuMode::kPerf;
    } else if (text == "timer") {
      options.cpu_mode = CpuMode::kTimer;
    } else {
      append(error, "CPPROF_CPU_MODE=" + std::string(text) + ": expected auto, perf or timer");
    }
  }
  if (const char* log = env("CPPROF_LOG")) options.log = log;
  return options;
}

}  // namespace cpprof
