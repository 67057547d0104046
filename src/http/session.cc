#include "http/session.h"

#include <chrono>
#include <utility>

#include <boost/asio/error.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "http/router.h"
#include "http/server_state.h"

namespace cpprof::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;

// Bytes read at a time by the disconnect watch.
constexpr size_t kWatchChunk = 1024;

}  // namespace

Session::Session(ServerState& state, asio::ip::tcp::socket socket)
    : state_(state), stream_(std::move(socket)) {}

void Session::start() { read_request(); }

void Session::read_request() {
  if (closed_) return;
  writing_ = false;
  waiting_since_ = std::chrono::steady_clock::now();
  parser_.emplace();
  parser_->header_limit(kMaxHeaderBytes);
  parser_->body_limit(kMaxBodyBytes);
  stream_.expires_after(std::chrono::seconds(state_.config.idle_timeout_seconds));
  bhttp::async_read_header(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
}

void Session::on_header(beast::error_code ec) {
  if (ec) return on_read_failed(ec);
  if (parser_->is_done()) return dispatch();
  const Request& request = parser_->get();
  if (beast::iequals(request[bhttp::field::expect], "100-continue")) {
    // curl sends this for POST bodies over 1 KiB and would wait a second otherwise.
    auto proceed = std::make_shared<bhttp::response<bhttp::empty_body>>(bhttp::status::continue_,
                                                                        request.version());
    bhttp::async_write(stream_, *proceed,
                       [self = shared_from_this(), proceed](beast::error_code write_ec, size_t) {
                         if (write_ec) return self->close();
                         self->read_body();
                       });
    return;
  }
  read_body();
}

void Session::read_body() {
  if (closed_) return;
  bhttp::async_read(stream_, buffer_, *parser_,
                    [self = shared_from_this()](beast::error_code ec, size_t) {
                      if (ec) return self->on_read_failed(ec);
                      self->dispatch();
                    });
}

void Session::on_read_failed(beast::error_code ec) {
  if (closed_) return;
  // The peer closed, reset, or was too slow: nobody to answer.
  const bool parse_error =
      ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category();
  if (!parse_error || ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message) {
    return close();
  }
  version_ = 11;
  keep_alive_ = false;
  head_ = false;
  awaiting_response_ = true;
  if (ec == bhttp::error::header_limit) {
    respond(error_response(Status::request_header_fields_too_large, "request header too large"));
  } else if (ec == bhttp::error::body_limit) {
    respond(error_response(Status::payload_too_large, "request body too large"));
  } else {
    respond(error_response(Status::bad_request, "malformed HTTP request: " + ec.message()));
  }
}

void Session::dispatch() {
  if (closed_) return;
  stream_.expires_never();
  Request request = parser_->release();
  parser_.reset();
  version_ = request.version();
  keep_alive_ = request.keep_alive();
  head_ = request.method() == bhttp::verb::head;
  awaiting_response_ = true;
  route_request(state_, shared_from_this(), std::move(request));
}

void Session::respond(Response response) {
  if (closed_ || !awaiting_response_) return;
  awaiting_response_ = false;
  on_gone_ = nullptr;
  response.version(version_);
  response.keep_alive(keep_alive_);
  response.prepare_payload();
  if (head_) {
    // Same headers as GET, Content-Length included, and no body.
    size_t length = response.body().size();
    response.body().clear();
    response.content_length(length);
  }
  if (watching_) {
    pending_ = std::move(response);
    stream_.cancel();  // on_watch writes it
    return;
  }
  write(std::move(response));
}

void Session::watch_for_disconnect(std::function<void()> gone) {
  if (closed_) {
    if (gone) gone();
    return;
  }
  on_gone_ = std::move(gone);
  if (!watching_) start_watch();
}

void Session::start_watch() {
  // A client that keeps sending while it waits gets no more buffer; a write
  // error will tell us if it goes away.
  if (buffer_.size() >= kMaxHeaderBytes) return;
  watching_ = true;
  stream_.expires_never();
  stream_.async_read_some(buffer_.prepare(kWatchChunk),
                          [self = shared_from_this()](beast::error_code ec, size_t bytes) {
                            self->on_watch(ec, bytes);
                          });
}

void Session::on_watch(beast::error_code ec, size_t bytes) {
  watching_ = false;
  if (!ec) buffer_.commit(bytes);
  if (closed_) return;
  if (pending_) {
    if (ec && ec != asio::error::operation_aborted) return close();
    Response response = std::move(*pending_);
    pending_.reset();
    return write(std::move(response));
  }
  if (ec) return close();  // end of stream or reset: the client is gone
  if (on_gone_) start_watch();
}

void Session::write(Response response) {
  writing_ = true;
  auto message = std::make_shared<Response>(std::move(response));
  stream_.expires_after(std::chrono::seconds(kWriteTimeoutSeconds));
  bhttp::async_write(stream_, *message,
                     [self = shared_from_this(), message](beast::error_code ec, size_t) {
                       self->on_write(ec, message->need_eof());
                     });
}

void Session::on_write(beast::error_code ec, bool need_eof) {
  if (closed_) return;
  if (ec) return close();
  if (need_eof) {
    beast::error_code ignored;
    stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    return close();
  }
  read_request();
}

void Session::close() {
  if (closed_) return;
  closed_ = true;
  pending_.reset();
  std::function<void()> gone = std::move(on_gone_);
  on_gone_ = nullptr;
  beast::error_code ignored;
  stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  stream_.close();
  if (gone) gone();
}

}  // namespace cpprof::http
