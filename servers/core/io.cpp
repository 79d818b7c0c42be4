#include "io.hpp"

#include "server.hpp"

namespace httpbench::core {

served serve_socket(server_context& ctx, int fd) {
  connection c(ctx.content, ctx.stats, ctx.limits());
  return serve_blocking<blocking_io>(fd, c);
}

}  // namespace httpbench::core
