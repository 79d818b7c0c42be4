// coro — one C++20 coroutine per connection on one epoll loop: the modern form of CPC
// (Kerneis & Chroboczek 2009 §1 and §3–4), whose translator turns threaded code into
// event-driven code. Here the C++ compiler is the translator: serve() below reads as the thread
// backends' loop (send what is queued → wait for bytes → hand them to the connection → …), and
// every `co_await` is where the compiler cuts it into an event handler, the coroutine frame
// being the heap-allocated handler state CPC builds.
//
// Category "event", not "user-thread": nothing here is a thread. There is no stack per
// connection and no context switch; a suspended connection is its frame (the connection object,
// the waiter below, a few locals: a few hundred bytes, allocated once at accept), and resuming it
// is an indirect call from the epoll loop — the "mere function call" that the paper credits
// event handlers with. The paper groups CPC's output with the hand-written event-driven servers
// for that reason, and the harness should compare it there.
//
// What decides its performance:
// (1) a socket is registered with epoll once, at its first wait, edge-triggered for both
//     directions, with per-direction ready flags (as fiber.cpp): a keep-alive request costs one
//     read, one writev and one resumption, and no epoll_ctl;
// (2) a short read clears the read flag, so after a response the coroutine suspends at once
//     instead of paying a read() that says EAGAIN — the same system calls per request as sped;
// (3) the loop resumes a coroutine inline, from the event it was waiting for: no run queue.
// The deadlines are serve_blocking's (docs/interfaces.md, "Deadlines"): serve() says, at each
// co_await, which wait it is and for how long, and the loop keeps the wait in the core's
// deadline_lists (one O(1) list per kind, so a head's short deadline never waits behind idle
// ones) and resumes the coroutine with a timeout when it passes; serve() then counts how the
// connection ended, as serve_blocking does.
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <coroutine>
#include <cstdio>
#include <cstring>
#include <exception>
#include <utility>
#include <vector>

#include "core/deadlines.hpp"
#include "core/io.hpp"
#include "core/listener.hpp"
#include "core/server.hpp"

namespace httpbench::backend {

const core::backend_info info{
    .name = "coro",
    .model = "event-driven, written as threads (C++20 stackless coroutines, as CPC)",
    .summary = "one coroutine per connection, co_await on readiness from one epoll loop; the "
               "frame is the only per-connection state; the core's deadline lists for timeouts",
    .paper = "Kerneis & Chroboczek 2009 §1, §3–4 (CPC)",
    .category = core::backend_category::event,
    .default_workers = 1,
    .max_connections = 10000,
    .tunables = {},
};

namespace {

using core::io_status;

enum class direction : uint8_t { none, read, write };
enum class wake_reason : uint8_t { ready, timeout, failed };

class loop;

/// What the loop knows of one connection. It lives in the connection's coroutine frame, from
/// the coroutine's start to its end, and registers itself with the loop for that long.
struct waiter {
  waiter(loop& l, int socket, core::connection& c);
  ~waiter();
  waiter(const waiter&) = delete;
  waiter& operator=(const waiter&) = delete;

  loop& owner;
  core::connection& conn;
  core::idle_node deadline;           ///< linked while suspended: the deadline of the wait
  std::coroutine_handle<> suspended;  ///< where to resume; empty while running
  int fd;
  // Edge-triggered: a direction is ready until a system call says EAGAIN (or a read comes
  // back short), then not until epoll reports an edge for it.
  bool readable = true, writable = true;
  bool registered = false;  ///< with epoll, from its first wait on
  direction waiting = direction::none;
  wake_reason why = wake_reason::ready;
};

/// The return type of a connection's coroutine: it starts at once, runs until its first wait,
/// and frees its own frame when it returns (nobody awaits it; the loop only resumes it).
struct detached {
  struct promise_type {
    detached get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    // Nothing on the serving path throws but bad_alloc, which no backend survives either.
    void unhandled_exception() noexcept { std::terminate(); }
  };
};

/// `co_await` of one direction of a socket, a wait of `kind` for at most `timeout_ms`: true
/// when the direction is ready, false when the wait timed out (w.why == timeout) or the socket
/// could not be watched (failed). Does not suspend when the direction is still ready from an
/// earlier edge.
struct readiness {
  loop& l;
  waiter& w;
  direction dir;
  core::wait_kind kind;
  int64_t timeout_ms;

  bool await_ready() noexcept;
  bool await_suspend(std::coroutine_handle<> h) noexcept;
  bool await_resume() const noexcept { return w.why == wake_reason::ready; }
};

class loop {
 public:
  explicit loop(core::server_context& ctx)
      : ctx_(ctx),
        acceptor_(ctx.listener.get(), &ctx.stats),
        grace_(ctx.grace()),
        deadlines_(core::wait_timeouts(ctx.limits())) {}

  int run();

  core::server_context& ctx() { return ctx_; }
  /// A wait for bytes: a request (`request`), the rest of a head (`head`), the end of a
  /// lingering close (`linger`).
  readiness readable(waiter& w, core::wait_kind kind, int64_t ms) {
    return {*this, w, direction::read, kind, ms};
  }
  /// A wait for room to send, without progress for at most `ms`.
  readiness writable(waiter& w, int64_t ms) {
    return {*this, w, direction::write, core::wait_kind::send, ms};
  }
  bool stopping() const { return grace_.begun(); }
  int64_t now_ms() const { return now_ms_; }
  waiter& at(int fd) { return *by_fd_[static_cast<size_t>(fd)]; }

  /// Suspends `w`'s coroutine `h` until its direction `dir` is ready, for at most `ms` (a wait
  /// of `kind`). False (with w.why = failed) when the socket cannot be watched: the coroutine
  /// then runs on.
  bool suspend(waiter& w, direction dir, core::wait_kind kind, int64_t ms,
               std::coroutine_handle<> h) {
    if (!w.registered) {
      // Registered once, at the first wait, for both directions: a connection served without
      // ever waiting costs no epoll_ctl. EPOLL_CTL_ADD reports readiness already there.
      if (!watch(w.fd, EPOLL_CTL_ADD, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)) {
        w.why = wake_reason::failed;
        return false;
      }
      w.registered = true;
    }
    w.waiting = dir;
    w.suspended = h;
    deadlines_.start_until(w.deadline, kind, now_ms_ + ms);
    return true;
  }

  void opened(waiter& w) { by_fd_[static_cast<size_t>(w.fd)] = &w; }
  void closed(waiter& w) {
    deadlines_.remove(w.deadline);
    by_fd_[static_cast<size_t>(w.fd)] = nullptr;
    --live_;
    if (listen_paused_ && !grace_.begun()) {
      watch(ctx_.listener.get(), EPOLL_CTL_MOD, EPOLLIN);
      listen_paused_ = false;
    }
  }

 private:
  bool watch(int fd, int op, uint32_t events) {
    epoll_event ev{events, {}};
    ev.data.fd = fd;
    return ::epoll_ctl(epfd_.get(), op, fd, &ev) == 0;
  }

  /// Runs `w`'s coroutine from its wait until its next one (or its end, which frees `w`).
  void resume(waiter& w, wake_reason why) {
    w.waiting = direction::none;
    w.why = why;
    deadlines_.remove(w.deadline);
    std::exchange(w.suspended, {}).resume();
  }

  void on_event(waiter& w, uint32_t events) {
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) w.readable = true;
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) w.writable = true;
    if ((w.waiting == direction::read && w.readable) ||
        (w.waiting == direction::write && w.writable))
      resume(w, wake_reason::ready);
  }

  void accept_all();

  // The stop policy (core/stop.hpp): no more accepting. A connection waiting for its next
  // request has its reading shut down and is resumed: it answers what its peer already sent,
  // then reads EOF and ends (core::read_idle's rule; serve() applies it to a connection that
  // becomes idle later). Connections inside a request get --grace, then are cut (run()).
  void begin_stop() {
    grace_.begin();
    ::epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, ctx_.listener.get(), nullptr);
    ::epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, ctx_.stop_fd, nullptr);
    for (size_t fd = 0; fd < by_fd_.size(); ++fd) {
      waiter* w = by_fd_[fd];  // a resumed coroutine that ends clears its own entry
      if (w && w->waiting == direction::read && w->conn.idle()) {
        ::shutdown(w->fd, SHUT_RD);
        w->readable = true;
        resume(*w, wake_reason::ready);
      }
    }
  }

  int next_timeout_ms() const { return core::loop_wait_ms(deadlines_, grace_, now_ms_); }

  // A coroutine whose wait ran out is resumed with `timeout`: serve() ends its connection and
  // counts how, as serve_blocking does.
  void expire_deadlines() {
    while (core::idle_node* first = deadlines_.expired(now_ms_))
      resume(*static_cast<waiter*>(first->owner), wake_reason::timeout);
  }

  core::server_context& ctx_;
  core::acceptor acceptor_;
  core::grace_period grace_;
  core::deadline_lists deadlines_;
  core::unique_fd epfd_;
  std::vector<waiter*> by_fd_;  ///< live connections by socket
  int64_t now_ms_ = 0;  ///< read once per loop pass: a wait costs no clock call
  int live_ = 0;
  bool listen_paused_ = false;
};

waiter::waiter(loop& l, int socket, core::connection& c) : owner(l), conn(c), fd(socket) {
  deadline.owner = this;
  l.opened(*this);
}

waiter::~waiter() { owner.closed(*this); }

bool readiness::await_ready() noexcept {
  bool ready = dir == direction::read ? w.readable : w.writable;
  if (ready) w.why = wake_reason::ready;
  return ready;
}

bool readiness::await_suspend(std::coroutine_handle<> h) noexcept {
  return l.suspend(w, dir, kind, timeout_ms, h);
}

loop* the_loop = nullptr;  // the system-call policy below is static, as io.hpp wants

/// core::read_into's and write_from's system calls for a coroutine: the plain non-blocking
/// calls, which also note when a direction stops being ready, so that the next co_await waits
/// for an edge without trying first.
struct coro_io : core::posix_io {
  static ssize_t read(int fd, void* buf, size_t n) {
    ssize_t got = ::read(fd, buf, n);
    // A short read emptied the socket; new bytes will raise a new edge.
    if ((got > 0 && static_cast<size_t>(got) < n) || (got < 0 && errno == EAGAIN))
      the_loop->at(fd).readable = false;
    return got;
  }
  static ssize_t writev(int fd, const iovec* iov, int n) {
    return note_write(fd, ::writev(fd, iov, n));
  }
  static ssize_t sendfile(int out, int in, off_t* offset, size_t n) {
    return note_write(out, ::sendfile(out, in, offset, n));
  }
  static ssize_t note_write(int fd, ssize_t sent) {
    if (sent < 0 && errno == EAGAIN) the_loop->at(fd).writable = false;
    return sent;
  }
};

/// One connection, from accept to close, written as a thread would write it: the loop of
/// core::serve_blocking, with its deadlines and its way of counting how a connection ends.
/// Each co_await suspends it until its socket is ready or the wait's deadline passes; between
/// two of them it runs as an event handler of the loop.
detached serve(loop& l, core::unique_fd socket) {
  core::server_context& ctx = l.ctx();
  core::connection c(ctx.content, ctx.stats, ctx.limits());
  waiter w(l, socket.get(), c);
  const core::connection_limits& limits = c.limits();
  bool in_head = false;       // the last wait for bytes was for the rest of a head
  int64_t head_deadline = 0;  // --header-timeout runs from a head's first byte, never extended
  for (;;) {
    // Send what the connection has queued; a full socket suspends us until it drains, for at
    // most --send-timeout without progress.
    io_status sent;
    while ((sent = core::write_from<coro_io>(w.fd, c)) == io_status::again)
      if (!co_await l.writable(w, limits.send_timeout_ms)) break;
    if (sent != io_status::ok) break;
    if (c.wants_close()) {
      if (c.closing_on_error()) {
        // Lingering close (core/io.hpp): the peer may still be sending; read it away, for
        // linger_ms in all.
        core::start_linger(w.fd);
        int64_t give_up = l.now_ms() + core::linger_ms;
        while (!core::drain_linger(w.fd)) {
          w.readable = false;  // drain_linger read until EAGAIN
          if (!co_await l.readable(w, core::wait_kind::linger, give_up - l.now_ms())) break;
        }
      }
      co_return;
    }
    // Wait for the next bytes: a request, or a body's next bytes, within --idle-timeout; the
    // rest of a head by its deadline.
    core::wait_kind kind = core::wait_kind::request;
    int64_t wait_ms = limits.idle_timeout_ms;
    if (c.receiving_head()) {
      if (!in_head) head_deadline = l.now_ms() + limits.header_timeout_ms;
      kind = core::wait_kind::head;
      wait_ms = head_deadline - l.now_ms();
      if (wait_ms <= 0) {
        w.why = wake_reason::timeout;
        break;
      }
    } else if (l.stopping() && c.idle()) {
      // core::read_idle's rule: at the stop an idle connection reads nothing new. What its
      // peer already sent is still answered, then the EOF of the shutdown ends it.
      ::shutdown(w.fd, SHUT_RD);
      w.readable = true;
    }
    in_head = kind == core::wait_kind::head;
    if (!co_await l.readable(w, kind, wait_ms)) break;
    io_status got = core::read_into<coro_io>(w.fd, c);
    if (got == io_status::error) break;
    if (got == io_status::closed && !c.wants_write()) {
      if (c.idle()) co_return;
      // EOF inside a request: the peer's, or at the stop our own shutdown of reading.
      if (l.stopping())
        c.cut();
      else
        c.broken();
      co_return;
    }
  }
  // A wait ran out, or the socket failed: an error only inside a request.
  if (w.why == wake_reason::timeout) {
    // Abandoned by --send-timeout: a reset, so what the peer would not take leaves the kernel.
    if (c.wants_write()) core::abort_on_close(w.fd);
    c.timed_out();
  } else {
    c.broken();
  }
}

void loop::accept_all() {
  // Accept until EAGAIN (or the cap): one wake-up serves a whole burst of connects.
  while (live_ < ctx_.config.max_conns) {
    core::unique_fd fd;
    if (acceptor_.accept_one(fd, true) != core::accept_status::accepted) return;
    if (static_cast<size_t>(fd.get()) >= by_fd_.size())
      by_fd_.resize(static_cast<size_t>(fd.get()) * 2 + 1);
    ++live_;
    serve(*this, std::move(fd));  // runs until its first wait; its connection counts itself
  }
  // At the cap: stop listening until a connection ends; the rest wait in the backlog.
  watch(ctx_.listener.get(), EPOLL_CTL_MOD, 0);
  listen_paused_ = true;
}

int loop::run() {
  epfd_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!epfd_ || !watch(ctx_.listener.get(), EPOLL_CTL_ADD, EPOLLIN) ||
      !watch(ctx_.stop_fd, EPOLL_CTL_ADD, EPOLLIN)) {
    std::fprintf(stderr, "httpd-coro: epoll: %s\n", std::strerror(errno));
    return 1;
  }
  std::vector<epoll_event> events(512);
  now_ms_ = core::idle_list::now_ms();
  while (!grace_.begun() || (live_ > 0 && !grace_.over())) {
    int n = ::epoll_wait(epfd_.get(), events.data(), static_cast<int>(events.size()),
                         next_timeout_ms());
    now_ms_ = core::idle_list::now_ms();
    bool accept_now = false;
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == ctx_.listener.get())
        accept_now = true;
      else if (fd == ctx_.stop_fd)
        begin_stop();
      else if (waiter* w = by_fd_[static_cast<size_t>(fd)])
        on_event(*w, events[i].events);
    }
    // After the batch: a socket accepted now cannot take the number of one closed in it.
    if (accept_now && !grace_.begun()) accept_all();
    expire_deadlines();
  }
  // The grace is over: the connections still inside a request are cut here, frame and all.
  std::vector<waiter*> rest;
  for (waiter* w : by_fd_)
    if (w) rest.push_back(w);
  for (waiter* w : rest) {
    std::coroutine_handle<> frame = w->suspended;
    w->conn.cut();
    frame.destroy();  // frees `w`
  }
  return 0;
}

}  // namespace

int run(core::server_context& ctx) {
  loop l(ctx);
  the_loop = &l;
  return l.run();
}

}  // namespace httpbench::backend
