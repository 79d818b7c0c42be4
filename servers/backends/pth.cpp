// pth — one GNU Pth user-level thread per connection (Kerneis & Chroboczek 2009 §3: the toy
// server on Pth, which performed "similar to NPTL", far behind ST).
//
// The main Pth thread accepts with pth_accept and spawns a Pth thread per connection, which
// runs core::serve_blocking with Pth's I/O calls (pth_read_ev, pth_writev_ev). What decides its
// performance: (1) Pth's wrappers want blocking descriptors and, on every call, poll them with a
// zero-timeout select() and flip O_NONBLOCK around writes; a thread that would block waits in a
// scheduler that rebuilds select() sets from every waiting thread on each pass (O(threads), and
// a ~19.5 µs switch here); (2) select() bounds it to FD_SETSIZE (1024) descriptors, so
// connections on descriptors beyond that are refused with a message (max_connections 1000).
// Files: Pth has no sendfile wrapper, so sendfile runs with the socket non-blocking for the
// call (as pth_write does internally) and waits for writability with pth_wait — the body goes
// out zero-copy rather than through a copy into an in-memory buffer for pth_write.
#include <pth.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/io.hpp"
#include "core/listener.hpp"
#include "core/server.hpp"

namespace httpbench::backend {

const core::backend_info info{
    .name = "pth",
    .model = "user-level threads, M:1 (GNU Pth)",
    .summary = "one Pth thread per connection; Pth's select()-based scheduler (FD_SETSIZE 1024)",
    .paper = "Kerneis & Chroboczek 2009 §3 (Pth)",
    .category = core::backend_category::user_thread,
    .default_workers = 1,
    .max_connections = 1000,
    .tunables = {},
};

namespace {

/// Per connection: the connection (to tell an idle one at stop), a reusable timeout event, the
/// thread's dispatch count as last seen (see pth_io::count_switches), and the timeouts of its
/// waits (pth_io::set_timeout).
struct pth_connection {
  core::connection* conn;
  pth_event_t timeout = nullptr;
  pth_attr_t self = pth_attr_of(pth_self());
  int dispatches = 0;
  int read_timeout_ms = 30'000, write_timeout_ms = 30'000;
};

struct process_state {
  core::server_context* ctx = nullptr;
  pth_connection* by_fd[FD_SETSIZE] = {};  ///< Pth cannot use descriptors beyond FD_SETSIZE
  pth_mutex_t lock = PTH_MUTEX_INIT;       ///< for slot_freed only (threads are not preempted)
  pth_cond_t slot_freed = PTH_COND_INIT;
  int live = 0;
  bool stopping = false;
} state;

/// core::serve_blocking's system calls for a Pth thread. Each wait carries the timeout of its
/// kind (set_timeout) as an extra event; Pth reports it as EINTR, which core::read_into would
/// retry, so it becomes ETIMEDOUT here. pth_writev_ev writes until everything is out, so there
/// the send timeout bounds a whole writev (at most the output queue, ~14 KiB of heads plus
/// in-memory bodies) rather than each wait.
struct pth_io {
  /// Pth's wrappers decide inside the library whether to wait, so the switches are read from
  /// Pth itself: a thread is dispatched once to start and once more after every time it gave
  /// up the CPU. Called after each wrapper that may have waited.
  static void count_switches(pth_connection& c) {
    int saved = errno, dispatches = c.dispatches;
    pth_attr_get(c.self, PTH_ATTR_DISPATCHES, &dispatches);
    if (dispatches > c.dispatches)
      state.ctx->stats.add(state.ctx->stats.user_switches,
                           static_cast<uint64_t>(dispatches - c.dispatches));
    c.dispatches = dispatches;
    errno = saved;
  }
  static pth_event_t arm(pth_connection& c, int ms) {
    pth_time_t deadline = pth_timeout(ms / 1000, (ms % 1000) * 1000);
    c.timeout = c.timeout ? pth_event(PTH_EVENT_TIME | PTH_MODE_REUSE, c.timeout, deadline)
                          : pth_event(PTH_EVENT_TIME, deadline);
    return c.timeout;
  }
  static ssize_t timed(ssize_t n, pth_connection& c) {
    if (n < 0 && errno == EINTR && pth_event_status(c.timeout) == PTH_STATUS_OCCURRED)
      errno = ETIMEDOUT;
    return n;
  }
  /// Waits in Pth's scheduler until `fd` is ready for `until` (PTH_UNTIL_FD_READABLE or
  /// PTH_UNTIL_FD_WRITEABLE) or the time event `deadline` occurs; true when ready.
  static bool wait(pth_connection& c, int fd, unsigned long until, pth_event_t deadline) {
    pth_event_t ready = pth_event(PTH_EVENT_FD | until, fd);
    pth_event_concat(ready, deadline, nullptr);
    pth_wait(ready);
    count_switches(c);
    pth_event_isolate(ready);
    bool occurred = pth_event_status(ready) == PTH_STATUS_OCCURRED;
    pth_event_free(ready, PTH_FREE_THIS);
    return occurred;
  }
  static ssize_t read(int fd, void* buf, size_t n) {
    pth_connection& c = *state.by_fd[fd];
    ssize_t got = timed(pth_read_ev(fd, buf, n, arm(c, c.read_timeout_ms)), c);
    count_switches(c);
    return got;
  }
  static ssize_t writev(int fd, const iovec* iov, int n) {
    pth_connection& c = *state.by_fd[fd];
    ssize_t sent = timed(pth_writev_ev(fd, iov, n, arm(c, c.write_timeout_ms)), c);
    count_switches(c);
    return sent;
  }
  static ssize_t sendfile(int out, int in, off_t* offset, size_t n) {
    pth_connection& c = *state.by_fd[out];
    int mode = pth_fdmode(out, PTH_FDMODE_NONBLOCK);
    ssize_t sent;
    while ((sent = ::sendfile(out, in, offset, n)) < 0 && errno == EAGAIN) {
      if (!wait(c, out, PTH_UNTIL_FD_WRITEABLE, arm(c, c.write_timeout_ms))) {
        errno = ETIMEDOUT;
        break;
      }
    }
    int saved = errno;
    pth_fdmode(out, mode);
    errno = saved;
    return sent;
  }
  static void set_timeout(int fd, core::wait_kind kind, int ms) {
    pth_connection& c = *state.by_fd[fd];
    (kind == core::wait_kind::send ? c.write_timeout_ms : c.read_timeout_ms) = ms;
  }
  static bool wait_readable(int fd, int timeout_ms) {
    pth_event_t deadline =
        pth_event(PTH_EVENT_TIME, pth_timeout(timeout_ms / 1000, (timeout_ms % 1000) * 1000));
    bool readable = wait(*state.by_fd[fd], fd, PTH_UNTIL_FD_READABLE, deadline);
    pth_event_free(deadline, PTH_FREE_THIS);
    return readable;
  }
  static bool stopping() { return state.stopping; }
};

void* serve_connection(void* arg) {
  core::unique_fd fd(static_cast<int>(reinterpret_cast<intptr_t>(arg)));
  core::server_context& ctx = *state.ctx;
  {
    core::connection conn(ctx.content, ctx.stats, ctx.limits());
    pth_connection entry{&conn};
    pth_attr_get(entry.self, PTH_ATTR_DISPATCHES, &entry.dispatches);
    state.by_fd[fd.get()] = &entry;
    core::serve_blocking<pth_io>(fd.get(), conn);
    if (entry.timeout) pth_event_free(entry.timeout, PTH_FREE_THIS);
    pth_attr_destroy(entry.self);
    state.by_fd[fd.get()] = nullptr;
  }
  fd.reset();
  --state.live;
  pth_cond_notify(&state.slot_freed, FALSE);
  return nullptr;
}

/// The stop reaches the connections already waiting for their next request: shutdown(SHUT_RD)
/// makes their pth_read return EOF (core::read_idle ends the ones that go idle later).
void wake_idle_connections() {
  for (int fd = 0; fd < FD_SETSIZE; ++fd)
    if (state.by_fd[fd] && state.by_fd[fd]->conn->idle()) ::shutdown(fd, SHUT_RD);
}

}  // namespace

int run(core::server_context& ctx) {
  if (!pth_init()) {
    std::fprintf(stderr, "httpd-pth: pth_init: %s\n", std::strerror(errno));
    return 1;
  }
  state.ctx = &ctx;
  // Pth manages non-blocking mode itself and treats a non-blocking descriptor as "never wait".
  core::set_nonblocking(ctx.listener.get(), false);
  pth_attr_t attr = pth_attr_new();
  pth_attr_set(attr, PTH_ATTR_JOINABLE, FALSE);
  pth_attr_set(attr, PTH_ATTR_STACK_SIZE, static_cast<unsigned int>(ctx.config.stack_size));
  pth_event_t stop = pth_event(PTH_EVENT_FD | PTH_UNTIL_FD_READABLE, ctx.stop_fd);
  bool warned = false;
  while (!state.stopping) {
    if (state.live >= ctx.config.max_conns) {  // at the cap the rest wait in the backlog
      pth_mutex_acquire(&state.lock, FALSE, nullptr);
      pth_cond_await(&state.slot_freed, &state.lock, stop);
      pth_mutex_release(&state.lock);
    } else {
      core::unique_fd fd(pth_accept_ev(ctx.listener.get(), nullptr, nullptr, stop));
      if (fd.get() >= FD_SETSIZE) {
        if (!warned)
          std::fprintf(stderr,
                       "httpd-pth: GNU Pth waits with select(), which cannot watch fd %d "
                       "(FD_SETSIZE %d): closing connections beyond ~%d concurrent; use "
                       "the fiber or st backend for more\n",
                       fd.get(), FD_SETSIZE, info.max_connections);
        warned = true;
        ctx.stats.count_refused();
      } else if (fd) {
        ++state.live;
        // The thread owns the socket from here.
        if (pth_spawn(attr, serve_connection, reinterpret_cast<void*>(intptr_t{fd.get()}))) {
          (void)fd.release();
        } else {
          std::fprintf(stderr, "httpd-pth: pth_spawn: %s (dropping the connection)\n",
                       std::strerror(errno));
          ctx.stats.count_refused();
          --state.live;
        }
      } else if (errno == EMFILE || errno == ENFILE) {
        if (!warned) std::fprintf(stderr, "httpd-pth: accept: %s\n", std::strerror(errno));
        warned = true;
        pth_nap(pth_time(0, 10'000));
      }
    }
    state.stopping = ctx.stop_requested();
  }
  // The stop policy: idle connections end at once, ones inside a request get the grace.
  wake_idle_connections();
  core::grace_period grace = ctx.grace();
  grace.begin();
  grace.wait([] { return state.live == 0; }, [](int ms) { pth_nap(pth_time(0, ms * 1000)); });
  return 0;
}

}  // namespace httpbench::backend
