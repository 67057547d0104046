#include "api/address.h"

#include <charconv>

namespace cpprof::api {

bool parse_host_port(std::string_view text, HostPort* out, std::string* error) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    *error = "address \"" + std::string(text) + "\" is not HOST:PORT";
    return false;
  }
  std::string_view host = text.substr(0, colon);
  std::string_view port = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    *error = "address \"" + std::string(text) + "\": write IPv6 hosts as [HOST]:PORT";
    return false;
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535) {
    *error = "address \"" + std::string(text) + "\": port must be a number from 0 to 65535";
    return false;
  }
  out->host = host.empty() ? "127.0.0.1" : std::string(host);
  out->port = static_cast<uint16_t>(value);
  return true;
}

}  // namespace cpprof::api
