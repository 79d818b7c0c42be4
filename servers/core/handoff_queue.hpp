#pragma once
/// The hand-off between the thread stages of a staged server (pipeline): a bounded FIFO whose
/// pushes and takes move whole batches under one lock, and which wakes its consumer once per
/// batch rather than once per item. What crosses it changes owner: the queue's mutex orders the
/// producer's last access to an item before the consumer's first.
///
/// A consumer sleeps in one of two ways. A stage that also waits for sockets sleeps in
/// epoll/poll on an eventfd that the queue signals when it goes from empty to non-empty; it
/// calls clear_eventfd() and then take_all(), in that order, so a push that lands between the
/// two either is taken now or signals the eventfd again. A stage that only waits for the queue
/// sleeps in take_wait() on a condition variable.
#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <span>
#include <vector>

#include "unique_fd.hpp"  // signal_eventfd, clear_eventfd

namespace httpbench::core {

/// `T` is what is handed on, typically a pointer to a connection.
template <class T>
class handoff_queue {
 public:
  /// A capacity for queues whose producers must never block, e.g. return paths that would
  /// otherwise close a wait cycle between stages.
  static constexpr size_t unbounded = SIZE_MAX;

  /// Holds at most `capacity` (>= 1) items. With `wake_fd` >= 0 (an eventfd, not owned) the
  /// consumer sleeps on it and takes with take_all(); with -1 consumers sleep in take_wait(),
  /// and a push wakes one of them for every `batch` items it adds: enough hands for the work,
  /// no more wake-ups than that.
  handoff_queue(size_t capacity, int wake_fd, size_t batch = 1)
      : capacity_(capacity), wake_fd_(wake_fd), batch_(std::max<size_t>(batch, 1)) {}
  handoff_queue(const handoff_queue&) = delete;
  handoff_queue& operator=(const handoff_queue&) = delete;

  /// Appends `items` in order, blocking while the queue is full: a batch larger than the room
  /// left goes in as room appears, one lock per part. Returns false, with the rest not
  /// appended, when the queue is (or gets) shut down before every item is in.
  bool push(std::span<const T> items) {
    while (!items.empty()) {
      std::unique_lock lock(mutex_);
      not_full_.wait(lock, [&] { return shut_ || items_.size() < capacity_; });
      if (shut_) return false;
      bool was_empty = items_.empty();
      size_t n = std::min(items.size(), capacity_ - items_.size());
      items_.insert(items_.end(), items.begin(), items.begin() + static_cast<ptrdiff_t>(n));
      items = items.subspan(n);
      lock.unlock();
      if (wake_fd_ >= 0) {
        if (was_empty) signal_eventfd(wake_fd_);
      } else {
        for (size_t i = 0; i < n; i += batch_) not_empty_.notify_one();
      }
    }
    return true;
  }

  /// push(), then clears `items` (also when the push failed: the queue is shutting down).
  bool push_and_clear(std::vector<T>& items) {
    bool pushed = push(items);
    items.clear();
    return pushed;
  }

  /// Appends everything queued to `out`, oldest first, without waiting (possibly nothing).
  void take_all(std::vector<T>& out) {
    std::lock_guard lock(mutex_);
    out.insert(out.end(), items_.begin(), items_.end());
    items_.clear();
    not_full_.notify_all();
  }

  /// Waits until the queue is not empty or is shut down, then appends up to `max` (>= 1) of the
  /// oldest items to `out` and returns how many. Items queued before a shut-down can still be
  /// taken: 0 means shut down and empty.
  size_t take_wait(std::vector<T>& out, size_t max) {
    std::unique_lock lock(mutex_);
    not_empty_.wait(lock, [&] { return shut_ || !items_.empty(); });
    size_t n = std::min(max, items_.size());
    auto end = items_.begin() + static_cast<ptrdiff_t>(n);
    out.insert(out.end(), items_.begin(), end);
    items_.erase(items_.begin(), end);
    not_full_.notify_all();
    return n;
  }

  /// Makes every push, blocked or future, return false, and wakes every take_wait(). Does not
  /// signal the eventfd: a stage sleeping on it is woken by whoever stops the server.
  void shut_down() {
    std::lock_guard lock(mutex_);
    shut_ = true;
    not_full_.notify_all();
    not_empty_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable not_full_, not_empty_;
  std::deque<T> items_;
  size_t capacity_;
  int wake_fd_;
  size_t batch_;
  bool shut_ = false;
};

}  // namespace httpbench::core
