#include "support/http_client.h"

#include <cctype>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace cpprof::test {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::string HttpResponse::header(std::string_view name) const {
  auto it = headers.find(lower(name));
  return it == headers.end() ? std::string() : it->second;
}

struct HttpConnection::Impl {
  asio::io_context io;
  beast::tcp_stream stream{io};
  beast::flat_buffer buffer;
  bool connected = false;
  std::string connect_error;

  // Runs one asynchronous operation to completion under a deadline.
  template <class Start>
  beast::error_code run(std::chrono::milliseconds timeout, Start&& start) {
    beast::error_code result = asio::error::would_block;
    stream.expires_after(timeout);
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    io.restart();
    io.run();
    return result;
  }
};

HttpConnection::HttpConnection(uint16_t port, std::chrono::milliseconds connect_timeout)
    : impl_(std::make_unique<Impl>()) {
  asio::ip::tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port);
  beast::error_code ec = impl_->run(connect_timeout, [&](auto handler) {
    impl_->stream.async_connect(endpoint, std::move(handler));
  });
  impl_->connected = !ec;
  if (ec) impl_->connect_error = ec.message();
}

HttpConnection::~HttpConnection() = default;

bool HttpConnection::connected() const { return impl_->connected; }

const std::string& HttpConnection::connect_error() const { return impl_->connect_error; }

bool HttpConnection::send_raw(std::string_view bytes, std::chrono::milliseconds timeout) {
  beast::error_code ec = impl_->run(timeout, [&](auto handler) {
    asio::async_write(impl_->stream, asio::buffer(bytes.data(), bytes.size()), std::move(handler));
  });
  return !ec;
}

HttpResponse HttpConnection::read_response(std::chrono::milliseconds timeout) {
  HttpResponse out;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(1u << 30);
  beast::error_code ec = impl_->run(timeout, [&](auto handler) {
    bhttp::async_read(impl_->stream, impl_->buffer, parser, std::move(handler));
  });
  if (ec) {
    out.error = ec.message();
    return out;
  }
  const auto& message = parser.get();
  out.status = static_cast<int>(message.result_int());
  for (const auto& field : message) {
    std::string name =
        lower(std::string_view(field.name_string().data(), field.name_string().size()));
    out.headers.emplace(name, std::string(field.value().data(), field.value().size()));
  }
  out.body = message.body();
  return out;
}

HttpResponse HttpConnection::request(const HttpRequest& request,
                                     std::chrono::milliseconds timeout) {
  bhttp::request<bhttp::string_body> message;
  message.method_string(request.method);
  message.target(request.target);
  message.version(11);
  message.set(bhttp::field::host, "127.0.0.1");
  for (const auto& [name, value] : request.headers) message.set(name, value);
  message.keep_alive(request.keep_alive);
  message.body() = request.body;
  if (!request.body.empty() || request.method == "POST") message.prepare_payload();
  beast::error_code ec = impl_->run(timeout, [&](auto handler) {
    bhttp::async_write(impl_->stream, message, std::move(handler));
  });
  if (ec) {
    HttpResponse out;
    out.error = "write: " + ec.message();
    return out;
  }
  // A HEAD response has a Content-Length but no body.
  if (request.method == "HEAD") {
    HttpResponse out;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.skip(true);
    ec = impl_->run(timeout, [&](auto handler) {
      bhttp::async_read(impl_->stream, impl_->buffer, parser, std::move(handler));
    });
    if (ec) {
      out.error = ec.message();
      return out;
    }
    out.status = static_cast<int>(parser.get().result_int());
    for (const auto& field : parser.get()) {
      out.headers.emplace(
          lower(std::string_view(field.name_string().data(), field.name_string().size())),
          std::string(field.value().data(), field.value().size()));
    }
    return out;
  }
  return read_response(timeout);
}

bool HttpConnection::wait_for_close(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char sink[4096];
  impl_->buffer.clear();
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    beast::error_code ec = impl_->run(left, [&](auto handler) {
      impl_->stream.async_read_some(asio::buffer(sink), std::move(handler));
    });
    if (ec == beast::error::timeout) return false;
    if (ec) return true;
  }
}

void HttpConnection::reset() {
  beast::error_code ec;
  impl_->stream.socket().set_option(asio::socket_base::linger(true, 0), ec);
  impl_->stream.socket().close(ec);
}

void HttpConnection::close() {
  beast::error_code ec;
  impl_->stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  impl_->stream.socket().close(ec);
}

HttpResponse http_fetch(uint16_t port, const HttpRequest& request,
                        std::chrono::milliseconds timeout) {
  HttpConnection connection(port, timeout);
  if (!connection.connected()) {
    HttpResponse out;
    out.error = "connect: " + connection.connect_error();
    return out;
  }
  return connection.request(request, timeout);
}

HttpResponse http_get(uint16_t port, const std::string& target,
                      std::vector<std::pair<std::string, std::string>> headers,
                      std::chrono::milliseconds timeout) {
  HttpRequest request;
  request.target = target;
  request.headers = std::move(headers);
  return http_fetch(port, request, timeout);
}

}  // namespace cpprof::test
