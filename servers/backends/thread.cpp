// thread — one NPTL kernel thread per connection (Kerneis & Chroboczek 2009 §3: the toy server
// that "spawns a new thread as soon as [a connection] is accepted"; Pariag et al.'s
// thread-per-connection architecture on kernel threads).
//
// The main thread accepts and creates a detached thread per connection; the thread serves the
// connection with blocking I/O until it closes. What decides its performance: the cost of
// pthread_create per connection (a small, explicit --stack-size keeps it and the memory per
// connection low: a 64 KiB stack instead of glibc's 8 MiB default), and one kernel context
// switch per blocking read.
#include <pthread.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>

#include "core/buffer_pool.hpp"
#include "core/io.hpp"
#include "core/listener.hpp"
#include "core/server.hpp"
#include "core/stop.hpp"
#include "core/worker_threads.hpp"

namespace httpbench::backend {

const core::backend_info info{
    .name = "thread",
    .model = "thread per connection (NPTL kernel threads)",
    .summary = "accept loop spawning one detached pthread per connection, blocking I/O",
    .paper = "Kerneis & Chroboczek 2009 §3 (NPTL); Pariag et al. 2007 §2",
    .category = core::backend_category::thread,
    .default_workers = 1,
    .max_connections = 2000,
    .tunables = {},
};

namespace {

struct shared_state {
  core::server_context& ctx;
  core::live_count live;          ///< for --max-conns and the stop
  core::served_sockets served;    ///< for the stop to end their reading
};

struct job {
  shared_state& state;
  core::unique_fd fd;
};

void* serve_connection(void* arg) {
  std::unique_ptr<job> j(static_cast<job*>(arg));
  {
    core::served_sockets::entry registered(j->state.served, j->fd.get());
    core::serve_socket(j->state.ctx, j->fd.get());
  }
  j->fd.reset();
  j->state.live.closed();
  return nullptr;
}

}  // namespace

int run(core::server_context& ctx) {
  core::set_buffer_cache_limit(0);  // one connection per thread: no per-thread lists, a shared handful
  core::preset_socket_timeouts(ctx);  // accepted sockets inherit serve_socket's timeouts
  // Static: detached workers may still run when run() returns and the process exits.
  static shared_state state{ctx, {}, {}};
  pthread_attr_t attr;
  if (!core::worker_thread_attributes(ctx, attr, /*detached=*/true)) return 2;

  core::acceptor acceptor(ctx.listener.get(), &ctx.stats);
  bool warned = false;
  // At --max-conns the rest wait in the backlog until a connection closes (or the stop).
  while (state.live.wait_below(ctx.config.max_conns, ctx.stop_fd)) {
    core::unique_fd fd;
    core::accept_status s = acceptor.accept_blocking(fd, false, ctx.stop_fd);
    if (s == core::accept_status::stopped) break;
    if (s == core::accept_status::error) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (s != core::accept_status::accepted) continue;
    state.live.opened();
    auto* arg = new job{state, std::move(fd)};
    pthread_t tid;
    // The attributes block the stop signals in the worker (worker_thread_attributes).
    int rc = pthread_create(&tid, &attr, serve_connection, arg);
    if (rc != 0) {
      if (!warned)
        std::fprintf(stderr, "httpd-thread: pthread_create: %s (dropping connections)\n",
                     std::strerror(rc));
      warned = true;
      delete arg;
      ctx.stats.count_refused();
      state.live.closed();
    }
  }
  // The stop policy: no more accepting, idle connections end, the rest get the grace period;
  // then exit ends whatever is left.
  ctx.listener.reset();
  state.served.end_reading();
  core::grace_period grace = ctx.grace();
  grace.begin();
  state.live.drain(grace);
  pthread_attr_destroy(&attr);
  return 0;
}

}  // namespace httpbench::backend
