// sped — Single-Process Event-Driven server (Pariag et al. 2007 §2.1, the userver/Flash SPED
// model; the "hand-written event-driven" point of Kerneis & Chroboczek 2009 §3).
//
// One process, one thread, non-blocking sockets and one readiness loop. What decides its
// performance: (1) it accepts until EAGAIN on every listen event, so a burst of connects costs
// one wake-up (Brecht et al.'s finding for the userver); (2) it writes a response as soon as the
// request is parsed and asks for writability (EPOLLOUT) only after a short write, so a keep-alive
// request costs one read and one writev and no epoll_ctl.
// `--set poller=epoll|poll|select` swaps the notification mechanism (von Leitner 2003) without
// touching the rest: the loop is a template over the poller.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <vector>

#include "core/idle_list.hpp"
#include "core/io.hpp"
#include "core/listener.hpp"
#include "core/poller.hpp"
#include "core/server.hpp"

namespace httpbench::backend {

const core::backend_info info{
    .name = "sped",
    .model = "event-driven, single process (SPED)",
    .summary = "one process, one thread, non-blocking sockets, one readiness loop",
    .paper = "Pariag et al. 2007 §2.1; Kerneis & Chroboczek 2009 §3",
    .default_workers = 1,
    .max_connections = 10000,
    .tunables = {{"poller", "epoll", {"epoll", "poll", "select"},
                  "event notification mechanism (select is limited to FD_SETSIZE=1024 fds)"}},
};

namespace {

using core::poll_read;
using core::poll_write;

struct slot {
  slot(const core::server_context& ctx, int fd_)
      : conn(ctx.content, ctx.stats, ctx.limits()), fd(fd_) {
    idle.owner = this;
  }
  core::connection conn;
  core::idle_node idle;
  int fd;
  uint32_t watching = poll_read;
  bool lingering = false;  ///< half-closed after a rejected request; draining until EOF
};

template <class Poller>
class event_loop {
 public:
  explicit event_loop(core::server_context& ctx)
      : ctx_(ctx), acceptor_(ctx.listen_fd), timeout_ms_(ctx.config.idle_timeout_s * 1000) {}

  int run() {
    if (!poller_.add(ctx_.listen_fd, poll_read) || !poller_.add(ctx_.stop_fd, poll_read)) {
      std::perror("httpd-sped: poller");
      return 1;
    }
    std::vector<core::ready_event> events(512);
    int64_t grace_deadline = 0;
    while (!stopping_ || (live_ > 0 && core::idle_list::now_ms() < grace_deadline)) {
      int n = poller_.wait(events, next_timeout_ms());
      for (int i = 0; i < n; ++i) {
        int fd = events[i].fd;
        if (fd == ctx_.listen_fd) accept_all();
        else if (fd == ctx_.stop_fd) grace_deadline = begin_stop();
        else if (static_cast<size_t>(fd) < slots_.size() && slots_[fd]) on_ready(*slots_[fd], events[i].events);
      }
      expire_idle();
    }
    return 0;
  }

 private:
  void accept_all() {
    // Accept until EAGAIN (or the connection cap): one wake-up serves a whole burst.
    while (live_ < ctx_.config.max_conns) {
      int fd;
      core::accept_status s = acceptor_.accept_one(fd, true);
      if (s != core::accept_status::accepted) return;
      ctx_.stats.add(ctx_.stats.connections);
      if (Poller::max_fd() >= 0 && fd > Poller::max_fd()) {
        if (!warned_fd_limit_)
          std::fprintf(stderr, "httpd-sped: %s cannot watch fd %d (limit %d); closing such "
                               "connections — use --set poller=epoll for more connections\n",
                       Poller::name, fd, Poller::max_fd());
        warned_fd_limit_ = true;
        ctx_.stats.add(ctx_.stats.errors);
        ::close(fd);
        continue;
      }
      if (static_cast<size_t>(fd) >= slots_.size()) slots_.resize(static_cast<size_t>(fd) * 2 + 1);
      slots_[fd] = std::make_unique<slot>(ctx_, fd);
      poller_.add(fd, poll_read);
      idle_.touch(slots_[fd]->idle, core::idle_list::now_ms() + timeout_ms_);
      ++live_;
    }
    // At the cap: stop listening until a connection closes; the rest wait in the backlog.
    poller_.modify(ctx_.listen_fd, 0);
    listen_paused_ = true;
  }

  void on_ready(slot& s, uint32_t events) {
    if (s.lingering) return drain_lingering(s);
    core::connection& c = s.conn;
    if ((events & (poll_read | core::poll_hangup)) && c.wants_read()) {
      core::io_status st = core::read_into(s.fd, c);
      if (st == core::io_status::error) return close_slot(s, true);
    }
    if (c.wants_write() && core::write_from(s.fd, c) == core::io_status::error)
      return close_slot(s, true);
    if (c.wants_close()) {
      if (c.closing_on_error()) return start_lingering(s);
      return close_slot(s, false);
    }
    if (stopping_ && c.idle()) return close_slot(s, false);
    uint32_t want = (c.wants_read() ? poll_read : 0) | (c.wants_write() ? poll_write : 0);
    if (want != s.watching) {
      poller_.modify(s.fd, want);
      s.watching = want;
    }
    idle_.touch(s.idle, core::idle_list::now_ms() + timeout_ms_);
  }

  // After rejecting a request the peer may still be sending; closing now would make the kernel
  // reset the connection and the client could lose our error response (lingering close).
  void start_lingering(slot& s) {
    ::shutdown(s.fd, SHUT_WR);
    s.lingering = true;
    poller_.modify(s.fd, poll_read);
    idle_.touch(s.idle, core::idle_list::now_ms() + 1000);
  }

  void drain_lingering(slot& s) {
    char sink[4096];
    ssize_t n = ::recv(s.fd, sink, sizeof sink, MSG_DONTWAIT);
    if (n <= 0 && !(n < 0 && errno == EAGAIN)) close_slot(s, false);
  }

  void close_slot(slot& s, bool io_error) {
    if (io_error && !s.conn.idle()) ctx_.stats.add(ctx_.stats.errors);
    int fd = s.fd;
    poller_.remove(fd);
    idle_.remove(s.idle);
    ::close(fd);
    slots_[fd].reset();
    --live_;
    if (listen_paused_ && !stopping_) {
      poller_.modify(ctx_.listen_fd, poll_read);
      listen_paused_ = false;
    }
  }

  int64_t begin_stop() {
    stopping_ = true;
    poller_.remove(ctx_.listen_fd);
    poller_.remove(ctx_.stop_fd);
    // Idle keep-alive connections go now; ones in the middle of a request get a grace period.
    for (auto& s : slots_)
      if (s && s->conn.idle()) close_slot(*s, false);
    return core::idle_list::now_ms() + 2000;
  }

  int next_timeout_ms() const {
    core::idle_node* first = idle_.front();
    if (stopping_) return 50;
    if (first == nullptr) return -1;
    int64_t wait = first->deadline_ms - core::idle_list::now_ms();
    return static_cast<int>(std::clamp<int64_t>(wait, 0, 1000));
  }

  void expire_idle() {
    int64_t now = core::idle_list::now_ms();
    while (core::idle_node* first = idle_.front()) {
      if (first->deadline_ms > now) break;
      slot* s = static_cast<slot*>(first->owner);
      close_slot(*s, !s->lingering);
    }
  }

  core::server_context& ctx_;
  Poller poller_;
  core::acceptor acceptor_;
  core::idle_list idle_;
  std::vector<std::unique_ptr<slot>> slots_;  ///< indexed by fd
  int64_t timeout_ms_;
  int live_ = 0;
  bool stopping_ = false;
  bool listen_paused_ = false;
  bool warned_fd_limit_ = false;
};

}  // namespace

int run(core::server_context& ctx) {
  std::string_view poller = ctx.setting("poller");
  if (poller == "poll") return event_loop<core::poll_poller>(ctx).run();
  if (poller == "select") return event_loop<core::select_poller>(ctx).run();
  return event_loop<core::epoll_poller>(ctx).run();
}

}  // namespace httpbench::backend
