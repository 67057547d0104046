// One client connection: reads requests (with size limits and an idle
// timeout), hands each to the router, writes the answer, and keeps the
// connection alive when the client asks.
//
// While a request waits for its answer (a profile window), the session reads
// from the socket anyway: end-of-stream or an error there means the client
// went away, and the request is told so at once instead of when its answer
// fails to be written. Bytes that arrive meanwhile (a pipelined request) are
// kept for the next parse.
//
// Io thread only: every member must be called on the server's io thread.
// Owned by shared_ptr: the pending asio handlers and a request that waits
// for its answer keep it alive.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>

#include "http/responses.h"

namespace cpprof::http {

struct ServerState;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(ServerState& state, boost::asio::ip::tcp::socket socket);

  // Starts reading the first request.
  void start();

  // Sends the answer to the current request, then reads the next one or
  // closes (no keep-alive, or a response that must end the connection).
  // Ignored if the session was closed or no request is waiting.
  void respond(Response response);

  // Until respond() or close(), runs `gone` if the client disconnects. If the
  // session is already closed, runs it now.
  void watch_for_disconnect(std::function<void()> gone);

  // Closes the connection; a request waiting for its answer is told it is gone.
  void close();

  // Whether the connection only waits for (or is still sending) a request:
  // no request of it is being answered. Such connections are what the
  // listener closes, oldest first, to admit a new one when all slots are
  // taken, so that idle clients cannot keep a profile request out.
  bool waiting_for_request() const { return !closed_ && !awaiting_response_ && !writing_; }
  // Since when it has been waiting (the start of its current read).
  std::chrono::steady_clock::time_point waiting_since() const { return waiting_since_; }

 private:
  void read_request();
  void on_header(boost::beast::error_code ec);
  void read_body();
  void on_read_failed(boost::beast::error_code ec);
  void dispatch();
  void start_watch();
  void on_watch(boost::beast::error_code ec, size_t bytes);
  void write(Response response);
  void on_write(boost::beast::error_code ec, bool need_eof);

  ServerState& state_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  // The request being answered: what its response must match.
  unsigned version_ = 11;
  bool keep_alive_ = false;
  bool head_ = false;
  bool awaiting_response_ = false;
  // The disconnect watch: a read in flight, and whom to tell.
  bool watching_ = false;
  std::function<void()> on_gone_;
  // An answer that arrived while the watch read was in flight; written once
  // that read has been cancelled (one read and one write at a time).
  std::optional<Response> pending_;
  bool closed_ = false;
  bool writing_ = false;
  std::chrono::steady_clock::time_point waiting_since_{};
};

}  // namespace cpprof::http
