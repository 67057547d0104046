#include "http/listen_address.h"

#include <boost/system/error_code.hpp>

namespace cpprof::http {

bool is_loopback(const boost::asio::ip::address& address) {
  if (address.is_v4()) return address.to_v4().is_loopback();
  boost::asio::ip::address_v6 v6 = address.to_v6();
  if (v6.is_v4_mapped()) {
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6).is_loopback();
  }
  return v6.is_loopback();
}

bool resolve_listen_address(const std::string& host, bool allow_remote,
                            boost::asio::ip::address* out, std::string* error) {
  std::string literal = host;
  if (literal.empty() || literal == "localhost") literal = "127.0.0.1";
  if (literal.size() >= 2 && literal.front() == '[' && literal.back() == ']') {
    literal = literal.substr(1, literal.size() - 2);
  }
  boost::system::error_code ec;
  boost::asio::ip::address address = boost::asio::ip::make_address(literal, ec);
  if (ec) {
    *error = "cpprof: cannot listen on \"" + host +
             "\": not an IP address (only \"localhost\" is resolved, never a host name)";
    return false;
  }
  if (!allow_remote && !is_loopback(address)) {
    *error = "cpprof: refusing to listen on non-loopback address " + address.to_string() +
             ": profiles reveal code and memory; set allow_remote (CPPROF_ALLOW_REMOTE=1) "
             "and preferably a token to allow it";
    return false;
  }
  *out = address;
  return true;
}

}  // namespace cpprof::http
