#pragma once
/// The deadlines of a connection (docs/interfaces.md, "Deadlines"): which one applies depends on
/// what the connection waits for, and each has its own timeout:
///   request  waiting for a request, or the next bytes of a body: --idle-timeout, restarted by
///            every byte received
///   head     the rest of a request head: --header-timeout (at most --idle-timeout) from the
///            moment its first byte was seen, never extended
///   send     room to send a response: --send-timeout, restarted by every byte sent
///   linger   the lingering close after a rejected request: linger_ms from its start
/// serve_blocking() (io.hpp) tells a system-call policy which wait comes next; event loops keep
/// their connections in deadline_lists and call rearm() after each readiness.
#include <algorithm>
#include <array>
#include <cstdint>

#include "connection.hpp"
#include "idle_list.hpp"
#include "stop.hpp"

namespace httpbench::core {

enum class wait_kind : uint8_t { request, head, send, linger };
inline constexpr size_t wait_kinds = 4;

/// How long a lingering close waits, in all, for the peer to finish sending.
inline constexpr int linger_ms = 500;

/// The wait a connection is in once its I/O is done for now: send while output is unsent,
/// head while a head is partly received, request otherwise.
inline wait_kind next_wait(const connection& c) {
  if (c.wants_write()) return wait_kind::send;
  if (c.receiving_head()) return wait_kind::head;
  return wait_kind::request;
}

/// The timeout of each wait kind, in milliseconds.
struct wait_timeouts {
  std::array<int64_t, wait_kinds> ms;
  explicit wait_timeouts(const connection_limits& l)
      : ms{l.idle_timeout_ms, l.header_timeout_ms, l.send_timeout_ms, linger_ms} {}
  int64_t of(wait_kind kind) const { return ms[static_cast<size_t>(kind)]; }
};

/// The deadlines of many connections, for event loops: one idle_list per wait kind. Every wait
/// of one kind starts with the same timeout, so each list stays ordered by deadline and costs
/// O(1) (a head waiting again keeps its first deadline: insert() finds its place, near the
/// back). The earliest deadline is the earliest of the four fronts.
class deadline_lists {
 public:
  explicit deadline_lists(const wait_timeouts& timeouts) : timeouts_(timeouts) {}
  deadline_lists(const deadline_lists&) = delete;
  deadline_lists& operator=(const deadline_lists&) = delete;

  /// Starts a wait of `kind` at `now_ms`: its deadline is now + the kind's timeout.
  void start(idle_node& n, wait_kind kind, int64_t now_ms) {
    n.lane = static_cast<uint8_t>(kind);
    lists_[n.lane].touch(n, now_ms + timeouts_.of(kind));
  }
  /// A wait of `kind` until `deadline_ms` (a wait that resumes with the deadline it had).
  void start_until(idle_node& n, wait_kind kind, int64_t deadline_ms) {
    n.lane = static_cast<uint8_t>(kind);
    lists_[n.lane].insert(n, deadline_ms);
  }
  void remove(idle_node& n) { lists_[n.lane].remove(n); }
  /// The kind of the wait `n` is in (meaningful while n.linked()).
  static wait_kind kind_of(const idle_node& n) { return static_cast<wait_kind>(n.lane); }

  /// The node with the earliest deadline, or nullptr when there is none.
  idle_node* front() const {
    idle_node* first = nullptr;
    for (const idle_list& l : lists_)
      if (idle_node* n = l.front(); n != nullptr && (first == nullptr || n->deadline_ms < first->deadline_ms))
        first = n;
    return first;
  }
  /// The earliest node if its deadline is at or before `now`: expire with
  /// `while (idle_node* n = lists.expired(now))`, taking `n` out in the body.
  idle_node* expired(int64_t now) const {
    idle_node* first = front();
    return first != nullptr && first->deadline_ms <= now ? first : nullptr;
  }
  /// Milliseconds until the earliest deadline, clamped to [0, max_ms]; max_ms when none.
  int ms_until_next(int max_ms, int64_t now) const {
    idle_node* first = front();
    if (first == nullptr) return max_ms;
    int64_t left = first->deadline_ms - now;
    return static_cast<int>(left < 0 ? 0 : left > max_ms ? max_ms : left);
  }
  const wait_timeouts& timeouts() const { return timeouts_; }

 private:
  wait_timeouts timeouts_;
  std::array<idle_list, wait_kinds> lists_;
};

/// For event loops, after the I/O of one readiness of `c`: puts `n` in the wait that applies
/// now. A wait of the same kind goes on with its deadline, unless bytes moved (`progressed`) in
/// a request or send wait, which restart it; a head's deadline is never extended.
inline void rearm(deadline_lists& lists, idle_node& n, const connection& c, bool progressed,
                  int64_t now_ms) {
  wait_kind kind = next_wait(c);
  if (n.linked() && deadline_lists::kind_of(n) == kind && (kind == wait_kind::head || !progressed))
    return;
  lists.start(n, kind, now_ms);
}

/// How long a loop may wait for readiness: until the earliest deadline, at most 1 s (for ever,
/// -1, when no connection waits); once the stop's grace period has begun, until the earlier of
/// the earliest deadline and the grace period's end, at most 50 ms.
inline int loop_wait_ms(const deadline_lists& lists, const grace_period& grace, int64_t now) {
  if (grace.begun()) return std::min(grace.ms_left(50), lists.ms_until_next(50, now));
  return lists.front() == nullptr ? -1 : lists.ms_until_next(1000, now);
}

}  // namespace httpbench::core
