// fork — one process per connection (the CERN httpd / inetd model; Kerneis & Chroboczek 2009
// §3: the toy server that spawns "a new ... process as soon as [a connection] is accepted",
// created with fork, the slowest of the implementations they measured).
//
// The parent accepts, forks and closes its copy of the socket; the child serves the connection
// with blocking I/O (keep-alive included) and _exits. What decides its performance: (1) one
// fork() per connection, whose cost is copying the parent's page tables and memory map rather
// than scheduling (the paper's reading of its result) — so the parent stays single-threaded and
// small, and the child never execs; (2) the parent reaps in its own loop, never in a signal
// handler: the core's supervisor reports exits on a signalfd polled with the listening socket,
// and the parent reaps after each wake-up and before each accept, so exits cost no extra
// wake-up under load, zombies do not pile up, and the count of live children that --max-conns
// caps is exact.
#include <poll.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "core/io.hpp"
#include "core/listener.hpp"
#include "core/server.hpp"
#include "core/supervisor.hpp"

namespace httpbench::backend {

const core::backend_info info{
    .name = "fork",
    .model = "process per connection (fork)",
    .summary = "parent accepts and forks one child per connection; the child serves it with "
               "blocking I/O and exits; --max-conns caps live children",
    .paper = "Kerneis & Chroboczek 2009 §3 (fork); the CERN httpd / inetd model",
    .category = core::backend_category::process,
    .default_workers = 1,
    .max_connections = 2000,
    .tunables = {},
};

namespace {

// In the child: serve the one connection, then exit.
int serve_child(core::server_context& ctx, core::unique_fd fd) {
  core::end_reading_on_stop();
  ctx.listener.reset();  // or the port stays bound after the parent stops listening
  core::serving(fd.get());
  core::serve_socket(ctx, fd.get());
  core::serving(-1);
  return 0;
}

class parent {
 public:
  explicit parent(core::server_context& ctx)
      : ctx_(ctx), children_(ctx, SIGTERM), acceptor_(ctx.listener.get(), &ctx.stats) {}

  int run() {
    while (!ctx_.stop_requested()) {
      children_.reap();
      // At the cap the listening socket is not watched: new connections wait in the backlog.
      bool room = children_.live() < static_cast<size_t>(ctx_.config.max_conns);
      pollfd fds[3] = {{ctx_.stop_fd, POLLIN, 0},
                       {children_.exit_fd(), POLLIN, 0},
                       {room ? ctx_.listener.get() : -1, POLLIN, 0}};
      if (::poll(fds, 3, -1) <= 0) continue;
      if (fds[0].revents != 0) break;
      if (fds[2].revents != 0) accept_and_fork();
    }
    // The stop policy: no more accepting; children end their reading (idle ones exit at once)
    // and get the grace period.
    ctx_.listener.reset();
    children_.stop();
    return 0;
  }

 private:
  void accept_and_fork() {
    // Accept until EAGAIN (or the cap): one wake-up per burst of connects. Under a steady
    // stream that lasts long, so reap on the way.
    for (;;) {
      children_.reap();
      if (children_.live() >= static_cast<size_t>(ctx_.config.max_conns)) return;
      core::unique_fd fd;
      core::accept_status s = acceptor_.accept_one(fd, /*nonblocking=*/false);
      if (s == core::accept_status::error) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      if (s != core::accept_status::accepted) return;
      // The parent's copy of the socket closes when `fd` goes out of scope.
      if (children_.spawn_one([&] { return serve_child(ctx_, std::move(fd)); })) continue;
      if (!warned_)
        std::fprintf(stderr, "httpd-fork: fork: %s (dropping connections)\n", std::strerror(errno));
      warned_ = true;
      ctx_.stats.count_refused();
      return;
    }
  }

  core::server_context& ctx_;
  core::supervisor children_;
  core::acceptor acceptor_;
  bool warned_ = false;
};

}  // namespace

int run(core::server_context& ctx) {
  core::preset_socket_timeouts(ctx);  // accepted sockets inherit serve_socket's timeouts
  return parent(ctx).run();
}

}  // namespace httpbench::backend
