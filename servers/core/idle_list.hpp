#pragma once
/// Idle timeouts for event-driven backends. Every connection has the same timeout, so the
/// connection touched longest ago always expires first: an intrusive list ordered by last
/// activity gives O(1) touch, remove and expiry, with no heap and no per-event allocation.
#include <algorithm>
#include <cstdint>
#include <ctime>

namespace httpbench::core {

/// Embed one in each connection slot.
struct idle_node {
  idle_node* prev = nullptr;
  idle_node* next = nullptr;
  int64_t deadline_ms = 0;
  void* owner = nullptr;  ///< the connection slot this node belongs to
  uint8_t lane = 0;       ///< which list of a deadline_lists it is in (deadlines.hpp)
  bool linked() const { return prev != nullptr; }
};

class idle_list {
 public:
  idle_list() { head_.prev = head_.next = &head_; }
  idle_list(const idle_list&) = delete;
  idle_list& operator=(const idle_list&) = delete;

  /// Moves `n` to the back with a new deadline (appends it when not yet in the list).
  void touch(idle_node& n, int64_t deadline_ms) {
    if (n.linked()) unlink(n);
    n.deadline_ms = deadline_ms;
    n.prev = head_.prev;
    n.next = &head_;
    head_.prev->next = &n;
    head_.prev = &n;
  }
  /// Puts `n` in its place by `deadline_ms`, searching from the back: O(1) when no node expires
  /// later (the usual case, a fixed timeout from now), O(k) past the k nodes that do.
  void insert(idle_node& n, int64_t deadline_ms) {
    if (n.linked()) unlink(n);
    n.deadline_ms = deadline_ms;
    idle_node* after = head_.prev;
    while (after != &head_ && after->deadline_ms > deadline_ms) after = after->prev;
    n.prev = after;
    n.next = after->next;
    after->next->prev = &n;
    after->next = &n;
  }
  void remove(idle_node& n) {
    if (n.linked()) unlink(n);
  }
  /// The node that expires first, or nullptr when empty.
  idle_node* front() const { return head_.next == &head_ ? nullptr : head_.next; }
  /// The front node if its deadline is at or before `now`, else nullptr: expire with
  /// `while (idle_node* n = list.expired(now))`, taking `n` out of the list in the body.
  idle_node* expired(int64_t now) const {
    idle_node* first = front();
    return first != nullptr && first->deadline_ms <= now ? first : nullptr;
  }
  /// Milliseconds until the front node expires, clamped to [0, max_ms]; max_ms when empty. A
  /// poll timeout for a loop that also wakes for other reasons and bounds its sleep.
  int ms_until_next(int max_ms) const {
    idle_node* first = front();
    if (first == nullptr) return max_ms;
    return static_cast<int>(std::clamp<int64_t>(first->deadline_ms - now_ms(), 0, max_ms));
  }

  /// Milliseconds of a monotonic clock, coarse (a few ms) and cheap.
  static int64_t now_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
  }

 private:
  static void unlink(idle_node& n) {
    n.prev->next = n.next;
    n.next->prev = n.prev;
    n.prev = n.next = nullptr;
  }
  idle_node head_;
};

}  // namespace httpbench::core
