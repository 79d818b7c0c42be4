#pragma once
/// One readiness event on a connection, for event loops that are not core::event_loop: the
/// loops of general-purpose event libraries (libev, libuv), where the library calls back per
/// socket and the backend only has to decide what to watch next. The decision is the one
/// event_loop makes: read what arrived, write as soon as a response is queued, close when the
/// connection is done (or idle at the stop), linger after a rejected request.
#include "connection.hpp"
#include "io.hpp"

namespace httpbench::core {

/// What the loop does with a connection after serve_ready().
enum class ready_next {
  watch,       ///< keep it: watch for wants_read() / wants_write() and restart its idle timer
  close,       ///< close it: it is done, or idle at the stop
  close_lost,  ///< close it after an I/O error: call connection::broken() first
  linger,      ///< a rejected request's response is out: start_linger(), then drain_linger()
               ///< on each readable event until it says done or linger_ms have passed
};

/// Serves one readiness event on the non-blocking socket `fd`: reads once when `readable` and
/// the connection wants input, then writes whatever is queued until the socket would block.
/// `stopping`: the stop has begun, so a connection left idle is closed (the stop policy).
inline ready_next serve_ready(int fd, connection& c, bool readable, bool stopping) {
  if (readable && c.wants_read() && read_into(fd, c) == io_status::error)
    return ready_next::close_lost;
  if (c.wants_write() && write_from(fd, c) == io_status::error) return ready_next::close_lost;
  if (c.wants_close()) return c.closing_on_error() ? ready_next::linger : ready_next::close;
  if (stopping && c.idle()) return ready_next::close;
  return ready_next::watch;
}

}  // namespace httpbench::core
