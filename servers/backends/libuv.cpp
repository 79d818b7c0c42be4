// libuv — the SPED model written against libuv 1.x, the loop under node.js (the SXE posts,
// Hardy-Francis 2010, measure node against SXE's libev loop; node.js itself is a production
// comparison server in harness/production.py).
//
// One process, one thread, one uv_loop_t (epoll): a uv_poll_t per connection whose callback runs
// the core's read and write (core::serve_ready), a uv_poll_t on the listening socket that
// accepts until EAGAIN, a uv_poll_t on the stop eventfd, and ONE uv_timer_t for every deadline
// (idle, request head, send, lingering close), armed for the earliest front of the core's
// deadline_lists (one list per kind of wait) — how node itself times sockets out
// (lib/internal/timers.js: one list per duration, one libuv timer for all of them), so a
// keep-alive request costs no timer-heap operation: a wait restarted with its kind's timeout
// goes to the back of its list, and only one that ends before the timer's deadline (a send or
// a lingering close behind idle connections) restarts the timer.
//
// Why uv_poll_t and not uv_tcp_t (uv_tcp_open on the accepted socket, as node does): a uv_tcp_t
// makes libuv do the I/O — it asks for a buffer (alloc_cb), reads, calls back with the bytes,
// and each write is a uv_write_t request with its own completion callback — and libuv has no
// sendfile on a stream (uv_fs_sendfile runs on the thread pool). The core's path (read into the
// connection's buffer, one writev of several pipelined responses, sendfile for large files, the
// lingering close) would have to be rewritten around it, and the comparison with sped would
// then measure two I/O paths, not two loops. uv_poll_t is libuv's readiness handle: the loop
// is libuv's and the system calls on the socket are the core's, as in every other backend.
//
// What decides its performance against sped is what libuv does per event and per connection
// that sped's hand-written loop does not:
//   - each iteration: the clock read, the timer heap, the pending, idle, prepare, check and
//     closing queues walked, even when empty;
//   - each ready socket: the watcher found through loop->watchers[fd], then uv__poll_io, then
//     our callback (two indirect calls where sped has none);
//   - each new connection: uv_poll_init tests the descriptor (epoll_ctl ADD then DEL) and sets
//     it non-blocking again (ioctl FIONBIO), uv_poll_start first stops it (epoll_ctl DEL, which
//     fails with ENOENT) and then queues the ADD for the next iteration, and uv_close removes
//     it again (DEL) before the close callback frees the handle one iteration later: six
//     system calls where sped makes two (ADD, DEL), 11 per request with a new connection per
//     request against sped's 7 (strace -c under ab -c100);
//   - each interest change (writability after a short write) is a uv_poll_start, i.e. a DEL
//     and a queued ADD, where sped makes one MOD.
// So a new connection per request (ab) pays most: perf record puts the extra epoll_ctl calls
// at about 1 µs per request, the ioctl at 0.3 µs and libuv's own code at 0.5 µs (2 % of the
// server's CPU). With keep-alive every backend makes a read and a writev per request, no
// epoll_ctl, and libuv's own code is under 1 % of the server's CPU.
#include <uv.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <optional>

#include "core/deadlines.hpp"
#include "core/listener.hpp"
#include "core/readiness.hpp"
#include "core/server.hpp"
#include "core/stop.hpp"

namespace httpbench::backend {

const core::backend_info info{
    .name = "libuv",
    .model = "event-driven, single process, libuv loop",
    .summary =
        "one process, one libuv loop (epoll): a uv_poll_t per connection, one uv_timer_t for "
        "every deadline",
    .paper = "node.js's loop (Hardy-Francis 2010 measures node); Pariag et al. 2007 §2.1 (SPED)",
    .category = core::backend_category::event,
    .default_workers = 1,
    .max_connections = 10000,
    .tunables = {},
};

namespace {

/// A connection and its poll handle. Freed in the handle's close callback, one loop iteration
/// after uv_close(); its socket is closed at once (libuv allows it after uv_close()). The
/// connection is made once libuv has taken the socket, so a socket it refuses was never served.
struct slot {
  explicit slot(core::unique_fd fd) : socket(std::move(fd)) {
    deadline.owner = this;
    poll.data = this;
  }
  uv_poll_t poll;
  std::optional<core::connection> conn;  ///< made right after uv_poll_init_socket()
  core::idle_node deadline;  ///< in the core's deadline_lists while the connection lives
  core::unique_fd socket;
  int watching = UV_READABLE;
  bool lingering = false;  ///< half-closed after a rejected request; draining until EOF
};

class libuv_server {
 public:
  explicit libuv_server(core::server_context& ctx)
      : ctx_(ctx),
        acceptor_(ctx.listener.get(), &ctx.stats),
        grace_(ctx.grace()),
        deadlines_(core::wait_timeouts(ctx.limits())) {}

  int run() {
    if (int err = uv_loop_init(&loop_); err != 0) {
      std::fprintf(stderr, "httpd-libuv: uv_loop_init: %s\n", uv_strerror(err));
      return 1;
    }
    loop_.data = this;
    uv_poll_init(&loop_, &listen_poll_, ctx_.listener.get());
    uv_poll_init(&loop_, &stop_poll_, ctx_.stop_fd);
    uv_timer_init(&loop_, &deadline_timer_);
    uv_timer_init(&loop_, &grace_timer_);
    uv_poll_start(&listen_poll_, UV_READABLE, on_listen);
    uv_poll_start(&stop_poll_, UV_READABLE, on_stop);
    uv_run(&loop_, UV_RUN_DEFAULT);
    // Stopped (nothing left, or past the grace period): close every handle, and let the close
    // callbacks run before the loop goes. The server ends the connections left (even a request
    // whose peer has half-closed and still waits for its response), so each is cut, not lost,
    // as in event_loop.
    uv_walk(&loop_, close_any, this);
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
    return 0;
  }

 private:
  static libuv_server& self(uv_loop_t* loop) { return *static_cast<libuv_server*>(loop->data); }

  static void on_listen(uv_poll_t* h, int, int) { self(h->loop).accept_all(); }
  static void on_stop(uv_poll_t* h, int, int) { self(h->loop).begin_stop(); }
  static void on_io(uv_poll_t* h, int status, int events) {
    self(h->loop).on_ready(*static_cast<slot*>(h->data), status, events);
  }
  static void on_deadline_timer(uv_timer_t* t) { self(t->loop).expire_deadlines(); }
  static void on_grace_over(uv_timer_t* t) { uv_stop(t->loop); }
  static void free_slot(uv_handle_t* h) { delete static_cast<slot*>(h->data); }

  /// The connection of a handle met in uv_walk(), or nullptr for the server's own handles.
  slot* connection_of(uv_handle_t* h) {
    if (h->type != UV_POLL || h == reinterpret_cast<uv_handle_t*>(&listen_poll_) ||
        h == reinterpret_cast<uv_handle_t*>(&stop_poll_) || uv_is_closing(h))
      return nullptr;
    return static_cast<slot*>(h->data);
  }
  static void close_any(uv_handle_t* h, void* arg) {
    if (uv_is_closing(h)) return;
    if (slot* s = static_cast<libuv_server*>(arg)->connection_of(h)) {
      if (!s->lingering) s->conn->cut();
      uv_close(h, free_slot);
      s->socket.reset();
    } else {
      uv_close(h, nullptr);
    }
  }
  static void close_if_idle(uv_handle_t* h, void* arg) {
    auto* server = static_cast<libuv_server*>(arg);
    if (slot* s = server->connection_of(h); s != nullptr && s->conn->idle()) server->close_slot(*s);
  }

  void accept_all() {
    // Accept until EAGAIN (or the connection cap): one wake-up serves a whole burst. The
    // acceptor counts the connections it drops for lack of descriptors as refused; each
    // connection made here counts itself.
    while (live_ < ctx_.config.max_conns) {
      core::unique_fd socket;
      if (acceptor_.accept_one(socket, true) != core::accept_status::accepted) return;
      auto* s = new slot(std::move(socket));
      if (int err = uv_poll_init_socket(&loop_, &s->poll, s->socket.get()); err != 0) {
        // Accepted and closed at once, never served (epoll would not take one more: ENOSPC).
        std::fprintf(stderr, "httpd-libuv: uv_poll_init: %s\n", uv_strerror(err));
        ctx_.stats.count_refused();
        delete s;  // never registered with the loop; closes the socket
        continue;
      }
      s->conn.emplace(ctx_.content, ctx_.stats, ctx_.limits());
      uv_poll_start(&s->poll, UV_READABLE, on_io);
      deadlines_.start(s->deadline, core::wait_kind::request, core::idle_list::now_ms());
      timer_covers(s->deadline);
      ++live_;
    }
    // At the cap: stop listening until a connection closes; the rest wait in the backlog.
    uv_poll_stop(&listen_poll_);
    listen_paused_ = true;
  }

  void on_ready(slot& s, int status, int events) {
    int fd = s.socket.get();
    // libuv reports POLLERR as a status and has stopped the handle already: the socket failed.
    if (status < 0) {
      if (!s.lingering) s.conn->broken();
      return close_slot(s);
    }
    if (s.lingering) {
      if (core::drain_linger(fd)) close_slot(s);
      return;
    }
    switch (core::serve_ready(fd, *s.conn, (events & UV_READABLE) != 0, grace_.begun(), deadlines_,
                              s.deadline)) {
      case core::ready_next::close:
        return close_slot(s);
      case core::ready_next::linger:
        s.lingering = true;
        watch(s, UV_READABLE);
        return timer_covers(s.deadline);
      case core::ready_next::watch:
        break;
    }
    int want = (s.conn->wants_read() ? UV_READABLE : 0) | (s.conn->wants_write() ? UV_WRITABLE : 0);
    if (want != s.watching) watch(s, want);
    timer_covers(s.deadline);
  }

  void watch(slot& s, int events) {
    uv_poll_start(&s.poll, events, on_io);  // 0 stops it
    s.watching = events;
  }

  // How the connection ended has been counted by now (broken(), timed_out()) or is counted by
  // its destructor (the peer's EOF); what the grace period leaves is cut in run().
  void close_slot(slot& s) {
    deadlines_.remove(s.deadline);
    uv_close(reinterpret_cast<uv_handle_t*>(&s.poll), free_slot);  // stops polling now
    s.socket.reset();
    s.conn.reset();  // counted closed now, not an iteration later in free_slot
    --live_;
    if (grace_.begun()) {
      if (live_ == 0) uv_stop(&loop_);
    } else if (listen_paused_) {
      uv_poll_start(&listen_poll_, UV_READABLE, on_listen);
      listen_paused_ = false;
    }
  }

  // The one timer for every deadline (core::deadline_timer: armed for the earliest).
  void timer_covers(const core::idle_node& n) {
    if (timer_.must_cover(n)) arm_timer(n.deadline_ms);
  }

  void arm_timer(int64_t deadline_ms) {
    uv_timer_start(&deadline_timer_, on_deadline_timer, static_cast<uint64_t>(timer_.arm(deadline_ms)), 0);
  }

  void expire_deadlines() {
    auto next = timer_.expire(deadlines_, [this](core::idle_node& n) {
      slot& s = *static_cast<slot*>(n.owner);
      core::deadline_passed(s.socket.get(), *s.conn, core::deadline_lists::kind_of(n));
      close_slot(s);
    });
    if (next) arm_timer(*next);
  }

  // The stop policy (stop.hpp): no more accepting; idle keep-alive connections go now, ones in
  // the middle of a request get the grace period (and their deadlines still hold).
  void begin_stop() {
    grace_.begin();
    uv_poll_stop(&listen_poll_);
    uv_poll_stop(&stop_poll_);
    uv_walk(&loop_, close_if_idle, this);
    if (live_ == 0) return uv_stop(&loop_);
    uv_timer_start(&grace_timer_, on_grace_over, static_cast<uint64_t>(grace_.ms_left(INT32_MAX)),
                   0);
  }

  core::server_context& ctx_;
  core::acceptor acceptor_;
  core::grace_period grace_;
  core::deadline_lists deadlines_;
  core::deadline_timer timer_;  ///< what deadline_timer_ is armed for
  uv_loop_t loop_;
  uv_poll_t listen_poll_;
  uv_poll_t stop_poll_;
  uv_timer_t deadline_timer_;
  uv_timer_t grace_timer_;
  int live_ = 0;
  bool listen_paused_ = false;
};

}  // namespace

int run(core::server_context& ctx) {
  return libuv_server(ctx).run();
}

}  // namespace httpbench::backend
