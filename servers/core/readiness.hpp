#pragma once
/// One readiness event on a connection, for event loops that are not core::event_loop: the
/// loops of general-purpose event libraries (libev, libuv), where the library calls back per
/// socket and the backend only has to decide what to watch next and when its timer fires. The
/// decisions are the ones event_loop makes (event_loop_impl.hpp): read what arrived, write as
/// soon as a response is queued, count a socket that failed as broken(), close when the
/// connection is done (or idle at the stop), linger after a rejected request, and keep the
/// connection in the wait of its deadline_lists that applies now (deadlines.hpp), so the
/// deadlines and the counters mean the same as in every other backend.
#include "connection.hpp"
#include "deadlines.hpp"
#include "io.hpp"

namespace httpbench::core {

/// What the loop does with a connection after serve_ready().
enum class ready_next {
  watch,   ///< keep it: watch for wants_read() / wants_write(); its node is in the wait that
           ///< applies now (rearm()), so arm the loop's timer if node.deadline_ms is earlier
  close,   ///< close it (and take its node out of the lists): it is done, idle at the stop, or
           ///< its socket failed (broken() has been called)
  linger,  ///< a rejected request's response is out and the lingering close has begun
           ///< (start_linger(), the node in the linger wait): watch for reading only, call
           ///< drain_linger() on each readable event and close when it says done
};

/// Serves one readiness event on the non-blocking socket `fd` of `c`, whose deadline is `node`
/// in `lists`: reads once when `readable` and the connection wants input, then writes whatever
/// is queued until the socket would block, then re-arms `node` (a request or send wait that
/// moved bytes restarts; a head's deadline never moves). `stopping`: the stop has begun, so a
/// connection left idle is closed (the stop policy).
inline ready_next serve_ready(int fd, connection& c, bool readable, bool stopping,
                              deadline_lists& lists, idle_node& node) {
  uint64_t moved = c.bytes_moved();
  if ((readable && c.wants_read() && read_into(fd, c) == io_status::error) ||
      (c.wants_write() && write_from(fd, c) == io_status::error)) {
    c.broken();
    return ready_next::close;
  }
  if (c.wants_close()) {
    if (!c.closing_on_error()) return ready_next::close;
    start_linger(fd);
    lists.start(node, wait_kind::linger, idle_list::now_ms());
    return ready_next::linger;
  }
  if (stopping && c.idle()) return ready_next::close;
  rearm(lists, node, c, c.bytes_moved() != moved, idle_list::now_ms());
  return ready_next::watch;
}

/// The deadline of `c` (a wait of `kind`) has passed: what to do before closing its socket `fd`.
/// A lingering close just ends; a connection that would not take its response is reset
/// (abort_on_close), so what it did not take does not stay queued in the kernel; every wait
/// but the lingering close ends as timed_out() (an error only inside a request).
inline void deadline_passed(int fd, connection& c, wait_kind kind) {
  if (kind == wait_kind::linger) return;
  if (kind == wait_kind::send) abort_on_close(fd);
  c.timed_out();
}

}  // namespace httpbench::core
