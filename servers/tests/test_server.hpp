#pragma once
// Test helper: a server_context as main() builds it (loopback listener, stop eventfd, built-in
// content, counters), and a client socket with timeouts, for tests that run a piece of a
// backend (an event loop, a supervisor) inside the test process.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <string>
#include <string_view>

#include "core/listener.hpp"
#include "core/server.hpp"

namespace httpbench::core::test_support {

inline const backend_info test_backend{
    .name = "test",
    .model = "test",
    .summary = "a piece of a backend run by a unit test",
    .paper = "none",
    .category = backend_category::event,
    .tunables = {},
};

/// Owns everything a server_context refers to. Set config fields before calling context().
struct test_server {
  server_config config;
  content_store content = content_store::builtin();
  server_stats stats;
  unique_fd stop = make_eventfd();
  std::string error;

  server_context context() {
    return server_context{config, test_backend, content, stats,
                          open_listener({"127.0.0.1", 0, 64, false}, error), stop.get(), {}};
  }
  void request_stop() { signal_eventfd(stop.get()); }
};

/// A client connection to `port` whose reads give up after `timeout_ms`.
inline unique_fd connect_client(uint16_t port, int timeout_ms = 3000) {
  unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return {};
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

inline void send_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

/// What arrives before the first read that times out or sees EOF (or `until` is received).
inline std::string receive(int fd, std::string_view until = {}) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
    if (!until.empty() && out.find(until) != std::string::npos) return out;
  }
}

/// True when the peer has closed `fd` (EOF or reset) within its read timeout.
inline bool closed_by_peer(int fd) {
  char c;
  ssize_t n = ::recv(fd, &c, 1, 0);
  return n == 0 || (n < 0 && errno == ECONNRESET);
}

}  // namespace httpbench::core::test_support
