#pragma once
/// Sockets: the listening socket, accepting, and per-connection socket set-up shared by every
/// backend.
#include <cstdint>
#include <string>

#include "unique_fd.hpp"

namespace httpbench::core {

struct server_stats;

/// Options for open_listener().
struct listen_options {
  std::string bind = "127.0.0.1";
  uint16_t port = 0;
  int backlog = 4096;
  bool reuseport = false;  ///< SO_REUSEPORT, for backends that open one socket per process
  /// TCP_DEFER_ACCEPT for this many seconds (0: off): the kernel completes a connection only
  /// when its first data arrives (or the time is up), so accept() finds the request waiting.
  int defer_accept_s = 0;
};

/// Opens a non-blocking listening TCP socket. On failure returns an invalid unique_fd and sets
/// `error` to a sentence naming the address and the reason.
unique_fd open_listener(const listen_options& options, std::string& error);

/// The "HOST:PORT" a socket is bound to (IPv6 hosts in brackets).
std::string local_address(int fd);

/// The port a socket is bound to (0 when it cannot be read).
uint16_t local_port(int fd);

bool set_nonblocking(int fd, bool nonblocking);

/// TCP_NODELAY: a response is written in one call, so there is nothing to coalesce, and Nagle
/// would delay the tail of a header+sendfile response. open_listener() sets it on the listening
/// socket, and Linux copies it to every socket accept() returns.
void set_nodelay(int fd);

/// Result of one accept attempt.
enum class accept_status { accepted, again, stopped, error };

/// Accepts connections; keeps one spare descriptor so that running out of descriptors (EMFILE)
/// drops the pending connection instead of leaving it in the queue to wake us for ever.
class acceptor {
 public:
  /// Accepts from `listen_fd` (not owned). A connection dropped for lack of descriptors is
  /// counted in `stats` (server_stats::count_refused()) when given: pass &ctx.stats.
  explicit acceptor(int listen_fd, server_stats* stats = nullptr);
  acceptor(const acceptor&) = delete;
  acceptor& operator=(const acceptor&) = delete;

  /// One non-blocking accept4(). `fd` receives the connection when `accepted`. The new socket
  /// is non-blocking when `nonblocking` and has TCP_NODELAY set (inherited from a listener
  /// made by open_listener()).
  accept_status accept_one(unique_fd& fd, bool nonblocking);

  /// Blocks until a connection is accepted (returns `accepted`) or `stop_fd` becomes readable
  /// (returns `stopped`). For backends whose main loop is just "accept, hand off".
  accept_status accept_blocking(unique_fd& fd, bool nonblocking, int stop_fd);

  /// Connections accepted and closed at once because no descriptor was left (EMFILE/ENFILE).
  uint64_t dropped_for_fd_limit() const { return dropped_; }

 private:
  int listen_fd_;
  server_stats* stats_;
  unique_fd spare_;  ///< given up for a moment to accept and drop a connection at EMFILE
  uint64_t dropped_ = 0;
};

}  // namespace httpbench::core
