// fork — one process per connection (the CERN httpd / inetd model; Kerneis & Chroboczek 2009
// §3: the toy server that spawns "a new ... process as soon as [a connection] is accepted",
// created with fork, the slowest of the implementations they measured).
//
// The parent accepts, forks and closes its copy of the socket; the child serves the connection
// with blocking I/O (keep-alive included) and _exits. What decides its performance: (1) one
// fork() per connection, whose cost is copying the parent's page tables and memory map rather
// than scheduling (the paper's reading of its result) — so the parent stays single-threaded and
// small, and the child never execs; (2) the parent reaps in its own loop, never in a signal
// handler: SIGCHLD is blocked except inside ppoll(), and waitpid(WNOHANG) runs after each wake-up
// and before each accept, so exits cost no extra wake-up under load, zombies do not pile up,
// and the count of live children that --max-conns caps is exact.
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <unordered_set>

#include "core/io.hpp"
#include "core/worker_process.hpp"
#include "core/listener.hpp"
#include "core/server.hpp"

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

// --- In a child ------------------------------------------------------------------------------

/// The parent, for a child to notice that it died.
pid_t parent_pid = 0;

[[noreturn]] void serve_child(core::server_context& ctx, core::unique_fd fd) {
  // A parent killed outright (SIGKILL) stops its children as SIGTERM would.
  if (!core::become_worker_process(parent_pid, SIGTERM)) ::raise(SIGTERM);
  ctx.listener.reset();  // or the port stays bound after the parent stops listening
  ::close(ctx.stop_fd);

  core::serving(fd.get());
  core::serve_socket(ctx, fd.get());
  core::serving(-1);
  fd.reset();
  _exit(0);  // never return into the parent's run() or print its stats line
}

// --- In the parent ---------------------------------------------------------------------------


class parent {
 public:
  explicit parent(core::server_context& ctx) : ctx_(ctx), acceptor_(ctx.listener.get()) {}

  int run() {
    sigset_t previous;
    waiting_ = core::wake_on_child_exit(previous);

    while (!ctx_.stop_requested()) {
      reap();
      // At the cap the listening socket is not watched: new connections wait in the backlog.
      bool room = live() < ctx_.config.max_conns;
      pollfd fds[2] = {{ctx_.stop_fd, POLLIN, 0}, {room ? ctx_.listener.get() : -1, POLLIN, 0}};
      if (::ppoll(fds, 2, nullptr, &waiting_) <= 0) continue;  // EINTR: a child exited
      if (fds[0].revents != 0) break;
      if (fds[1].revents != 0) accept_and_fork();
    }
    stop();
    sigprocmask(SIG_SETMASK, &previous, nullptr);
    return 0;
  }

 private:
  int live() const { return static_cast<int>(children_.size()); }

  void accept_and_fork() {
    // Accept until EAGAIN (or the cap): one wake-up per burst of connects. Under a steady
    // stream that lasts long, so reap on the way (one cheap waitpid per connection).
    for (;;) {
      reap();
      if (live() >= ctx_.config.max_conns) return;
      core::unique_fd fd;
      core::accept_status s = acceptor_.accept_one(fd, /*nonblocking=*/false);
      if (s == core::accept_status::error) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      if (s != core::accept_status::accepted) return;
      ctx_.stats.add(ctx_.stats.connections);
      pid_t pid = ::fork();
      if (pid == 0) serve_child(ctx_, std::move(fd));
      fd.reset();
      if (pid > 0) {
        children_.insert(pid);
        continue;
      }
      if (!warned_)
        std::fprintf(stderr, "httpd-fork: fork: %s (dropping connections)\n", std::strerror(errno));
      warned_ = true;
      ctx_.stats.add(ctx_.stats.errors);
      return;
    }
  }

  void reap() {
    int status;
    pid_t pid;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
      children_.erase(pid);
      // A child that crashed lost its connection; one we killed at stop did not count.
      if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL) ctx_.stats.add(ctx_.stats.errors);
    }
  }

  // Stop accepting, let children finish their requests (they drop idle connections at once),
  // and kill those still busy after the grace period.
  void stop() {
    ctx_.listener.reset();
    for (pid_t pid : children_) ::kill(pid, SIGTERM);
    auto give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(ctx_.config.grace_ms);
    reap();
    while (!children_.empty() && std::chrono::steady_clock::now() < give_up) {
      timespec tick{0, 20'000'000};
      ::ppoll(nullptr, 0, &tick, &waiting_);
      reap();
    }
    for (pid_t pid : children_) ::kill(pid, SIGKILL);
    for (pid_t pid : children_) ::waitpid(pid, nullptr, 0);
    children_.clear();
  }

  core::server_context& ctx_;
  core::acceptor acceptor_;
  std::unordered_set<pid_t> children_;
  sigset_t waiting_{};  ///< the signal mask inside ppoll(): SIGCHLD unblocked
  bool warned_ = false;
};

}  // namespace

int run(core::server_context& ctx) {
  parent_pid = ::getpid();
  return parent(ctx).run();
}

}  // namespace httpbench::backend
