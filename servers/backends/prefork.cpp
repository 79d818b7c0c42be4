// prefork — a fixed pool of processes, each accepting on the shared listening socket and serving
// one connection at a time (Apache 2's prefork MPM, which Kerneis & Chroboczek 2009 §3
// measured next to the worker MPM; Pariag et al.'s multi-process architecture).
//
// The parent opens nothing per connection: it forks --workers processes once, then only
// supervises them with the core's supervisor (a worker that dies is replaced) and stops them. What decides its performance:
// (1) no fork per connection — the pool is the difference from `fork`; (2) every worker blocks
// in accept() on the one listening socket, switched to blocking mode: Linux queues blocked
// accepters exclusively and wakes exactly one per connection, so there is no thundering herd
// and no accept mutex (Apache's SINGLE_LISTEN_UNSERIALIZED_ACCEPT). The pool bounds
// concurrency: with every worker holding a keep-alive connection, the next connection waits in
// the kernel backlog until one closes (max_connections = the default pool).
// Stopping: shutdown() of the listening socket makes every blocked accept() fail with EINVAL at
// once, with no race against a signal arriving just before accept() blocks.
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "core/io.hpp"
#include "core/listener.hpp"
#include "core/server.hpp"
#include "core/supervisor.hpp"

namespace httpbench::backend {

const core::backend_info info{
    .name = "prefork",
    .model = "process pool (Apache prefork)",
    .summary = "--workers processes forked at start, each blocking in accept() on the shared "
               "socket and serving one connection at a time; concurrent keep-alive "
               "connections are bounded by --workers (and --max-conns), the rest wait in the "
               "backlog",
    .paper = "Kerneis & Chroboczek 2009 §3 (Apache prefork); Pariag et al. 2007 §2",
    .category = core::backend_category::process,
    .default_workers = 256,  // Apache prefork's default MaxRequestWorkers
    .workers_bound_connections = true,
    .max_connections = 256,  // one connection per worker at the default --workers
    .tunables = {},
};

namespace {

// A worker: accept, serve one connection, repeat, until the stop.
int serve_connections(core::server_context& ctx) {
  core::end_reading_on_stop();
  core::acceptor acceptor(ctx.listener.get(), &ctx.stats);
  while (!core::stop_flag) {
    core::unique_fd fd;
    core::accept_status s = acceptor.accept_one(fd, /*nonblocking=*/false);  // blocks
    if (s == core::accept_status::accepted) {
      core::serving(fd.get());
      core::serve_socket(ctx, fd.get());
      core::serving(-1);
    } else if (s == core::accept_status::error) {
      if (errno == EINVAL) break;  // the parent shut the listening socket down: stop
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  return 0;
}

}  // namespace

int run(core::server_context& ctx) {
  // Blocking accept() is what gives one wake-up per connection (see the top of the file).
  core::set_nonblocking(ctx.listener.get(), false);
  core::preset_socket_timeouts(ctx);  // accepted sockets inherit serve_socket's timeouts
  // A worker blocked in accept() would not notice SIGTERM: it dies with the parent by SIGKILL,
  // never leaving an orphaned pool on the port.
  core::supervisor workers(ctx, SIGKILL);
  // One connection per worker, so --max-conns caps the pool.
  size_t pool = static_cast<size_t>(std::min(ctx.config.workers, ctx.config.max_conns));
  workers.start_pool(pool, [&](size_t) { return serve_connections(ctx); });
  if (workers.live() == 0) {
    std::fprintf(stderr, "httpd-prefork: could not start any worker\n");
    return 1;
  }
  workers.supervise();
  // The stop policy: every blocked accept() fails at once, with no race against a signal
  // arriving just before accept() blocks; busy workers get the grace period.
  ::shutdown(ctx.listener.get(), SHUT_RDWR);
  workers.stop();
  ctx.extra_stats_json = "\"worker_restarts\": " + std::to_string(workers.restarts());
  return 0;
}

}  // namespace httpbench::backend
