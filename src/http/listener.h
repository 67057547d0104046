// The listening socket: accepts connections, enforces max_connections and
// starts a Session for each.
//
// Sockets are created and accepted with SOCK_CLOEXEC (accept4), which asio
// does not do: a host that forks and execs must not leak our port into its
// children. Beyond max_connections a client gets a canned 503 and the
// connection is closed after a short drain (closing with unread input would
// reset it and hide the 503). Out of file descriptors, accepting pauses
// briefly instead of spinning.
//
// open() before the io thread runs; everything else on the io thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

namespace cpprof::http {

struct ServerState;

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  explicit Listener(ServerState& state);

  // Binds and listens. False with a one-line `error` (e.g. port in use).
  bool open(const boost::asio::ip::address& address, uint16_t port, std::string* error);
  // The bound port.
  uint16_t port() const;
  // Starts accepting (the io thread need not run yet).
  void start();
  // Stops accepting and closes the listening socket.
  void close();

 private:
  void wait_for_connection();
  void accept_pending();
  // Wraps an accepted descriptor in `socket`; closes it and returns false on failure.
  bool adopt(int fd, boost::asio::ip::tcp::socket* socket);
  void admit(int fd);
  void reject(int fd);

  ServerState& state_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer backoff_;
  int draining_rejects_ = 0;
};

}  // namespace cpprof::http
