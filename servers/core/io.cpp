#include "io.hpp"

#include "server.hpp"

#include <poll.h>
#include <time.h>

namespace httpbench::core {

void lingering_close(int fd, int max_wait_ms) {
  ::shutdown(fd, SHUT_WR);
  timespec start{};
  clock_gettime(CLOCK_MONOTONIC, &start);
  char sink[4096];
  for (;;) {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    long elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
    if (elapsed >= max_wait_ms) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(max_wait_ms - elapsed)) <= 0) break;
    ssize_t n = ::recv(fd, sink, sizeof sink, MSG_DONTWAIT);
    if (n <= 0 && !(n < 0 && (errno == EINTR || errno == EAGAIN))) break;
  }
  ::close(fd);
}

bool serve_blocking_socket(server_context& ctx, int fd) {
  connection c(ctx.content, ctx.stats, ctx.limits());
  timeval tv{ctx.config.idle_timeout_s, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  bool clean = serve_blocking(fd, c);
  if (!clean && !c.idle()) ctx.stats.add(ctx.stats.errors);
  return c.closing_on_error();
}

void close_served(int fd, bool rejected) {
  if (rejected) lingering_close(fd);
  else ::close(fd);
}

}  // namespace httpbench::core
