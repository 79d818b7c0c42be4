#pragma once
/// Sockets: the listening socket, accepting, and per-connection socket set-up shared by every
/// backend.
#include <cstdint>
#include <string>

namespace httpbench::core {

/// Options for open_listener().
struct listen_options {
  std::string bind = "127.0.0.1";
  uint16_t port = 0;
  int backlog = 4096;
  bool reuseport = false;  ///< SO_REUSEPORT, for backends that open one socket per process
};

/// Opens a non-blocking listening TCP socket. On failure returns -1 and sets `error` to a
/// sentence naming the address and the reason.
int open_listener(const listen_options& options, std::string& error);

/// The "HOST:PORT" a socket is bound to (IPv6 hosts in brackets).
std::string local_address(int fd);

bool set_nonblocking(int fd, bool nonblocking);

/// TCP_NODELAY: a response is written in one call, so there is nothing to coalesce, and Nagle
/// would delay the tail of a header+sendfile response.
void set_nodelay(int fd);

/// Result of one accept attempt.
enum class accept_status { accepted, again, stopped, error };

/// Accepts connections; keeps one spare descriptor so that running out of descriptors (EMFILE)
/// drops the pending connection instead of leaving it in the queue to wake us for ever.
class acceptor {
 public:
  explicit acceptor(int listen_fd);
  ~acceptor();
  acceptor(const acceptor&) = delete;
  acceptor& operator=(const acceptor&) = delete;

  /// One non-blocking accept4(). `fd` is set when `accepted`. The new socket is non-blocking
  /// when `nonblocking` and has TCP_NODELAY set.
  accept_status accept_one(int& fd, bool nonblocking);

  /// Blocks until a connection is accepted (returns `accepted`) or `stop_fd` becomes readable
  /// (returns `stopped`). For backends whose main loop is just "accept, hand off".
  accept_status accept_blocking(int& fd, bool nonblocking, int stop_fd);

  uint64_t dropped_for_fd_limit() const { return dropped_; }

 private:
  int listen_fd_;
  int spare_fd_;
  uint64_t dropped_ = 0;
};

}  // namespace httpbench::core
