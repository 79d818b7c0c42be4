// symped — SYmmetric Multi-Process Event-Driven server (Pariag et al. 2007 §5.1; the N-copy
// model of Zeldovich et al. with one shared port instead of one port per copy).
//
// `--workers` SPED processes (default 2), forked after the listening socket is open; each runs
// its own copy of the sped loop (core::event_loop) with its own epoll instance created after
// the fork, so no process ever sees another's connections and nothing is shared but the
// listening socket(s) and the counters. What decides its performance is how a new connection
// reaches one of the processes (`--set accept=`):
//   shared     one listening socket in every process's epoll, level-triggered: every process
//              blocked in epoll_wait is woken for each connection and all but one find EAGAIN
//              (the thundering herd), and whoever runs first takes the whole burst;
//   exclusive  the same socket registered with EPOLLEXCLUSIVE: one waiter is woken per event,
//              in practice the most recent one, so the load skews towards one process;
//   reuseport  one SO_REUSEPORT socket per process: the kernel hashes each connection to one
//              socket, an even spread with no wake-up contention (but a process at its
//              connection cap leaves its share waiting in its own queue).
// and, as §5.3 shows, the connection cap per process: --max-conns is the total, split evenly.
// The content cache is loaded before the fork, so the copies share its pages (copy-on-write,
// never written) and its open files: what §5.2's shared-SYMPED had to build with mmap and clone.
// Accept counts per process live in the supervisor's shared per-worker counters and are printed
// by the parent as "accepts_per_process" so the distribution can be plotted. The parent only
// supervises (core::supervisor): it restarts a worker that dies, stops them (the shared stop
// eventfd wakes the workers, which run the grace period themselves; SIGTERM, then SIGKILL, is
// the supervisor's) and prints the stats line; workers _exit.
#include <signal.h>

#include <cstdio>
#include <string>
#include <vector>

#include "core/event_loop.hpp"
#include "core/listener.hpp"
#include "core/poller.hpp"
#include "core/server.hpp"
#include "core/supervisor.hpp"

namespace httpbench::backend {

namespace {
bool wants_reuseport(const core::server_config& config);
}  // namespace

const core::backend_info info{
    .name = "symped",
    .model = "event-driven, several processes (SYMPED)",
    .summary = "--workers forked SPED processes, each with its own epoll, on one port",
    .paper = "Pariag et al. 2007 §5.1–5.2",
    .category = core::backend_category::event,
    .default_workers = 2,
    .max_connections = 10000,
    .tunables = {{"accept", "shared", {"shared", "exclusive", "reuseport"},
                  "how a connection reaches a process: one shared socket in every epoll "
                  "(herd), EPOLLEXCLUSIVE, or one SO_REUSEPORT socket per process"}},
    .listen_reuseport = wants_reuseport,
};

namespace {

bool wants_reuseport(const core::server_config& config) {
  return core::setting(config, info, "accept") == "reuseport";
}

}  // namespace

int run(core::server_context& ctx) {
  std::string_view mode = ctx.setting("accept");
  size_t count = static_cast<size_t>(ctx.config.workers);
  int max_conns = (ctx.config.max_conns + static_cast<int>(count) - 1) / static_cast<int>(count);

  // One socket for all (shared, exclusive), or the core's SO_REUSEPORT socket for worker 0 and
  // one more bound to the same address for every other worker, all open before the first fork.
  std::vector<core::unique_fd> more_sockets;
  if (mode == "reuseport") {
    core::listen_options same{ctx.config.bind, core::local_port(ctx.listener.get()),
                              ctx.config.backlog, /*reuseport=*/true,
                              ctx.config.defer_accept_s};
    for (size_t i = 1; i < count; ++i) {
      std::string error;
      more_sockets.push_back(core::open_listener(same, error));
      if (!more_sockets.back()) {
        std::fprintf(stderr, "httpd-symped: accept=reuseport: %s\n", error.c_str());
        return 1;
      }
    }
  }

  core::supervisor workers(ctx, SIGTERM);
  // In worker `i`: one SPED loop on its own epoll, on its own socket only.
  auto serve = [&](size_t i) {
    int own = i == 0 || more_sockets.empty() ? ctx.listener.get() : more_sockets[i - 1].get();
    for (core::unique_fd& other : more_sockets)
      if (other.get() != own) other.reset();
    if (ctx.listener.get() != own) ctx.listener.reset();
    core::event_loop_options options{.listen_fd = own,
                                     .max_conns = max_conns,
                                     .exclusive_accept = mode == "exclusive",
                                     .accepted = &workers.slot_counter(i)};
    return core::event_loop<core::epoll_poller>(ctx, options).run();
  };
  bool started = workers.start_pool(count, serve);
  if (started) workers.supervise();
  workers.stop();

  std::string counts = "\"accept_mode\": \"" + std::string(mode) + "\", \"accepts_per_process\": [";
  for (size_t i = 0; i < count; ++i)
    counts += (i ? ", " : "") + std::to_string(workers.slot_counter(i).load());
  ctx.extra_stats_json = counts + "]";
  return started ? 0 : 1;
}

}  // namespace httpbench::backend
