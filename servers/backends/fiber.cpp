// fiber — M:1 user-level threads on Boost.Context with our own scheduler: the Knot/Capriccio
// model (Pariag et al. 2007 §4.1–4.2: one user-level thread per connection, non-blocking
// sockets behind blocking-looking wrappers, a scheduler that polls) and the State Threads model
// that Kerneis & Chroboczek 2009 §3–4 found fastest, written over one epoll loop.
//
// Each connection runs the read → received → write loop of core::serve_blocking (as the thread
// backend does) on its own fiber; the system calls are non-blocking and, on EAGAIN, park the
// fiber until epoll reports its direction ready. What decides its performance:
// (1) a socket is registered with epoll once, at its first wait, edge-triggered for both
//     directions, with per-direction ready flags: a keep-alive request costs one read, one
//     writev and two fiber switches (~11 ns) and no epoll_ctl, and a connection that never
//     blocks costs none at all — Capriccio instead adds the fd to a poll set on every block;
// (2) stacks are fixed-size plain mappings from a pool, reused most-recently-freed first: a new
//     connection costs no mmap, no guard-page mprotect (which would hit vm.max_map_count near
//     32k fibers), and only the pages a fiber actually touched stay resident;
// (3) when the run queue empties while connections are open, the scheduler polls epoll without
//     blocking for a while before it sleeps. A sleeping server makes every client write pay a
//     cross-CPU wake-up: against a client-bound wrk or ab that cost ~5 % (keep-alive) to ~12 %
//     (new connections) of requests/s. State Threads gets the effect by accident (its poll()
//     over every fd is slow enough that work is waiting). The window adapts as cpuidle-haltpoll
//     does: it doubles (up to `--set spin_us`, default 50 µs) when the sleep that followed was
//     shorter than that, so a longer poll would have caught the event, and halves when the
//     sleep was longer, so polling was wasted CPU (which matters on a capped CPU). spin_us=0
//     turns it off, and an idle server (no connections) never spins.
// Deadlines use the core's deadline_lists: one list per kind of wait (a request, the rest of a
// head, room to send, a lingering close), each of one timeout, so within a list the fiber
// parked longest ago expires first (an O(1) "timer heap").
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/context/fiber.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <vector>

#include "core/deadlines.hpp"
#include "core/io.hpp"
#include "core/listener.hpp"
#include "core/server.hpp"
#include "core/stack_pool.hpp"

namespace httpbench::backend {

const core::backend_info info{
    .name = "fiber",
    .model = "user-level threads, M:1 (Boost.Context fibers, own scheduler)",
    .summary =
        "one fiber per connection on one epoll loop; pooled plain stacks; idle list for timeouts",
    .paper = "Pariag et al. 2007 §4 (Capriccio/Knot); Kerneis & Chroboczek 2009 §3 (ST)",
    .category = core::backend_category::user_thread,
    .default_workers = 1,
    .max_connections = 10000,
    .tunables = {{"spin_us", "50", {},
                  "microseconds to poll epoll without blocking when the run queue empties "
                  "and connections are open, before sleeping (0: sleep at once)",
                  0, 1'000'000}},
};

namespace {

namespace bctx = boost::context;

/// The StackAllocator Boost.Context calls when a fiber starts and ends.
struct pooled_stack {
  core::stack_pool* pool;
  bctx::stack_context allocate() {
    bctx::stack_context sc;
    sc.size = pool->stack_size();
    sc.sp = pool->take();
    return sc;
  }
  void deallocate(bctx::stack_context& sc) noexcept { pool->give(sc.sp); }
};

using core::monotonic_ns;

enum class direction : uint8_t { none, read, write };
enum class wake_reason : uint8_t { ready, timeout, stop };

/// One connection's fiber state. It lives on the fiber's own stack: a connection costs no heap
/// allocation beyond its buffers, which the core lends only while bytes are in flight.
struct task {
  task(core::server_context& ctx, core::unique_fd socket)
      : conn(ctx.content, ctx.stats, ctx.limits()), fd(socket.get()), owned(std::move(socket)) {
    idle.owner = this;
  }
  core::connection conn;
  core::idle_node idle;   ///< linked while parked: the deadline of the wait
  bctx::fiber self;       ///< where to resume it while parked
  bctx::fiber scheduler;  ///< where to switch back to while it runs
  task* next_ready = nullptr;
  int fd;
  core::unique_fd owned;  ///< closed (and so out of the epoll set) when the fiber ends
  // Edge-triggered: a direction is ready until a system call says EAGAIN (or a read comes
  // back short), then not until epoll reports an edge for it.
  bool readable = true, writable = true;
  bool registered = false;  ///< with epoll, from its first wait on
  direction waiting = direction::none;
  wake_reason why = wake_reason::ready;
  // How long its next waits may last (fiber_io::set_timeout, from core::serve_blocking).
  core::wait_kind read_kind = core::wait_kind::request;
  int read_timeout_ms = 30'000, write_timeout_ms = 30'000;
};

class scheduler;
scheduler* the_scheduler = nullptr;  // the system-call policy below is static, as io.hpp wants

class scheduler {
 public:
  scheduler(core::server_context& ctx, int64_t spin_ns)
      : ctx_(ctx),
        acceptor_(ctx.listener.get(), &ctx.stats),
        stacks_(ctx.config.stack_size),
        grace_(ctx.grace()),
        deadlines_(core::wait_timeouts(ctx.limits())),
        spin_max_ns_(spin_ns),
        spin_ns_(spin_ns) {}

  int run() {
    epfd_.reset(::epoll_create1(EPOLL_CLOEXEC));
    if (!epfd_ || !watch(ctx_.listener.get(), EPOLL_CTL_ADD, EPOLLIN) ||
        !watch(ctx_.stop_fd, EPOLL_CTL_ADD, EPOLLIN)) {
      std::fprintf(stderr, "httpd-fiber: epoll: %s\n", std::strerror(errno));
      return 1;
    }
    std::vector<epoll_event> events(512);
    now_ms_ = core::idle_list::now_ms();
    while (!grace_.begun() || (live_ > 0 && !grace_.over())) {
      run_ready();
      flush_switches();
      int n = wait(events);
      now_ms_ = core::idle_list::now_ms();
      bool accept_now = false;
      for (int i = 0; i < n; ++i) {
        int fd = events[i].data.fd;
        if (fd == ctx_.listener.get())
          accept_now = true;
        else if (fd == ctx_.stop_fd)
          begin_stop();
        else if (task* t = by_fd_[fd])
          on_event(*t, events[i].events);
      }
      if (accept_now && !grace_.begun()) accept_all();  // after the batch: no fiber runs then
      expire_deadlines();
    }
    flush_switches();
    return 0;
  }

  /// Called on a fiber whose direction `dir` is not ready: parks it until it is, for at most
  /// `timeout_ms` (a wait of `kind`). False (errno set) when the wait ended by the timeout
  /// (ETIMEDOUT) or because the server is stopping and the fiber waited for a next request
  /// (EINTR: core::read_idle then ends the connection).
  bool park(task& t, direction dir, core::wait_kind kind, int64_t timeout_ms) {
    if (!t.registered) {
      // Registered once, at the first wait, for both directions: a connection served without
      // ever blocking (a new connection whose request has already arrived) costs no epoll_ctl
      // at all. EPOLL_CTL_ADD reports readiness that is already there, so no edge is lost.
      if (!watch(t.fd, EPOLL_CTL_ADD, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)) return false;
      t.registered = true;
    }
    t.waiting = dir;
    deadlines_.start_until(t.idle, kind, now_ms_ + timeout_ms);
    ++switches_;  // the user-level switch of docs/interfaces.md: this fiber gives up the CPU
    t.scheduler = std::move(t.scheduler).resume();
    if (t.why == wake_reason::ready) return true;
    return fail(t.why == wake_reason::timeout ? ETIMEDOUT : EINTR);
  }

  task* running() const { return running_; }
  bool stopping() const { return grace_.begun(); }

 private:
  static bool fail(int error) {
    errno = error;
    return false;
  }

  void on_event(task& t, uint32_t events) {
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) t.readable = true;
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) t.writable = true;
    if ((t.waiting == direction::read && t.readable) ||
        (t.waiting == direction::write && t.writable))
      make_ready(t, wake_reason::ready);
  }

  // A plain counter per switch and one shared atomic add per scheduler pass: a fiber switch costs
  // ~11 ns, and a locked add on every one would be a visible part of it. A status read may lack
  // the switches of the pass it is answered in.
  void flush_switches() {
    if (switches_ == 0) return;
    ctx_.stats.add(ctx_.stats.user_switches, switches_);
    switches_ = 0;
  }

  bool watch(int fd, int op, uint32_t events) {
    epoll_event ev{events, {}};
    ev.data.fd = fd;
    return ::epoll_ctl(epfd_.get(), op, fd, &ev) == 0;
  }

  void make_ready(task& t, wake_reason why) {
    t.waiting = direction::none;
    t.why = why;
    deadlines_.remove(t.idle);
    t.next_ready = nullptr;
    (ready_tail_ ? ready_tail_->next_ready : ready_head_) = &t;
    ready_tail_ = &t;
  }

  void run_ready() {
    while (task* t = ready_head_) {
      ready_head_ = t->next_ready;
      if (ready_head_ == nullptr) ready_tail_ = nullptr;
      running_ = t;
      switch_to(std::move(t->self));
    }
  }

  /// Runs a fiber until it parks (its continuation is kept in the running task) or ends.
  void switch_to(bctx::fiber&& f) {
    bctx::fiber back = std::move(f).resume();
    if (back) running_->self = std::move(back);
    running_ = nullptr;
  }

  void accept_all() {
    // Accept a burst of connects per wake-up, at most accept_burst: each new fiber runs at once,
    // so an unbounded burst starves the fibers made ready meanwhile while clients keep
    // reconnecting faster than the queue drains (a capped server: a fifth of the clients waited
    // through whole measurement windows). The listener is level-triggered: what is left in the
    // queue is taken after the ready fibers have run.
    for (int burst = 0; live_ < ctx_.config.max_conns; ++burst) {
      if (burst == accept_burst) return;
      core::unique_fd fd;
      if (acceptor_.accept_one(fd, true) != core::accept_status::accepted) return;
      if (!stacks_.reserve()) {
        if (!warned_no_stack_)
          std::fprintf(stderr,
                       "httpd-fiber: cannot map fiber stacks (%s) at %d connections; "
                       "closing new ones\n",
                       std::strerror(errno), live_);
        warned_no_stack_ = true;
        ctx_.stats.count_refused();
        continue;  // `fd` closes it
      }
      if (static_cast<size_t>(fd.get()) >= by_fd_.size())
        by_fd_.resize(static_cast<size_t>(fd.get()) * 2 + 1);
      ++live_;
      // The fiber starts at once and runs until its first read would block.
      switch_to(bctx::fiber(std::allocator_arg, pooled_stack{&stacks_},
                            [this, raw = fd.release()](bctx::fiber&& sched) {
                              return serve(core::unique_fd(raw), std::move(sched));
                            }));
    }
    // At the cap: stop listening until a connection ends; the rest wait in the backlog.
    watch(ctx_.listener.get(), EPOLL_CTL_MOD, 0);
    listen_paused_ = true;
  }

  bctx::fiber serve(core::unique_fd fd, bctx::fiber&& sched);
  static constexpr int accept_burst = 64;

  // The stop policy (core/stop.hpp): no more accepting; the fibers waiting for a next request
  // are woken to end (core::read_idle), the ones inside a request get the grace period.
  void begin_stop() {
    grace_.begin();
    ::epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, ctx_.listener.get(), nullptr);
    ::epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, ctx_.stop_fd, nullptr);
    for (task* t : by_fd_)
      if (t && t->waiting == direction::read && t->conn.idle()) make_ready(*t, wake_reason::stop);
  }

  /// epoll_wait, after polling (see (3) above) when connections are open and nothing is due.
  int wait(std::vector<epoll_event>& events) {
    int size = static_cast<int>(events.size());
    int timeout = next_timeout_ms();
    if (timeout == 0 || spin_max_ns_ == 0 || live_ == 0)
      return ::epoll_wait(epfd_.get(), events.data(), size, timeout);
    int64_t start = monotonic_ns();
    for (int64_t now = start; now - start < spin_ns_; now = monotonic_ns())
      if (int n = ::epoll_wait(epfd_.get(), events.data(), size, 0); n != 0) return n;
    int64_t slept_from = monotonic_ns();
    int n = ::epoll_wait(epfd_.get(), events.data(), size, timeout);
    if (monotonic_ns() - slept_from <= spin_max_ns_)
      spin_ns_ = std::min(spin_max_ns_, std::max<int64_t>(2 * spin_ns_, 1000));
    else
      spin_ns_ /= 2;  // below 1 µs this is no polling at all
    return n;
  }

  int next_timeout_ms() const {
    return ready_head_ ? 0 : core::loop_wait_ms(deadlines_, grace_, now_ms_);
  }

  void expire_deadlines() {
    while (core::idle_node* first = deadlines_.expired(now_ms_))
      make_ready(*static_cast<task*>(first->owner), wake_reason::timeout);
  }

  core::server_context& ctx_;
  core::acceptor acceptor_;
  core::stack_pool stacks_;
  core::grace_period grace_;
  core::deadline_lists deadlines_;
  std::vector<task*> by_fd_;  ///< live connections by socket
  task* ready_head_ = nullptr;
  task* ready_tail_ = nullptr;
  task* running_ = nullptr;
  int64_t spin_max_ns_;  ///< --set spin_us
  int64_t spin_ns_;      ///< the current polling window, adapted in wait()
  int64_t now_ms_ = 0;  ///< read once per loop: parking costs no clock call
  uint64_t switches_ = 0;  ///< fiber switches not yet added to ctx_.stats.user_switches
  core::unique_fd epfd_;
  int live_ = 0;
  bool listen_paused_ = false;
  bool warned_no_stack_ = false;
};

/// The system calls of core::serve_blocking for a fiber: try, and on EAGAIN park the running
/// fiber until its direction is ready (or its wait times out), then try again.
struct fiber_io {
  template <class Call>
  static ssize_t retry(direction dir, Call call) {
    task& t = *the_scheduler->running();
    bool reading = dir == direction::read;
    bool& ready = reading ? t.readable : t.writable;
    for (;;) {
      if (!ready && !the_scheduler->park(t, dir, reading ? t.read_kind : core::wait_kind::send,
                                         reading ? t.read_timeout_ms : t.write_timeout_ms))
        return -1;
      ssize_t n = call();
      if (n >= 0 || errno != EAGAIN) return n;
      ready = false;
    }
  }
  static ssize_t read(int fd, void* buf, size_t n) {
    task& t = *the_scheduler->running();
    ssize_t got = retry(direction::read, [&] { return ::read(fd, buf, n); });
    // A short read emptied the socket, and new bytes will raise a new edge: the next read
    // parks at once instead of costing a read() that says EAGAIN — after a keep-alive
    // response this saves one system call per request.
    if (got > 0 && static_cast<size_t>(got) < n) t.readable = false;
    return got;
  }
  static ssize_t writev(int fd, const iovec* iov, int n) {
    return retry(direction::write, [&] { return ::writev(fd, iov, n); });
  }
  static ssize_t sendfile(int out, int in, off_t* offset, size_t n) {
    return retry(direction::write, [&] { return ::sendfile(out, in, offset, n); });
  }
  static void set_timeout(int, core::wait_kind kind, int ms) {
    task& t = *the_scheduler->running();
    if (kind == core::wait_kind::send) {
      t.write_timeout_ms = ms;
    } else {
      t.read_kind = kind;
      t.read_timeout_ms = ms;
    }
  }
  static bool wait_readable(int, int timeout_ms) {
    task& t = *the_scheduler->running();
    t.readable = false;  // a read just said EAGAIN
    return the_scheduler->park(t, direction::read, core::wait_kind::linger, timeout_ms);
  }
  static bool stopping() { return the_scheduler->stopping(); }
};

bctx::fiber scheduler::serve(core::unique_fd fd, bctx::fiber&& sched) {
  {
    task t(ctx_, std::move(fd));
    t.scheduler = std::move(sched);
    running_ = &t;
    by_fd_[t.fd] = &t;
    core::serve_blocking<fiber_io>(t.fd, t.conn);
    by_fd_[t.fd] = nullptr;
    sched = std::move(t.scheduler);
  }  // closes the socket, which also leaves the epoll set
  --live_;
  if (listen_paused_ && !grace_.begun()) {
    watch(ctx_.listener.get(), EPOLL_CTL_MOD, EPOLLIN);
    listen_paused_ = false;
  }
  return std::move(sched);
}

}  // namespace

int run(core::server_context& ctx) {
  scheduler s(ctx, static_cast<int64_t>(ctx.number("spin_us")) * 1000);
  the_scheduler = &s;
  return s.run();
}

}  // namespace httpbench::backend
