// prefork — a fixed pool of processes, each accepting on the shared listening socket and serving
// one connection at a time (Apache 2's prefork MPM, which Kerneis & Chroboczek 2009 §3
// measured next to the worker MPM; Pariag et al.'s multi-process architecture).
//
// The parent opens nothing per connection: it forks --workers processes once, then only
// supervises (a worker that dies is replaced) and stops them. What decides its performance:
// (1) no fork per connection — the pool is the difference from `fork`; (2) every worker blocks
// in accept() on the one listening socket, switched to blocking mode: Linux queues blocked
// accepters exclusively and wakes exactly one per connection, so there is no thundering herd
// and no accept mutex (Apache's SINGLE_LISTEN_UNSERIALIZED_ACCEPT). The pool bounds
// concurrency: with every worker holding a keep-alive connection, the next connection waits in
// the kernel backlog until one closes (max_connections = the default pool).
// Stopping: shutdown() of the listening socket makes every blocked accept() fail with EINVAL at
// once, with no race against a signal arriving just before accept() blocks.
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "core/io.hpp"
#include "core/worker_process.hpp"
#include "core/listener.hpp"
#include "core/server.hpp"

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

using clock = std::chrono::steady_clock;

/// A worker that dies sooner than this after its start is replaced only after a pause, so a
/// worker that cannot run does not turn the parent into a fork loop.
constexpr auto respawn_pause = std::chrono::milliseconds(100);

// --- In a worker -----------------------------------------------------------------------------

/// The supervisor, for a worker to notice that it died.
pid_t supervisor_pid = 0;

void serve(core::server_context& ctx, core::unique_fd fd) {
  core::serving(fd.get());
  core::serve_socket(ctx, fd.get());
  core::serving(-1);
}

[[noreturn]] void worker_main(core::server_context& ctx) {
  // A supervisor killed outright (SIGKILL) must not leave an orphaned pool on the port; a
  // worker blocked in accept() would not notice a SIGTERM, so it gets SIGKILL.
  if (!core::become_worker_process(supervisor_pid, SIGKILL)) _exit(0);
  ::close(ctx.stop_fd);

  core::acceptor acceptor(ctx.listener.get());
  while (!core::stop_flag) {
    core::unique_fd fd;
    core::accept_status s = acceptor.accept_one(fd, /*nonblocking=*/false);  // blocks
    if (s == core::accept_status::accepted) {
      ctx.stats.add(ctx.stats.connections);
      serve(ctx, std::move(fd));
    } else if (s == core::accept_status::error) {
      if (errno == EINVAL) break;  // the parent shut the listening socket down: stop
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  _exit(0);  // never return into the parent's run() or print its stats line
}

// --- In the parent ---------------------------------------------------------------------------


class supervisor {
 public:
  // One connection per worker, so --max-conns caps the pool.
  explicit supervisor(core::server_context& ctx)
      : ctx_(ctx), slots_(static_cast<size_t>(std::min(ctx.config.workers, ctx.config.max_conns))) {}

  int run() {
    sigset_t previous;
    waiting_ = core::wake_on_child_exit(previous);

    // Blocking accept() is what gives one wake-up per connection (see the top of the file).
    core::set_nonblocking(ctx_.listener.get(), false);
    for (slot& s : slots_) spawn(s);
    if (std::none_of(slots_.begin(), slots_.end(), [](const slot& s) { return s.pid > 0; })) {
      std::fprintf(stderr, "httpd-prefork: could not start any worker\n");
      return 1;
    }
    while (!ctx_.stop_requested()) {
      pollfd stop{ctx_.stop_fd, POLLIN, 0};
      timespec pause{0, 50'000'000};
      bool pending = std::any_of(slots_.begin(), slots_.end(), [](const slot& s) { return s.pid <= 0; });
      if (::ppoll(&stop, 1, pending ? &pause : nullptr, &waiting_) > 0) break;
      reap();
      for (slot& s : slots_)
        if (s.pid <= 0 && clock::now() >= s.not_before) spawn(s);
    }
    stop();
    sigprocmask(SIG_SETMASK, &previous, nullptr);
    ctx_.extra_stats_json = "\"worker_restarts\": " + std::to_string(restarts_);
    return 0;
  }

 private:
  struct slot {
    pid_t pid = 0;
    clock::time_point started{}, not_before{};
  };

  void spawn(slot& s) {
    pid_t pid = ::fork();
    if (pid == 0) worker_main(ctx_);
    if (pid < 0) {
      std::fprintf(stderr, "httpd-prefork: fork: %s\n", std::strerror(errno));
      s.not_before = clock::now() + respawn_pause;
      return;
    }
    s.pid = pid;
    s.started = clock::now();
  }

  // Reaps exited workers; their slots are refilled by the loop (after a pause if they died young).
  void reap() {
    int status;
    pid_t pid;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
      for (slot& s : slots_) {
        if (s.pid != pid) continue;
        s.pid = 0;
        if (stopping_) break;
        ++restarts_;
        std::fprintf(stderr, "httpd-prefork: worker %d %s %d; starting another\n", pid,
                     WIFSIGNALED(status) ? "killed by signal" : "exited with",
                     WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        s.not_before = clock::now() - s.started < std::chrono::seconds(1) ? clock::now() + respawn_pause
                                                                           : clock::now();
        break;
      }
    }
  }

  bool any_alive() const {
    return std::any_of(slots_.begin(), slots_.end(), [](const slot& s) { return s.pid > 0; });
  }

  // Stop accepting (every blocked accept() fails at once), let workers finish their requests
  // (idle connections close at once), and kill those still busy after the grace period.
  void stop() {
    stopping_ = true;
    ::shutdown(ctx_.listener.get(), SHUT_RDWR);
    for (const slot& s : slots_)
      if (s.pid > 0) ::kill(s.pid, SIGTERM);
    auto give_up = clock::now() + std::chrono::milliseconds(ctx_.config.grace_ms);
    reap();
    while (any_alive() && clock::now() < give_up) {
      timespec tick{0, 20'000'000};
      ::ppoll(nullptr, 0, &tick, &waiting_);
      reap();
    }
    for (slot& s : slots_) {
      if (s.pid <= 0) continue;
      ::kill(s.pid, SIGKILL);
      ::waitpid(s.pid, nullptr, 0);
      s.pid = 0;
    }
    ctx_.listener.reset();
  }

  core::server_context& ctx_;
  std::vector<slot> slots_;
  sigset_t waiting_{};  ///< the signal mask inside ppoll(): SIGCHLD unblocked
  uint64_t restarts_ = 0;
  bool stopping_ = false;
};

}  // namespace

int run(core::server_context& ctx) {
  supervisor_pid = ::getpid();
  return supervisor(ctx).run();
}

}  // namespace httpbench::backend
