// libev — the SPED model written against libev 4 (Marc Lehmann's event library), the loop SXE
// is built on (the SXE posts, Hardy-Francis 2010: "node.js versus SXE 'Hello World'", 10,000
// keep-alive connections on one libev loop).
//
// One process, one thread, one libev loop on epoll: an ev_io watcher per connection whose
// callback runs the core's read and write (core::serve_ready), an ev_io on the listening socket
// that accepts until EAGAIN, an ev_io on the stop eventfd, and ONE ev_timer for every idle
// timeout. That timer is the strategy libev's manual recommends for many timeouts of the same
// length ("a doubly-linked list for your timeouts"): the core's idle_list keeps connections in
// order of last activity and the timer is armed for the front only, so an event costs no timer
// operation at all, where an ev_timer per connection would cost a heap update per request.
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

#include "core/idle_list.hpp"
#include "core/listener.hpp"
#include "core/readiness.hpp"
#include "core/server.hpp"
#include "core/stop.hpp"

namespace httpbench::backend {

const core::backend_info info{
    .name = "libev",
    .model = "event-driven, single process, libev loop",
    .summary =
        "one process, one libev loop (epoll): an ev_io per connection, one ev_timer for all idle "
        "timeouts",
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
    idle.owner = this;
  }
  ev_io io;  ///< io.data points back here
  core::connection conn;
  core::idle_node idle;
  core::unique_fd socket;
  bool lingering = false;  ///< half-closed after a rejected request; draining until EOF
};

class libev_server {
 public:
  explicit libev_server(core::server_context& ctx)
      : ctx_(ctx),
        acceptor_(ctx.listener.get()),
        grace_(ctx.grace()),
        timeout_ms_(ctx.config.idle_timeout_s * 1000) {}

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
    ev_init(&idle_timer_, on_idle_timer);
    ev_init(&grace_timer_, on_grace_over);
    ev_io_start(loop_, &listen_io_);
    ev_io_start(loop_, &stop_io_);
    ev_run(loop_, 0);
    // Past the grace period: whatever is left is dropped (the slots close their sockets).
    for (auto& s : slots_)
      if (s) ev_io_stop(loop_, &s->io);
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
  static void on_idle_timer(struct ev_loop* loop, ev_timer*, int) { self(loop).expire_idle(); }
  static void on_grace_over(struct ev_loop* loop, ev_timer*, int) { ev_break(loop, EVBREAK_ALL); }

  void accept_all() {
    // Accept until EAGAIN (or the connection cap): one wake-up serves a whole burst.
    while (live_ < ctx_.config.max_conns) {
      core::unique_fd socket;
      if (acceptor_.accept_one(socket, true) != core::accept_status::accepted) return;
      ctx_.stats.add(ctx_.stats.connections);
      int fd = socket.get();
      if (static_cast<size_t>(fd) >= slots_.size()) slots_.resize(static_cast<size_t>(fd) * 2 + 1);
      slot& s = *(slots_[fd] = std::make_unique<slot>(ctx_, std::move(socket)));
      ev_io_init(&s.io, on_io, fd, EV_READ);
      s.io.data = &s;
      ev_io_start(loop_, &s.io);
      idle_.touch(s.idle, core::idle_list::now_ms() + timeout_ms_);
      ++live_;
      arm_idle_timer();
    }
    // At the cap: stop listening until a connection closes; the rest wait in the backlog.
    ev_io_stop(loop_, &listen_io_);
    listen_paused_ = true;
  }

  void on_ready(slot& s, int revents) {
    int fd = s.socket.get();
    if (s.lingering) {
      if (core::drain_linger(fd)) close_slot(s, false);
      return;
    }
    switch (core::serve_ready(fd, s.conn, (revents & EV_READ) != 0, grace_.begun())) {
      case core::ready_next::close:
        return close_slot(s, false);
      case core::ready_next::close_lost:
        return close_slot(s, true);
      case core::ready_next::linger:
        return start_lingering(s);
      case core::ready_next::watch:
        break;
    }
    int want = (s.conn.wants_read() ? EV_READ : 0) | (s.conn.wants_write() ? EV_WRITE : 0);
    if (want != (s.io.events & (EV_READ | EV_WRITE))) watch(s, want);
    idle_.touch(s.idle, core::idle_list::now_ms() + timeout_ms_);
  }

  // libev's documented way to change what a started watcher waits for.
  void watch(slot& s, int events) {
    ev_io_stop(loop_, &s.io);
    ev_io_set(&s.io, s.socket.get(), events);
    if (events != 0) ev_io_start(loop_, &s.io);
  }

  // Lingering close (io.hpp): the error response is out, the peer may still be sending.
  void start_lingering(slot& s) {
    core::start_linger(s.socket.get());
    s.lingering = true;
    watch(s, EV_READ);
    idle_.touch(s.idle, core::idle_list::now_ms() + core::linger_ms);
  }

  void close_slot(slot& s, bool io_error) {
    if (io_error) s.conn.broken();
    ev_io_stop(loop_, &s.io);
    idle_.remove(s.idle);
    slots_[s.socket.get()].reset();  // closes the socket
    --live_;
    if (grace_.begun()) {
      if (live_ == 0) ev_break(loop_, EVBREAK_ALL);
    } else if (listen_paused_) {
      ev_io_start(loop_, &listen_io_);
      listen_paused_ = false;
    }
  }

  // The one timer for every idle connection: armed for the front of the idle list. A touch
  // only moves a connection to the back, so the timer may fire early, never late: it then
  // expires what is due and re-arms for the new front.
  void arm_idle_timer() {
    if (ev_is_active(&idle_timer_)) return;
    core::idle_node* first = idle_.front();
    if (first == nullptr) return;
    // At least 1 ms: the coarse clock may not have reached a deadline the timer already has.
    int64_t ms = std::max<int64_t>(first->deadline_ms - core::idle_list::now_ms(), 1);
    ev_timer_set(&idle_timer_, static_cast<double>(ms) / 1000.0, 0.0);
    ev_timer_start(loop_, &idle_timer_);
  }

  void expire_idle() {
    int64_t now = core::idle_list::now_ms();
    while (core::idle_node* first = idle_.expired(now)) {
      slot* s = static_cast<slot*>(first->owner);
      close_slot(*s, !s->lingering);
    }
    arm_idle_timer();
  }

  // The stop policy (stop.hpp): no more accepting; idle keep-alive connections go now, ones in
  // the middle of a request get the grace period.
  void begin_stop() {
    grace_.begin();
    ev_io_stop(loop_, &listen_io_);
    ev_io_stop(loop_, &stop_io_);
    for (auto& s : slots_)
      if (s && s->conn.idle()) close_slot(*s, false);
    if (live_ == 0) return ev_break(loop_, EVBREAK_ALL);
    ev_timer_set(&grace_timer_, static_cast<double>(grace_.ms_left(INT32_MAX)) / 1000.0, 0.0);
    ev_timer_start(loop_, &grace_timer_);
  }

  core::server_context& ctx_;
  core::acceptor acceptor_;
  core::grace_period grace_;
  int64_t timeout_ms_;
  struct ev_loop* loop_ = nullptr;
  ev_io listen_io_;
  ev_io stop_io_;
  ev_timer idle_timer_;
  ev_timer grace_timer_;
  core::idle_list idle_;
  std::vector<std::unique_ptr<slot>> slots_;  ///< indexed by descriptor
  int live_ = 0;
  bool listen_paused_ = false;
};

}  // namespace

int run(core::server_context& ctx) {
  return libev_server(ctx).run();
}

}  // namespace httpbench::backend
