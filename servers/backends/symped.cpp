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
// Accept counts per process live in a MAP_SHARED array and are printed by the parent as
// "accepts_per_process" so the distribution can be plotted. The parent only supervises: it
// restarts a worker that dies, forwards the stop (the shared stop eventfd wakes the workers;
// SIGTERM is sent too), waits for them (bounded) and prints the stats line; workers _exit.
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <new>
#include <thread>
#include <vector>

#include "core/event_loop.hpp"
#include "core/listener.hpp"
#include "core/poller.hpp"
#include "core/server.hpp"

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

constexpr int max_restarts = 16;       // a worker that keeps dying is a bug, not bad luck
constexpr int stop_wait_ms = 5000;     // workers give connections a 2 s grace period

struct worker {
  int listen_fd;  ///< the socket this worker accepts from (owned by run())
  pid_t pid = -1;
};

// Runs in the child: one SPED loop on its own epoll, then _exit (never back into main()).
[[noreturn]] void serve(core::server_context& ctx, std::vector<worker>& workers, size_t index,
                        std::atomic<uint64_t>* accepted, bool exclusive, int max_conns) {
  prctl(PR_SET_PDEATHSIG, SIGTERM);  // never outlive a parent killed without notice
  for (size_t i = 0; i < workers.size(); ++i)  // keep only our own socket (reuseport)
    if (workers[i].listen_fd != workers[index].listen_fd) ::close(workers[i].listen_fd);
  core::event_loop_options options{.listen_fd = workers[index].listen_fd,
                                   .max_conns = max_conns,
                                   .exclusive_accept = exclusive,
                                   .accepted = accepted};
  int rc = core::event_loop<core::epoll_poller>(ctx, options).run();
  std::fflush(stderr);
  _exit(rc);
}

bool start(core::server_context& ctx, std::vector<worker>& workers, size_t index,
           std::atomic<uint64_t>* accepted, bool exclusive, int max_conns) {
  pid_t pid = ::fork();
  if (pid < 0) {
    std::fprintf(stderr, "httpd-symped: fork: %s\n", std::strerror(errno));
    return false;
  }
  if (pid == 0) serve(ctx, workers, index, &accepted[index], exclusive, max_conns);
  workers[index].pid = pid;
  return true;
}

void wait_for_workers(std::vector<worker>& workers) {
  auto give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(stop_wait_ms);
  for (;;) {
    bool any = false;
    for (worker& w : workers) {
      if (w.pid > 0 && ::waitpid(w.pid, nullptr, WNOHANG) == w.pid) w.pid = -1;
      any = any || w.pid > 0;
    }
    if (!any) return;
    if (std::chrono::steady_clock::now() >= give_up) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (worker& w : workers)
    if (w.pid > 0) {
      std::fprintf(stderr, "httpd-symped: worker %d did not stop; killing it\n", int(w.pid));
      ::kill(w.pid, SIGKILL);
      ::waitpid(w.pid, nullptr, 0);
    }
}

}  // namespace

int run(core::server_context& ctx) {
  std::string_view mode = ctx.setting("accept");
  size_t count = static_cast<size_t>(ctx.config.workers > 0 ? ctx.config.workers : 1);
  int max_conns = (ctx.config.max_conns + static_cast<int>(count) - 1) / static_cast<int>(count);

  // One socket for all (shared, exclusive), or the core's SO_REUSEPORT socket for worker 0 and
  // one more bound to the same address for every other worker, all open before the first fork.
  std::vector<worker> workers(count, worker{ctx.listener.get()});
  std::vector<core::unique_fd> more_sockets;
  if (mode == "reuseport") {
    uint16_t port = core::local_port(ctx.listener.get());
    for (size_t i = 1; i < count; ++i) {
      std::string error;
      more_sockets.push_back(core::open_listener(
          {ctx.config.bind, port, ctx.config.backlog, /*reuseport=*/true}, error));
      if (!more_sockets.back()) {
        std::fprintf(stderr, "httpd-symped: accept=reuseport: %s\n", error.c_str());
        return 1;
      }
      workers[i].listen_fd = more_sockets.back().get();
    }
  }

  void* shared = ::mmap(nullptr, count * sizeof(std::atomic<uint64_t>), PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared == MAP_FAILED) {
    std::fprintf(stderr, "httpd-symped: mmap: %s\n", std::strerror(errno));
    return 1;
  }
  auto* accepted = static_cast<std::atomic<uint64_t>*>(shared);
  for (size_t i = 0; i < count; ++i) new (&accepted[i]) std::atomic<uint64_t>(0);

  bool exclusive = mode == "exclusive";
  int rc = 0;
  for (size_t i = 0; i < count && rc == 0; ++i)
    if (!start(ctx, workers, i, accepted, exclusive, max_conns)) rc = 1;

  // Supervise: restart a worker that dies (its socket stays open here, so connections queued
  // on it are kept), until the stop arrives.
  int restarts = 0;
  while (rc == 0 && !ctx.stop_requested()) {
    pollfd stop{ctx.stop_fd, POLLIN, 0};
    ::poll(&stop, 1, 200);
    int status;
    pid_t pid;
    while (!ctx.stop_requested() && (pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
      for (size_t i = 0; i < count; ++i) {
        if (workers[i].pid != pid) continue;
        workers[i].pid = -1;
        std::fprintf(stderr, "httpd-symped: worker %zu (pid %d) %s %d; restarting it\n", i,
                     int(pid), WIFSIGNALED(status) ? "killed by signal" : "exited with",
                     WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        if (++restarts > max_restarts || !start(ctx, workers, i, accepted, exclusive, max_conns))
          rc = 1;
      }
    }
  }
  for (const worker& w : workers)
    if (w.pid > 0) ::kill(w.pid, SIGTERM);
  wait_for_workers(workers);

  std::string counts = "\"accept_mode\": \"" + std::string(mode) + "\", \"accepts_per_process\": [";
  for (size_t i = 0; i < count; ++i)
    counts += (i ? ", " : "") + std::to_string(accepted[i].load());
  ctx.extra_stats_json = counts + "]";
  return rc;
}

}  // namespace httpbench::backend
