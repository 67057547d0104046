#include "http/listener.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <functional>
#include <string_view>

#include "http/server_state.h"
#include "http/session.h"

namespace cpprof::http {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

// Rejected connections drained at once; beyond this they are closed outright.
constexpr int kMaxDrainingRejects = 16;
constexpr auto kRejectDrainTime = std::chrono::seconds(1);
constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);

constexpr std::string_view kBusyBody = "too many connections\n";
constexpr std::string_view kBusyResponse =
    "HTTP/1.1 503 Service Unavailable\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "X-Go-Pprof: 1\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "Connection: close\r\n"
    "Content-Length: 21\r\n"
    "\r\n"
    "too many connections\n";
static_assert(kBusyBody.size() == 21 && kBusyResponse.ends_with(kBusyBody));

// A rejected connection, read and discarded until the client closes it or
// time is up; then `done` runs.
class Drain : public std::enable_shared_from_this<Drain> {
 public:
  Drain(asio::io_context& io, tcp::socket socket, std::function<void()> done)
      : socket_(std::move(socket)), deadline_(io), done_(std::move(done)) {}

  void start() {
    deadline_.expires_after(kRejectDrainTime);
    deadline_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      boost::system::error_code ignored;
      if (!ec) self->socket_.close(ignored);
    });
    read();
  }

 private:
  void read() {
    socket_.async_read_some(asio::buffer(sink_),
                            [self = shared_from_this()](boost::system::error_code ec, size_t) {
                              if (!ec) return self->read();
                              boost::system::error_code ignored;
                              self->deadline_.cancel();
                              self->socket_.close(ignored);
                              self->done_();
                            });
  }

  tcp::socket socket_;
  asio::steady_timer deadline_;
  std::function<void()> done_;
  std::array<char, 512> sink_;
};

}  // namespace

Listener::Listener(ServerState& state) : state_(state), acceptor_(state.io), backoff_(state.io) {}

bool Listener::open(const asio::ip::address& address, uint16_t port, std::string* error) {
  const tcp protocol = address.is_v4() ? tcp::v4() : tcp::v6();
  const std::string where =
      (address.is_v6() ? "[" + address.to_string() + "]" : address.to_string()) + ":" +
      std::to_string(port);
  int fd = ::socket(protocol.family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_TCP);
  if (fd < 0) {
    *error = "cpprof: cannot listen on " + where + ": " +
             boost::system::error_code(errno, boost::system::system_category()).message();
    return false;
  }
  boost::system::error_code ec;
  acceptor_.assign(protocol, fd, ec);
  if (ec) ::close(fd);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(tcp::endpoint(address, port), ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (!ec) acceptor_.native_non_blocking(true, ec);
  if (ec) {
    *error = "cpprof: cannot listen on " + where + ": " + ec.message();
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    return false;
  }
  return true;
}

uint16_t Listener::port() const {
  boost::system::error_code ec;
  return acceptor_.local_endpoint(ec).port();
}

void Listener::start() { wait_for_connection(); }

void Listener::close() {
  boost::system::error_code ignored;
  backoff_.cancel();
  acceptor_.close(ignored);
}

void Listener::wait_for_connection() {
  // The io thread alone runs the reactor, so a connection arriving between
  // accept_pending's EAGAIN and this wait is still reported to it.
  acceptor_.async_wait(tcp::acceptor::wait_read,
                       [self = shared_from_this()](boost::system::error_code ec) {
                         if (ec || !self->acceptor_.is_open()) return;
                         self->accept_pending();
                       });
}

void Listener::accept_pending() {
  while (acceptor_.is_open()) {
    int fd = ::accept4(acceptor_.native_handle(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0) {
      admit(fd);
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return wait_for_connection();
    // EMFILE, ENFILE, ENOBUFS, ENOMEM: the connection stays queued; retry
    // shortly rather than spin on it.
    backoff_.expires_after(kAcceptBackoff);
    backoff_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->accept_pending();
    });
    return;
  }
}

bool Listener::adopt(int fd, tcp::socket* socket) {
  boost::system::error_code ec;
  socket->assign(acceptor_.local_endpoint(ec).protocol(), fd, ec);
  if (ec) ::close(fd);
  return !ec;
}

void Listener::admit(int fd) {
  auto& sessions = state_.sessions;
  sessions.erase(std::remove_if(sessions.begin(), sessions.end(),
                                [](const std::weak_ptr<Session>& s) { return s.expired(); }),
                 sessions.end());
  if (static_cast<int>(sessions.size()) >= state_.config.max_connections) {
    // Full: make room by closing the connection that has waited longest for
    // a request of its own (idle keep-alives, slow senders); only when every
    // connection is being answered is the new one refused.
    auto oldest = sessions.end();
    for (auto it = sessions.begin(); it != sessions.end(); ++it) {
      auto session = it->lock();
      if (!session || !session->waiting_for_request()) continue;
      if (oldest == sessions.end() || session->waiting_since() < oldest->lock()->waiting_since()) {
        oldest = it;
      }
    }
    if (oldest == sessions.end()) return reject(fd);
    if (auto session = oldest->lock()) session->close();
    sessions.erase(oldest);
  }
  tcp::socket socket(state_.io);
  if (!adopt(fd, &socket)) return;
  boost::system::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  auto session = std::make_shared<Session>(state_, std::move(socket));
  sessions.push_back(session);
  session->start();
}

void Listener::reject(int fd) {
  // Non-blocking and MSG_NOSIGNAL: never stalls the io thread, never SIGPIPE.
  (void)!::send(fd, kBusyResponse.data(), kBusyResponse.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  if (draining_rejects_ >= kMaxDrainingRejects) {
    ::close(fd);
    return;
  }
  ::shutdown(fd, SHUT_WR);
  tcp::socket socket(state_.io);
  if (!adopt(fd, &socket)) return;
  ++draining_rejects_;
  std::make_shared<Drain>(state_.io, std::move(socket), [self = shared_from_this()] {
    --self->draining_rejects_;
  })->start();
}

}  // namespace cpprof::http
