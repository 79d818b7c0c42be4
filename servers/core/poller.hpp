#pragma once
/// Readiness notification behind one small interface, one class per mechanism (as in Redis'
/// ae_epoll.c / ae_select.c): backends are templates over the poller, so the choice costs
/// nothing at run time. Level-triggered throughout: a backend that does not drain a socket is
/// told again.
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "unique_fd.hpp"

namespace httpbench::core {

/// Event bits used by every poller.
inline constexpr uint32_t poll_read = 1;
inline constexpr uint32_t poll_write = 2;
inline constexpr uint32_t poll_hangup = 4;
/// Only for add() of a listening socket shared by several processes' pollers: wake one waiter
/// per event (EPOLLEXCLUSIVE). Such a registration can be removed but not modified; poll and
/// select ignore the bit.
inline constexpr uint32_t poll_exclusive = 8;

struct ready_event {
  int fd;
  uint32_t events;  ///< poll_read | poll_write | poll_hangup
};

class epoll_poller {
 public:
  static constexpr const char* name = "epoll";
  epoll_poller();
  epoll_poller(const epoll_poller&) = delete;
  epoll_poller& operator=(const epoll_poller&) = delete;
  /// Each returns false with errno set on failure.
  bool add(int fd, uint32_t events);
  bool modify(int fd, uint32_t events);
  void remove(int fd);
  /// `fd` is about to be closed, and no other descriptor refers to its socket: closing it takes
  /// it out of the interest list, so no EPOLL_CTL_DEL (one system call per connection less).
  void forget(int) {}
  /// Waits up to timeout_ms (-1: for ever); returns the number of events written to `out`.
  int wait(std::span<ready_event> out, int timeout_ms);
  /// The largest fd this mechanism can watch, or -1 for no limit.
  static int max_fd() { return -1; }

 private:
  unique_fd epfd_;
  std::vector<epoll_event> buf_;
};

class poll_poller {
 public:
  static constexpr const char* name = "poll";
  bool add(int fd, uint32_t events);
  bool modify(int fd, uint32_t events);
  void remove(int fd);
  void forget(int fd) { remove(fd); }  ///< `fd` is about to be closed
  int wait(std::span<ready_event> out, int timeout_ms);
  static int max_fd() { return -1; }

 private:
  std::vector<pollfd> fds_;
  std::vector<int> index_;  ///< fd -> position in fds_, -1 when absent
  size_t cursor_ = 0;       ///< where the last wait stopped reporting, for fairness
};

class select_poller {
 public:
  static constexpr const char* name = "select";
  select_poller();
  bool add(int fd, uint32_t events);
  bool modify(int fd, uint32_t events);
  void remove(int fd);
  void forget(int fd) { remove(fd); }  ///< `fd` is about to be closed
  int wait(std::span<ready_event> out, int timeout_ms);
  /// select() cannot watch descriptors at or above FD_SETSIZE.
  static int max_fd() { return FD_SETSIZE - 1; }

 private:
  fd_set read_{}, write_{};
  std::vector<int> fds_;  ///< watched descriptors, for building the result
  int max_ = -1;
};

}  // namespace httpbench::core
