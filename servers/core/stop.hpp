#pragma once
/// The one stop policy of every backend (docs/interfaces.md, "Stop"): once SIGTERM or SIGINT
/// arrives, stop accepting, end idle connections at once (read_idle() in io.hpp: an idle
/// connection reads nothing more, answers what its peer already sent, and closes), let
/// connections inside a request finish within one grace period (--grace), then give up on the
/// rest. Here: the stop flag, the grace period, the count of live connections a multi-threaded
/// process waits on, and the sockets whose blocking reads the stop must end from outside.
#include <atomic>
#include <climits>
#include <csignal>
#include <cstdint>
#include <mutex>

#include "idle_list.hpp"
#include "unique_fd.hpp"

namespace httpbench::core {

/// Set by the SIGTERM/SIGINT handler (and, in a forked child that serves one connection, by
/// its own handler); readable from any thread and from signal handlers.
extern volatile std::sig_atomic_t stop_flag;

/// --grace: how long connections still inside a request may run on after the stop. The clock
/// is idle_list::now_ms(), as in the event loops' timers.
class grace_period {
 public:
  explicit grace_period(int grace_ms) : grace_ms_(grace_ms) {}

  /// The stop arrived: the period starts now. Later calls change nothing.
  void begin() {
    if (deadline_ms_ < 0) deadline_ms_ = idle_list::now_ms() + grace_ms_;
  }
  bool begun() const { return deadline_ms_ >= 0; }
  /// True once the period has begun and run out.
  bool over() const { return begun() && idle_list::now_ms() >= deadline_ms_; }
  /// Milliseconds left, clamped to [0, max_ms]; max_ms before begin(). A poll timeout.
  int ms_left(int max_ms) const {
    if (!begun()) return max_ms;
    int64_t left = deadline_ms_ - idle_list::now_ms();
    return static_cast<int>(left < 0 ? 0 : left > max_ms ? max_ms : left);
  }
  /// For schedulers that must not block the process (ST, Pth): naps with `nap(ms)` until
  /// `done()` or the period is over; returns done().
  template <class Done, class Nap>
  bool wait(Done done, Nap nap) const {
    while (!done() && !over()) nap(ms_left(10));
    return done();
  }

 private:
  int64_t grace_ms_;
  int64_t deadline_ms_ = -1;
};

/// The connections a multi-threaded process holds open (thread, threadpool, pipeline). A thread
/// that must wait for the count to fall — below --max-conns before it accepts again, to zero at
/// the stop — sleeps in poll() on an eventfd that a closing connection signals only while
/// someone waits, beside the stop fd: nobody wakes up on a timer to look.
/// opened() and closed() may be called from any thread; one thread at a time may wait.
class live_count {
 public:
  live_count();
  live_count(const live_count&) = delete;
  live_count& operator=(const live_count&) = delete;

  int get() const { return count_.load(); }
  void opened() { count_.fetch_add(1); }
  void closed();
  /// Blocks until fewer than `limit` connections are open (true) or `stop_fd` becomes readable
  /// (false).
  bool wait_below(int limit, int stop_fd);
  /// Blocks until no connection is open (true) or `grace` is over (false).
  bool drain(const grace_period& grace);

 private:
  bool wait_until_below(int limit, int stop_fd, const grace_period* grace);

  // Sequentially consistent: closed()'s decrement-then-look and the waiter's
  // announce-then-look must not pass each other, or a wake-up could be lost.
  std::atomic<int> count_{0};
  std::atomic<int> waiting_below_{INT_MIN};  ///< the waiter's limit; INT_MIN: nobody waits
  unique_fd wake_;
};

/// The sockets a process's threads serve with blocking reads (thread, threadpool). A thread
/// blocked in read() cannot look at a flag, so the stop reaches it from outside: end_reading()
/// shuts reading down on every registered socket (the read returns what the peer already sent,
/// then EOF), and a socket registered after that has its reading shut down at once. A request
/// already received is still answered; a response being written goes on within the grace.
class served_sockets {
 public:
  /// Registers a socket for as long as it lives (on the stack of the thread serving it).
  class entry {
   public:
    entry(served_sockets& set, int fd);
    ~entry();
    entry(const entry&) = delete;
    entry& operator=(const entry&) = delete;

   private:
    friend class served_sockets;
    served_sockets& set_;
    int fd_;
    entry* prev_ = nullptr;
    entry* next_ = nullptr;
  };

  served_sockets() = default;
  served_sockets(const served_sockets&) = delete;
  served_sockets& operator=(const served_sockets&) = delete;

  /// The stop: ends reading on every socket registered now or later.
  void end_reading();

 private:
  std::mutex mutex_;
  entry* first_ = nullptr;
  bool ended_ = false;
};

}  // namespace httpbench::core
