#pragma once
/// One readiness event on a connection, for event loops that are not core::event_loop: the
/// loops of general-purpose event libraries (libev, libuv), where the library calls back per
/// socket and the backend only has to decide what to watch next and when its timer fires. The
/// decisions are the ones event_loop makes (event_loop_impl.hpp): read what arrived, write as
/// soon as a response is queued, count a socket that failed as broken(), close when the
/// connection is done (or idle at the stop), linger after a rejected request, and keep the
/// connection in the wait of its deadline_lists that applies now (deadlines.hpp), so the
/// deadlines and the counters mean the same as in every other backend.
#include <algorithm>
#include <cstdint>
#include <optional>

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

/// The bookkeeping of the one library timer (an ev_timer, a uv_timer_t) that serves every
/// deadline of a deadline_lists: armed for the earliest deadline, it never fires late and may
/// fire early (the wait it was armed for moved on); then expire() ends what is due and says
/// what to arm it for next. A wait that starts or restarts with the timeout of its kind goes to
/// the back of its list, so only one whose deadline comes before the timer's (a short wait
/// behind long ones) needs the timer restarted: a keep-alive request costs no timer operation.
class deadline_timer {
 public:
  /// Whether the timer must be re-armed for `n`, a wait that now ends at n.deadline_ms.
  bool must_cover(const idle_node& n) const { return n.deadline_ms < armed_for_; }

  /// Notes the timer armed for `deadline_ms` and returns its delay in ms: at least 1, since
  /// the coarse clock may not have reached a deadline the timer already has.
  int64_t arm(int64_t deadline_ms) {
    armed_for_ = deadline_ms;
    return std::max<int64_t>(deadline_ms - idle_list::now_ms(), 1);
  }

  /// The timer fired: `end(node)` for each connection whose deadline has passed (it calls
  /// deadline_passed() and closes the connection, taking the node out of the lists); returns
  /// the deadline to arm the timer for next, if any.
  template <class End>
  std::optional<int64_t> expire(deadline_lists& lists, End end) {
    armed_for_ = INT64_MAX;
    int64_t now = idle_list::now_ms();
    while (idle_node* first = lists.expired(now)) end(*first);
    if (idle_node* first = lists.front()) return first->deadline_ms;
    return std::nullopt;
  }

 private:
  int64_t armed_for_ = INT64_MAX;  ///< INT64_MAX: not armed
};

}  // namespace httpbench::core
