// st — one State Threads (libst) user-level thread per connection (Kerneis & Chroboczek 2009
// §3: the toy server on ST, the fastest of their thread libraries; ST descends from the
// Netscape Portable Runtime and is the model Capriccio/Knot of Pariag et al. 2007 §4 follows).
//
// The primordial ST thread accepts and creates one ST thread per connection, which runs
// core::serve_blocking with st_read's and st_writev's loops (the system call, and st_netfd_poll
// on EAGAIN). What decides its performance: (1) ST's scheduler is a run queue plus one poll() per
// pass over every blocked descriptor — Debian's libst has no epoll, so a pass costs O(blocked
// connections), which is what ST trades for its cheap ~31 ns switches; (2) timeouts live in ST's
// heap, so every read and write carries its deadline for free. ST caches the stacks of
// finished threads (--stack-size), so thread creation costs no mmap after warm-up.
// `--workers N` (N > 1) forks N processes after listen(), each with its own ST scheduler, and
// the parent only supervises them (core::supervisor), as the watchdog of ST's own example server
// does; a worker that dies is restarted.
#include <st.h>
#include <sys/sendfile.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/io.hpp"
#include "core/listener.hpp"
#include "core/server.hpp"
#include "core/supervisor.hpp"

namespace httpbench::backend {

const core::backend_info info{
    .name = "st",
    .model = "user-level threads, M:1 (State Threads library)",
    .summary = "one ST thread per connection; ST's poll()-based scheduler; --workers processes",
    .paper = "Kerneis & Chroboczek 2009 §3 (ST); Pariag et al. 2007 §4",
    .category = core::backend_category::user_thread,
    .default_workers = 1,
    .max_connections = 10000,
    .tunables = {},
};

namespace {

/// What the system-call policy needs to find from a descriptor: ST's handle for it, the
/// connection (to tell an idle keep-alive connection from one inside a request at the stop),
/// and the timeouts of its waits (st_io::set_timeout).
struct st_connection {
  st_netfd_t nfd;
  core::connection* conn;
  st_thread_t thread;
  st_utime_t read_timeout_us = ST_UTIME_NO_TIMEOUT;
  st_utime_t write_timeout_us = ST_UTIME_NO_TIMEOUT;
};

/// Per process (ST is single-threaded): the state the static system-call policy reads.
struct process_state {
  core::server_context* ctx = nullptr;
  std::vector<st_connection*> by_fd;
  st_thread_t acceptor = nullptr;
  st_cond_t slot_freed = nullptr;
  int live = 0;
  bool stopping = false;
} state;

/// core::serve_blocking's system calls for an ST thread: st_read's and st_writev's loops
/// written out (the same system calls in the same order), so that each wait, where the thread
/// gives up the CPU, is counted. A wait fails with ETIME after the timeout of its kind.
struct st_io {
  /// st_netfd_poll always switches to the scheduler: one user-level switch.
  static bool wait(int fd, int how, st_utime_t timeout_us) {
    state.ctx->stats.add(state.ctx->stats.user_switches);
    return st_netfd_poll(state.by_fd[fd]->nfd, how, timeout_us) == 0;
  }
  static ssize_t read(int fd, void* buf, size_t n) {
    for (;;) {
      ssize_t got = ::read(fd, buf, n);
      if (got >= 0) return got;
      if (errno == EINTR) continue;
      if (errno != EAGAIN || !wait(fd, POLLIN, state.by_fd[fd]->read_timeout_us)) return -1;
    }
  }
  static ssize_t writev(int fd, const iovec* iov, int n) {
    size_t total = 0;
    for (int i = 0; i < n; ++i) total += iov[i].iov_len;
    for (;;) {
      ssize_t sent = ::writev(fd, iov, n);
      if (sent < 0 && errno == EINTR) continue;
      if (sent < 0 && errno != EAGAIN) return -1;
      if (sent >= 0 && static_cast<size_t>(sent) == total) return sent;
      // Would block, or wrote part: like st_writev, wait for room before writing more.
      if (!wait(fd, POLLOUT, state.by_fd[fd]->write_timeout_us)) return -1;
      if (sent > 0) return sent;
    }
  }
  static ssize_t sendfile(int out, int in, off_t* offset, size_t n) {
    for (;;) {
      ssize_t sent = ::sendfile(out, in, offset, n);
      if (sent >= 0 || errno != EAGAIN) return sent;
      if (!wait(out, POLLOUT, state.by_fd[out]->write_timeout_us)) return -1;
    }
  }
  static void set_timeout(int fd, core::wait_kind kind, int ms) {
    st_connection& c = *state.by_fd[fd];
    (kind == core::wait_kind::send ? c.write_timeout_us : c.read_timeout_us) =
        static_cast<st_utime_t>(ms) * 1000;
  }
  static bool wait_readable(int fd, int timeout_ms) {
    return wait(fd, POLLIN, static_cast<st_utime_t>(timeout_ms) * 1000);
  }
  static bool stopping() { return state.stopping; }
};

void* serve_connection(void* arg) {
  st_netfd_t nfd = static_cast<st_netfd_t>(arg);
  int fd = st_netfd_fileno(nfd);
  core::server_context& ctx = *state.ctx;
  {
    core::connection conn(ctx.content, ctx.stats, ctx.limits());
    st_connection entry{nfd, &conn, st_thread_self()};
    state.by_fd[fd] = &entry;
    core::serve_blocking<st_io>(fd, conn);
    state.by_fd[fd] = nullptr;
  }
  st_netfd_close(nfd);  // ST's netfd owns the socket
  --state.live;
  st_cond_signal(state.slot_freed);
  return nullptr;
}

/// Waits for SIGTERM/SIGINT (the core's stop eventfd), then stops the acceptor and wakes every
/// connection waiting for its next request: its wait returns EINTR, and core::read_idle then
/// ends it (the stop policy).
void* watch_stop(void*) {
  st_netfd_t stop = st_netfd_open(state.ctx->stop_fd);
  while (st_netfd_poll(stop, POLLIN, ST_UTIME_NO_TIMEOUT) < 0) {
  }
  state.stopping = true;
  st_thread_interrupt(state.acceptor);
  for (st_connection* c : state.by_fd)
    if (c && c->conn->idle()) st_thread_interrupt(c->thread);
  return nullptr;
}

/// accept() failed for lack of descriptors: past what this process can hold. Says so once,
/// drops the connection that cannot be accepted (the core's acceptor does it with its spare
/// descriptor) rather than leave it queued, and waits for the next one — accept() fails with
/// EMFILE even on an empty queue, and retrying at once would starve the connection threads.
/// Returns a connection when a descriptor has freed up meanwhile.
st_netfd_t accept_past_fd_limit(core::acceptor& guard, st_netfd_t listener) {
  static bool warned = false;
  if (!warned)
    std::fprintf(stderr,
                 "httpd-st: out of file descriptors at %d connections (limit %d): "
                 "closing new connections until some end\n",
                 state.live, st_getfdlimit());
  warned = true;
  core::unique_fd fd;  // the guard counts a connection it drops as refused
  if (guard.accept_one(fd, true) == core::accept_status::accepted)
    return st_netfd_open_socket(fd.release());
  st_netfd_poll(listener, POLLIN, ST_UTIME_NO_TIMEOUT);
  errno = EINTR;  // nothing accepted: the caller loops
  return nullptr;
}

int serve_process(core::server_context& ctx) {
  // Before st_init: the default select() would also lower RLIMIT_NOFILE to FD_SETSIZE.
  if (st_set_eventsys(ST_EVENTSYS_POLL) < 0 || st_init() < 0) {
    std::fprintf(stderr, "httpd-st: st_init (poll event system): %s\n", std::strerror(errno));
    return 1;
  }
  state.ctx = &ctx;
  state.by_fd.assign(static_cast<size_t>(st_getfdlimit()) + 1, nullptr);
  state.acceptor = st_thread_self();
  state.slot_freed = st_cond_new();
  st_netfd_t listener = st_netfd_open_socket(ctx.listener.get());
  if (listener == nullptr || st_thread_create(watch_stop, nullptr, 0, 0) == nullptr) {
    std::fprintf(stderr, "httpd-st: %s\n", std::strerror(errno));
    return 1;
  }
  core::acceptor fd_limit_guard(ctx.listener.get(), &ctx.stats);
  while (!state.stopping) {
    if (state.live >= ctx.config.max_conns) {  // at the cap the rest wait in the backlog
      st_cond_wait(state.slot_freed);
      continue;
    }
    st_netfd_t nfd = st_accept(listener, nullptr, nullptr, ST_UTIME_NO_TIMEOUT);
    if (nfd == nullptr && (errno == EMFILE || errno == ENFILE))
      nfd = accept_past_fd_limit(fd_limit_guard, listener);
    if (nfd == nullptr) {
      if (errno != EINTR) st_usleep(1000);  // e.g. ENOBUFS: do not spin
      continue;
    }
    ++state.live;
    if (st_thread_create(serve_connection, nfd, 0, static_cast<int>(ctx.config.stack_size)) ==
        nullptr) {
      std::fprintf(stderr, "httpd-st: st_thread_create: %s (dropping the connection)\n",
                   std::strerror(errno));
      ctx.stats.count_refused();
      st_netfd_close(nfd);
      --state.live;
    }
  }
  // The stop policy: idle connections are ending (watch_stop woke them); the rest get the grace.
  core::grace_period grace = ctx.grace();
  grace.begin();
  grace.wait([] { return state.live == 0; }, [](int ms) { st_usleep(ms * 1000); });
  return 0;
}

}  // namespace

int run(core::server_context& ctx) {
  if (ctx.config.workers == 1) return serve_process(ctx);
  // Workers see the stop through ctx.stop_fd and run the grace period themselves.
  core::supervisor workers(ctx, SIGTERM);
  bool started = workers.start_pool(static_cast<size_t>(ctx.config.workers),
                                    [&](size_t) { return serve_process(ctx); });
  if (started) workers.supervise();
  workers.stop();
  return started ? 0 : 1;
}

}  // namespace httpbench::backend
