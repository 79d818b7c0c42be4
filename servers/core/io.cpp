#include "io.hpp"

#include "server.hpp"

namespace httpbench::core {

served serve_socket(server_context& ctx, int fd) {
  connection c(ctx.content, ctx.stats, ctx.limits());
  timeval tv{ctx.config.idle_timeout_s, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return serve_blocking(fd, c);
}

}  // namespace httpbench::core
