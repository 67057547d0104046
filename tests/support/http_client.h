// A small blocking HTTP/1.1 client for tests, on Boost.Beast: one request
// per call (http_fetch) or a connection kept open for several requests and
// for raw bytes (HttpConnection). Every operation has a deadline, so a
// server that hangs fails the test instead of stalling it.
//
// Thread-safe per object: use one HttpConnection per thread; http_fetch may
// be called from any number of threads at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cpprof::test {

struct HttpRequest {
  std::string method = "GET";
  std::string target = "/";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool keep_alive = false;
};

struct HttpResponse {
  int status = 0;                              // 0: no response; `error` says why
  std::string error;                           // empty when a response was read
  std::map<std::string, std::string> headers;  // names lowercased; first value wins
  std::string body;

  // The header's value, or "" if absent.
  std::string header(std::string_view name) const;
};

inline constexpr std::chrono::milliseconds kDefaultHttpTimeout{60000};

// Connects to 127.0.0.1:`port`, sends `request`, reads the answer, closes.
HttpResponse http_fetch(uint16_t port, const HttpRequest& request,
                        std::chrono::milliseconds timeout = kDefaultHttpTimeout);

// GET `target` with optional extra headers.
HttpResponse http_get(uint16_t port, const std::string& target,
                      std::vector<std::pair<std::string, std::string>> headers = {},
                      std::chrono::milliseconds timeout = kDefaultHttpTimeout);

// One TCP connection to 127.0.0.1:`port`.
class HttpConnection {
 public:
  explicit HttpConnection(uint16_t port,
                          std::chrono::milliseconds connect_timeout = kDefaultHttpTimeout);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  bool connected() const;
  // Why connecting failed, if it did.
  const std::string& connect_error() const;

  // Sends `request` and reads one response.
  HttpResponse request(const HttpRequest& request,
                       std::chrono::milliseconds timeout = kDefaultHttpTimeout);
  // Sends bytes as they are. False on a write error.
  bool send_raw(std::string_view bytes, std::chrono::milliseconds timeout = kDefaultHttpTimeout);
  // Reads one response (after send_raw).
  HttpResponse read_response(std::chrono::milliseconds timeout = kDefaultHttpTimeout);
  // Waits up to `timeout` for the server to close the connection (EOF or
  // reset) and returns true if it did; bytes received meanwhile are dropped.
  bool wait_for_close(std::chrono::milliseconds timeout);
  // Closes with a reset (SO_LINGER 0), as a crashing client would.
  void reset();
  // Closes normally.
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cpprof::test
