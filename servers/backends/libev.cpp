// libev — the SPED model written against libev 4 (Marc Lehmann's event library), the loop SXE
// is built on (the SXE posts, Hardy-Francis 2010: "node.js versus SXE 'Hello World'", 10,000
// keep-alive connections on one libev loop).
//
// One process, one thread, one libev loop on epoll: an ev_io watcher per connection whose
// callback runs the core's read and write (core::serve_ready), an ev_io on the listening socket
// that accepts until EAGAIN, an ev_io on the stop eventfd, and ONE ev_timer for every deadline
// (idle, request head, send, lingering close). That timer is the strategy libev's manual
// recommends for many timeouts of the same length ("a doubly-linked list for your timeouts"):
// the core's deadline_lists keep one such list per kind of wait, and the timer is armed for the
// earliest front only. A wait restarted with the same timeout goes to the back of its list, so
// a keep-alive request costs no timer operation; only a wait whose deadline comes before the
// one the timer is armed for (a send or a lingering close behind idle connections) restarts it,
// where an ev_timer per connection would cost a heap update per request.
// The model is sped's; only the loop differs. What decides its performance against sped is
// what a general-purpose loop does per event that sped's hand-written loop does not:
//   - each iteration: the monotonic clock read before and after the poll (ev_now), the timer
//     heap and the pending, prepare and check queues looked at, even when empty;
//   - each ready socket: epoll's event turned into a pending watcher, queued, then invoked
//     through a function pointer (sped calls straight into its handler);
//   - interest changes (EV_WRITE after a short write) are queued and applied with epoll_ctl at
//     the next iteration, one per descriptor however often it changed in between.
// And one thing it does with fewer system calls than sped: libev never removes a descriptor
// from epoll itself (close() does it), so a connection costs one epoll_ctl (ADD) where sped
// makes two (ADD, and DEL before close): 6 system calls per request with a new connection per
// request against sped's 7 (strace -c under ab -c100), about 1.5 µs less in epoll_ctl (perf
// record). With keep-alive both make a read and a writev per request, and libev's own code is
// about 1 % of the server's CPU (perf record).
#include <ev.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <vector>

#include "core/deadlines.hpp"
#include "core/listener.hpp"
#include "core/readiness.hpp"
#include "core/server.hpp"
#include "core/stop.hpp"

namespace httpbench::backend {

const core::backend_info info{
    .name = "libev",
    .model = "event-driven, single process, libev loop",
    .summary =
        "one process, one libev loop (epoll): an ev_io per connection, one ev_timer for every "
        "deadline",
    .paper = "Hardy-Francis 2010 (SXE on libev); Pariag et al. 2007 §2.1 (SPED)",
    .category = core::backend_category::event,
    .default_workers = 1,
    .max_connections = 10000,
    .tunables = {},
};

namespace {

struct slot {
  slot(const core::server_context& ctx, core::unique_fd fd)
      : conn(ctx.content, ctx.stats, ctx.limits()), socket(std::move(fd)) {
    deadline.owner = this;
  }
  ev_io io;  ///< io.data points back here
  core::connection conn;
  core::idle_node deadline;  ///< in the core's deadline_lists while the connection lives
  core::unique_fd socket;
  bool lingering = false;  ///< half-closed after a rejected request; draining until EOF
};

class libev_server {
 public:
  explicit libev_server(core::server_context& ctx)
      : ctx_(ctx),
        acceptor_(ctx.listener.get(), &ctx.stats),
        grace_(ctx.grace()),
        deadlines_(core::wait_timeouts(ctx.limits())) {}

  int run() {
    // epoll, as sped's default: the comparison is between loops, not mechanisms.
    loop_ =
        ev_loop_new(static_cast<unsigned>(EVBACKEND_EPOLL) | static_cast<unsigned>(EVFLAG_NOENV));
    if (loop_ == nullptr) {
      std::fprintf(stderr, "httpd-libev: ev_loop_new(EVBACKEND_EPOLL) failed\n");
      return 1;
    }
    ev_set_userdata(loop_, this);
    ev_io_init(&listen_io_, on_listen, ctx_.listener.get(), EV_READ);
    ev_io_init(&stop_io_, on_stop, ctx_.stop_fd, EV_READ);
    ev_init(&deadline_timer_, on_deadline_timer);
    ev_init(&grace_timer_, on_grace_over);
    ev_io_start(loop_, &listen_io_);
    ev_io_start(loop_, &stop_io_);
    ev_run(loop_, 0);
    // Past the grace period: the server ends what is left (even a request whose peer has
    // half-closed and still waits for its response), so each is cut, not lost, as in
    // event_loop; the slots close their sockets.
    for (auto& s : slots_) {
      if (!s) continue;
      ev_io_stop(loop_, &s->io);
      if (!s->lingering) s->conn.cut();
    }
    slots_.clear();
    ev_loop_destroy(loop_);
    return 0;
  }

 private:
  static libev_server& self(struct ev_loop* loop) {
    return *static_cast<libev_server*>(ev_userdata(loop));
  }

  static void on_listen(struct ev_loop* loop, ev_io*, int) { self(loop).accept_all(); }
  static void on_stop(struct ev_loop* loop, ev_io*, int) { self(loop).begin_stop(); }
  static void on_io(struct ev_loop* loop, ev_io* w, int revents) {
    self(loop).on_ready(*static_cast<slot*>(w->data), revents);
  }
  static void on_deadline_timer(struct ev_loop* loop, ev_timer*, int) {
    self(loop).expire_deadlines();
  }
  static void on_grace_over(struct ev_loop* loop, ev_timer*, int) { ev_break(loop, EVBREAK_ALL); }

  void accept_all() {
    // Accept until EAGAIN (or the connection cap): one wake-up serves a whole burst. The
    // acceptor counts the connections it drops for lack of descriptors as refused; each
    // connection made here counts itself.
    while (live_ < ctx_.config.max_conns) {
      core::unique_fd socket;
      if (acceptor_.accept_one(socket, true) != core::accept_status::accepted) return;
      int fd = socket.get();
      if (static_cast<size_t>(fd) >= slots_.size()) slots_.resize(static_cast<size_t>(fd) * 2 + 1);
      slot& s = *(slots_[fd] = std::make_unique<slot>(ctx_, std::move(socket)));
      ev_io_init(&s.io, on_io, fd, EV_READ);
      s.io.data = &s;
      ev_io_start(loop_, &s.io);
      deadlines_.start(s.deadline, core::wait_kind::request, core::idle_list::now_ms());
      timer_covers(s.deadline);
      ++live_;
    }
    // At the cap: stop listening until a connection closes; the rest wait in the backlog.
    ev_io_stop(loop_, &listen_io_);
    listen_paused_ = true;
  }

  void on_ready(slot& s, int revents) {
    int fd = s.socket.get();
    if (revents & EV_ERROR) [[unlikely]] {
      // libev found the descriptor unusable and stopped the watcher: the socket failed.
      if (!s.lingering) s.conn.broken();
      return close_slot(s);
    }
    if (s.lingering) {
      if (core::drain_linger(fd)) close_slot(s);
      return;
    }
    switch (core::serve_ready(fd, s.conn, (revents & EV_READ) != 0, grace_.begun(), deadlines_,
                              s.deadline)) {
      case core::ready_next::close:
        return close_slot(s);
      case core::ready_next::linger:
        s.lingering = true;
        watch(s, EV_READ);
        return timer_covers(s.deadline);
      case core::ready_next::watch:
        break;
    }
    int want = (s.conn.wants_read() ? EV_READ : 0) | (s.conn.wants_write() ? EV_WRITE : 0);
    if (want != (s.io.events & (EV_READ | EV_WRITE))) watch(s, want);
    timer_covers(s.deadline);
  }

  // libev's documented way to change what a started watcher waits for.
  void watch(slot& s, int events) {
    ev_io_stop(loop_, &s.io);
    ev_io_set(&s.io, s.socket.get(), events);
    if (events != 0) ev_io_start(loop_, &s.io);
  }

  // How the connection ended has been counted by now (broken(), timed_out()) or is counted by
  // its destructor (the peer's EOF); what the grace period leaves is cut in run().
  void close_slot(slot& s) {
    ev_io_stop(loop_, &s.io);
    deadlines_.remove(s.deadline);
    slots_[s.socket.get()].reset();  // closes the socket
    --live_;
    if (grace_.begun()) {
      if (live_ == 0) ev_break(loop_, EVBREAK_ALL);
    } else if (listen_paused_) {
      ev_io_start(loop_, &listen_io_);
      listen_paused_ = false;
    }
  }

  // The one timer for every deadline (core::deadline_timer: armed for the earliest).
  void timer_covers(const core::idle_node& n) {
    if (timer_.must_cover(n)) arm_timer(n.deadline_ms);
  }

  void arm_timer(int64_t deadline_ms) {
    int64_t ms = timer_.arm(deadline_ms);
    ev_timer_stop(loop_, &deadline_timer_);
    ev_timer_set(&deadline_timer_, static_cast<double>(ms) / 1000.0, 0.0);
    ev_timer_start(loop_, &deadline_timer_);
  }

  void expire_deadlines() {
    auto next = timer_.expire(deadlines_, [this](core::idle_node& n) {
      slot& s = *static_cast<slot*>(n.owner);
      core::deadline_passed(s.socket.get(), s.conn, core::deadline_lists::kind_of(n));
      close_slot(s);
    });
    if (next) arm_timer(*next);
  }

  // The stop policy (stop.hpp): no more accepting; idle keep-alive connections go now, ones in
  // the middle of a request get the grace period (and their deadlines still hold).
  void begin_stop() {
    grace_.begin();
    ev_io_stop(loop_, &listen_io_);
    ev_io_stop(loop_, &stop_io_);
    for (auto& s : slots_)
      if (s && s->conn.idle()) close_slot(*s);
    if (live_ == 0) return ev_break(loop_, EVBREAK_ALL);
    ev_timer_set(&grace_timer_, static_cast<double>(grace_.ms_left(INT32_MAX)) / 1000.0, 0.0);
    ev_timer_start(loop_, &grace_timer_);
  }

  core::server_context& ctx_;
  core::acceptor acceptor_;
  core::grace_period grace_;
  core::deadline_lists deadlines_;
  core::deadline_timer timer_;  ///< what deadline_timer_ is armed for
  struct ev_loop* loop_ = nullptr;
  ev_io listen_io_;
  ev_io stop_io_;
  ev_timer deadline_timer_;
  ev_timer grace_timer_;
  std::vector<std::unique_ptr<slot>> slots_;  ///< indexed by descriptor
  int live_ = 0;
  bool listen_paused_ = false;
};

}  // namespace

int run(core::server_context& ctx) {
  return libev_server(ctx).run();
}

}  // namespace httpbench::backend
