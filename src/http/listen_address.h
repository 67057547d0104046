// Which address the server may listen on.
//
// DESIGN.md: the server binds 127.0.0.1 by default, and any other address
// must be asked for (allow_remote). Host names other than "localhost" are
// refused rather than resolved: a profiler loaded into someone's process
// must not make DNS queries. Pure; thread-safe.
#pragma once

#include <string>

#include <boost/asio/ip/address.hpp>

namespace cpprof::http {

// Parses `host` ("" and "localhost" mean 127.0.0.1; otherwise an IPv4 or
// IPv6 literal, brackets allowed) into `out`. False with a one-line `error`
// if it is not an address, or not loopback and `allow_remote` is false.
bool resolve_listen_address(const std::string& host, bool allow_remote,
                            boost::asio::ip::address* out, std::string* error);

// True for 127.0.0.0/8, ::1 and IPv4-mapped loopback (::ffff:127.x.y.z).
bool is_loopback(const boost::asio::ip::address& address);

}  // namespace cpprof::http
