#pragma once
/// The definitions of event_loop<Poller> (event_loop.hpp). event_loop.cpp instantiates them for
/// the three real pollers; a test includes this to run the loop over a poller of its own.
// The SPED loop, moved here from servers/backends/sped.cpp so that sped and symped run the same
// code. Only what event_loop_options adds is new: the listening socket and the connection cap
// come from the options, accepts can be counted, and an EPOLLEXCLUSIVE listening registration
// is paused by removing it rather than modifying it.
#include "event_loop.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "io.hpp"
#include "poller.hpp"

namespace httpbench::core {

template <class Poller>
struct event_loop<Poller>::slot {
  slot(const server_context& ctx, unique_fd socket)
      : conn(ctx.content, ctx.stats, ctx.limits()), fd(socket.get()), owned(std::move(socket)) {
    idle.owner = this;
  }
  connection conn;
  idle_node idle;
  int fd;
  unique_fd owned;  ///< closed with the slot
  uint32_t watching = poll_read;
  bool lingering = false;  ///< half-closed after a rejected request; draining until EOF
  bool fetching = false;   ///< out of the poller while the gate fetches its file range
};

template <class Poller>
event_loop<Poller>::event_loop(server_context& ctx, const event_loop_options& options)
    : ctx_(ctx),
      options_(options),
      program_("httpd-" + std::string(ctx.info.name)),
      acceptor_(options.listen_fd, &ctx.stats),
      deadlines_(wait_timeouts(ctx.limits())),
      grace_(ctx.grace()) {
  if (options_.max_conns <= 0) options_.max_conns = ctx.config.max_conns;
}

template <class Poller>
event_loop<Poller>::~event_loop() = default;

template <class Poller>
int event_loop<Poller>::run() {
  uint32_t listen_events = poll_read | (options_.exclusive_accept ? poll_exclusive : 0);
  if (!poller_.add(options_.listen_fd, listen_events) || !poller_.add(ctx_.stop_fd, poll_read) ||
      (options_.gate != nullptr && !poller_.add(options_.gate->ready_fd(), poll_read))) {
    std::perror((program_ + ": poller").c_str());
    return 1;
  }
  std::vector<ready_event> events(512);
  while (!grace_.begun() || (live_ > 0 && !grace_.over())) {
    int n = poller_.wait(events, next_timeout_ms());
    for (int i = 0; i < n; ++i) {
      int fd = events[i].fd;
      if (fd == options_.listen_fd) accept_all();
      else if (fd == ctx_.stop_fd) begin_stop();
      else if (options_.gate != nullptr && fd == options_.gate->ready_fd()) resume_fetched();
      else if (static_cast<size_t>(fd) < slots_.size() && slots_[fd]) on_ready(*slots_[fd], events[i].events);
    }
    expire_deadlines();
  }
  // The grace period ran out: the server ends what is left (even a request whose peer has
  // half-closed and still waits for its response), so each is cut, not lost.
  for (auto& s : slots_)
    if (s && !s->lingering) s->conn.cut();
  return 0;
}

template <class Poller>
void event_loop<Poller>::accept_all() {
  // Accept until EAGAIN (or the connection cap): one wake-up serves a whole burst.
  while (live_ < options_.max_conns) {
    unique_fd socket;
    accept_status s = acceptor_.accept_one(socket, true);
    if (s != accept_status::accepted) return;
    if (options_.accepted != nullptr) options_.accepted->fetch_add(1, std::memory_order_relaxed);
    int fd = socket.get();
    if (Poller::max_fd() >= 0 && fd > Poller::max_fd()) {
      if (!warned_fd_limit_)
        std::fprintf(stderr, "%s: %s cannot watch fd %d (limit %d); closing such "
                             "connections — use --set poller=epoll for more connections\n",
                     program_.c_str(), Poller::name, fd, Poller::max_fd());
      warned_fd_limit_ = true;
      ctx_.stats.count_refused();
      continue;  // `socket` closes it
    }
    if (static_cast<size_t>(fd) >= slots_.size()) slots_.resize(static_cast<size_t>(fd) * 2 + 1);
    slots_[fd] = std::make_unique<slot>(ctx_, std::move(socket));
    poller_.add(fd, poll_read);
    deadlines_.start(slots_[fd]->idle, wait_kind::request, idle_list::now_ms());
    ++live_;
  }
  // At the cap: stop listening until a connection closes; the rest wait in the backlog (or,
  // with several loops on one socket, go to a loop that has room).
  pause_listening();
}

// EPOLLEXCLUSIVE registrations cannot be modified, only removed and added again.
template <class Poller>
void event_loop<Poller>::pause_listening() {
  if (options_.exclusive_accept) poller_.remove(options_.listen_fd);
  else poller_.modify(options_.listen_fd, 0);
  listen_paused_ = true;
}

template <class Poller>
void event_loop<Poller>::resume_listening() {
  if (options_.exclusive_accept) poller_.add(options_.listen_fd, poll_read | poll_exclusive);
  else poller_.modify(options_.listen_fd, poll_read);
  listen_paused_ = false;
}

template <class Poller>
void event_loop<Poller>::on_ready(slot& s, uint32_t events) {
  if (s.lingering) return drain_lingering(s);
  connection& c = s.conn;
  uint64_t moved = c.bytes_moved();
  if ((events & (poll_read | poll_hangup)) && c.wants_read()) {
    io_status st = read_into(s.fd, c);
    if (st == io_status::error) {
      c.broken();
      return close_slot(s);
    }
  }
  if (c.wants_write()) {
    auto gate = [this, &s](const file_range& range) {
      return options_.gate == nullptr ? range.length : options_.gate->sendable(range, &s);
    };
    io_status st = write_from(s.fd, c, gate);
    if (st == io_status::error) {
      c.broken();
      return close_slot(s);
    }
    if (st == io_status::deferred) return wait_for_disk(s);
  }
  if (c.wants_close()) {
    if (c.closing_on_error()) return start_lingering(s);
    return close_slot(s);
  }
  if (grace_.begun() && c.idle()) return close_slot(s);
  uint32_t want = (c.wants_read() ? poll_read : 0) | (c.wants_write() ? poll_write : 0);
  if (want != s.watching) {
    poller_.modify(s.fd, want);
    s.watching = want;
  }
  rearm(deadlines_, s.idle, c, c.bytes_moved() != moved, idle_list::now_ms());
}

// The gate fetches the connection's next file range: nothing to do for it until then, so it
// leaves the poller (a level-triggered hang-up would otherwise wake the loop for ever) and the
// idle list (a fetch is not idleness, and the gate holds a pointer to the slot).
template <class Poller>
void event_loop<Poller>::wait_for_disk(slot& s) {
  s.fetching = true;
  poller_.remove(s.fd);
  deadlines_.remove(s.idle);
}

template <class Poller>
void event_loop<Poller>::resume_fetched() {
  options_.gate->take_ready(fetched_);
  for (void* key : fetched_) {
    slot& s = *static_cast<slot*>(key);
    s.fetching = false;
    poller_.add(s.fd, s.watching);
    on_ready(s, poll_write);
  }
  fetched_.clear();
}

// Lingering close (io.hpp): the error response is out, the peer may still be sending.
template <class Poller>
void event_loop<Poller>::start_lingering(slot& s) {
  start_linger(s.fd);
  s.lingering = true;
  poller_.modify(s.fd, poll_read);
  deadlines_.start(s.idle, wait_kind::linger, idle_list::now_ms());
}

template <class Poller>
void event_loop<Poller>::drain_lingering(slot& s) {
  if (drain_linger(s.fd)) close_slot(s);
}

// How the connection ended has been counted by now (broken(), timed_out()) or is counted by its
// destructor (the peer's EOF, or the end of the grace period).
template <class Poller>
void event_loop<Poller>::close_slot(slot& s) {
  int fd = s.fd;
  poller_.forget(fd);  // accepted here, never shared: the close itself unregisters it from epoll
  deadlines_.remove(s.idle);
  slots_[fd].reset();  // closes the socket
  --live_;
  if (listen_paused_ && !grace_.begun()) resume_listening();
}

// The stop policy (stop.hpp): no more accepting; idle keep-alive connections go now, ones in
// the middle of a request get the grace period.
template <class Poller>
void event_loop<Poller>::begin_stop() {
  grace_.begin();
  poller_.remove(options_.listen_fd);
  poller_.remove(ctx_.stop_fd);
  for (auto& s : slots_)
    if (s && s->conn.idle()) close_slot(*s);
}

template <class Poller>
int event_loop<Poller>::next_timeout_ms() const {
  return loop_wait_ms(deadlines_, grace_, idle_list::now_ms());
}

// A lingering close that ran out just ends; any other deadline ends the connection as timed
// out (an error inside a request), and one that would not take its response is reset.
template <class Poller>
void event_loop<Poller>::expire_deadlines() {
  int64_t now = idle_list::now_ms();
  while (idle_node* first = deadlines_.expired(now)) {
    slot* s = static_cast<slot*>(first->owner);
    if (!s->lingering) {
      if (deadline_lists::kind_of(*first) == wait_kind::send) abort_on_close(s->fd);
      s->conn.timed_out();
    }
    close_slot(*s);
  }
}

}  // namespace httpbench::core
