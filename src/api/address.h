// Parsing of "HOST:PORT" addresses as CPPROF_HTTP and Options::address take them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace cpprof::api {

struct HostPort {
  std::string host;  // without brackets for IPv6
  uint16_t port = 0;
};

// "HOST:PORT", ":PORT" (127.0.0.1) or "[V6]:PORT". False with `error` set
// (one line) on anything else.
bool parse_host_port(std::string_view text, HostPort* out, std::string* error);

}  // namespace cpprof::api
