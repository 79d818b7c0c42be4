#include "io.hpp"

#include "server.hpp"

namespace httpbench::core {

namespace {

// What every socket accepted from the listener has: set once by preset_socket_timeouts(),
// before any worker thread or process exists, and only read afterwards.
int inherited_receive_ms = -1;
int inherited_send_ms = -1;

}  // namespace

// In .text.hot with the rest of the request path: serve_blocking() and read_idle() are inlined
// here, and this loop runs every keep-alive request of the thread and process models.
HTTPBENCH_HOT served serve_socket(server_context& ctx, int fd) {
  connection c(ctx.content, ctx.stats, ctx.limits());
  // This thread's last connection may have left other timeouts on its own socket.
  blocking_io::socket_fd = fd;
  blocking_io::socket_receive_ms = inherited_receive_ms;
  blocking_io::socket_send_ms = inherited_send_ms;
  served how = serve_blocking<blocking_io>(fd, c);
  // The caller closes `fd`; its number may come back as another socket.
  blocking_io::socket_fd = -1;
  return how;
}

bool preset_socket_timeouts(server_context& ctx) {
  connection_limits limits = ctx.limits();
  int receive = blocking_io::socket_timeout_ms(wait_kind::request, limits.idle_timeout_ms);
  int send = blocking_io::socket_timeout_ms(wait_kind::send, limits.send_timeout_ms);
  int fd = ctx.listener.get();
  if (!blocking_io::set_socket_timeout(fd, SO_RCVTIMEO, receive) ||
      !blocking_io::set_socket_timeout(fd, SO_SNDTIMEO, send))
    return false;
  inherited_receive_ms = receive;
  inherited_send_ms = send;
  return true;
}

}  // namespace httpbench::core
