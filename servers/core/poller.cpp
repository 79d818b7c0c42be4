#include "poller.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace httpbench::core {
namespace {

uint32_t to_epoll(uint32_t events) {
  // EPOLLEXCLUSIVE refuses EPOLLRDHUP (EINVAL); a listening socket never half-closes anyway.
  if (events & poll_exclusive)
    return (events & poll_read ? uint32_t(EPOLLIN) : 0u) | uint32_t(EPOLLEXCLUSIVE);
  return (events & poll_read ? EPOLLIN | EPOLLRDHUP : 0u) | (events & poll_write ? EPOLLOUT : 0u);
}

}  // namespace

// ---- epoll ----

epoll_poller::epoll_poller() : epfd_(::epoll_create1(EPOLL_CLOEXEC)), buf_(1024) {
  if (!epfd_) {
    std::fprintf(stderr, "epoll_create1: %s\n", std::strerror(errno));
    std::abort();
  }
}

bool epoll_poller::add(int fd, uint32_t events) {
  epoll_event ev{};
  ev.events = to_epoll(events);
  ev.data.fd = fd;
  return ::epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, fd, &ev) == 0;
}

bool epoll_poller::modify(int fd, uint32_t events) {
  epoll_event ev{};
  ev.events = to_epoll(events);
  ev.data.fd = fd;
  return ::epoll_ctl(epfd_.get(), EPOLL_CTL_MOD, fd, &ev) == 0;
}

void epoll_poller::remove(int fd) { ::epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, fd, nullptr); }

int epoll_poller::wait(std::span<ready_event> out, int timeout_ms) {
  int max = static_cast<int>(std::min(out.size(), buf_.size()));
  int n = ::epoll_wait(epfd_.get(), buf_.data(), max, timeout_ms);
  if (n < 0) return 0;  // EINTR: the caller re-checks its stop flag and timers
  for (int i = 0; i < n; ++i) {
    uint32_t e = buf_[i].events;
    out[i] = {buf_[i].data.fd,
              (e & (EPOLLIN | EPOLLRDHUP) ? uint32_t(poll_read) : 0u) |
                  (e & EPOLLOUT ? uint32_t(poll_write) : 0u) |
                  (e & (EPOLLERR | EPOLLHUP) ? uint32_t(poll_hangup) : 0u)};
  }
  return n;
}

// ---- poll ----

bool poll_poller::add(int fd, uint32_t events) {
  if (static_cast<size_t>(fd) >= index_.size()) index_.resize(static_cast<size_t>(fd) + 1, -1);
  if (index_[fd] >= 0) {
    errno = EEXIST;
    return false;
  }
  index_[fd] = static_cast<int>(fds_.size());
  fds_.push_back({fd, static_cast<short>((events & poll_read ? POLLIN : 0) |
                                          (events & poll_write ? POLLOUT : 0)),
                  0});
  return true;
}

bool poll_poller::modify(int fd, uint32_t events) {
  if (static_cast<size_t>(fd) >= index_.size() || index_[fd] < 0) {
    errno = ENOENT;
    return false;
  }
  fds_[index_[fd]].events =
      static_cast<short>((events & poll_read ? POLLIN : 0) | (events & poll_write ? POLLOUT : 0));
  return true;
}

void poll_poller::remove(int fd) {
  if (static_cast<size_t>(fd) >= index_.size() || index_[fd] < 0) return;
  size_t pos = static_cast<size_t>(index_[fd]);
  fds_[pos] = fds_.back();
  index_[fds_[pos].fd] = static_cast<int>(pos);
  fds_.pop_back();
  index_[fd] = -1;
}

int poll_poller::wait(std::span<ready_event> out, int timeout_ms) {
  int n = ::poll(fds_.data(), fds_.size(), timeout_ms);
  if (n <= 0) return 0;
  // Report from where the previous wait stopped, so that with more ready descriptors than
  // `out` holds no descriptor starves.
  int count = 0;
  size_t size = fds_.size();
  if (cursor_ >= size) cursor_ = 0;
  for (size_t k = 0; k < size && static_cast<size_t>(count) < out.size(); ++k) {
    const pollfd& p = fds_[(cursor_ + k) % size];
    if (p.revents == 0) continue;
    out[count++] = {p.fd, (p.revents & POLLIN ? uint32_t(poll_read) : 0u) |
                              (p.revents & POLLOUT ? uint32_t(poll_write) : 0u) |
                              (p.revents & (POLLERR | POLLHUP | POLLNVAL) ? uint32_t(poll_hangup)
                                                                          : 0u)};
    if (static_cast<size_t>(count) == out.size()) cursor_ = (cursor_ + k + 1) % size;
  }
  return count;
}

// ---- select ----

select_poller::select_poller() {
  FD_ZERO(&read_);
  FD_ZERO(&write_);
}

bool select_poller::add(int fd, uint32_t events) {
  if (fd >= FD_SETSIZE) {
    errno = EMFILE;
    return false;
  }
  fds_.push_back(fd);
  max_ = std::max(max_, fd);
  return modify(fd, events);
}

bool select_poller::modify(int fd, uint32_t events) {
  if (fd >= FD_SETSIZE) {
    errno = EMFILE;
    return false;
  }
  if (events & poll_read) FD_SET(fd, &read_); else FD_CLR(fd, &read_);
  if (events & poll_write) FD_SET(fd, &write_); else FD_CLR(fd, &write_);
  return true;
}

void select_poller::remove(int fd) {
  if (fd >= FD_SETSIZE) return;
  FD_CLR(fd, &read_);
  FD_CLR(fd, &write_);
  auto it = std::find(fds_.begin(), fds_.end(), fd);
  if (it != fds_.end()) {
    *it = fds_.back();
    fds_.pop_back();
  }
  if (fd == max_) max_ = fds_.empty() ? -1 : *std::max_element(fds_.begin(), fds_.end());
}

int select_poller::wait(std::span<ready_event> out, int timeout_ms) {
  // select() overwrites its sets, so it works on copies: this O(n) copy and scan per call is
  // exactly the cost von Leitner's measurements show.
  fd_set r = read_, w = write_;
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  int n = ::select(max_ + 1, &r, &w, nullptr, timeout_ms < 0 ? nullptr : &tv);
  if (n <= 0) return 0;
  int count = 0;
  for (int fd : fds_) {
    if (static_cast<size_t>(count) == out.size()) break;
    uint32_t e = (FD_ISSET(fd, &r) ? uint32_t(poll_read) : 0u) |
                 (FD_ISSET(fd, &w) ? uint32_t(poll_write) : 0u);
    if (e != 0) out[count++] = {fd, e};
  }
  return count;
}

}  // namespace httpbench::core
