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
#include <semaphore.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "core/buffer_pool.hpp"
#include "core/io.hpp"
#include "core/listener.hpp"
#include "core/server.hpp"
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
  core::server_context* ctx;
  sem_t slots;  ///< --max-conns: one token per live connection
  std::atomic<int> live{0};
};

struct job {
  shared_state* state;
  int fd;
};

void* serve_connection(void* arg) {
  job j = *static_cast<job*>(arg);
  delete static_cast<job*>(arg);
  core::server_context& ctx = *j.state->ctx;
  core::close_served(j.fd, core::serve_blocking_socket(ctx, j.fd));
  j.state->live.fetch_sub(1);
  sem_post(&j.state->slots);
  return nullptr;
}

}  // namespace

int run(core::server_context& ctx) {
  core::set_buffer_cache_limit(0);  // one connection per thread: share buffers through malloc
  // Static: detached workers may still run when run() returns and the process exits.
  static shared_state state{&ctx, {}, {}};
  sem_init(&state.slots, 0, static_cast<unsigned>(ctx.config.max_conns));
  pthread_attr_t attr;
  if (!core::worker_thread_attributes(ctx, attr, /*detached=*/true)) return 2;

  core::acceptor acceptor(ctx.listen_fd);
  bool warned = false;
  while (!ctx.stop_requested()) {
    // Wait for a free connection slot, checking for the stop now and then.
    timespec deadline{};
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_nsec += 100'000'000;
    if (deadline.tv_nsec >= 1'000'000'000) deadline.tv_sec++, deadline.tv_nsec -= 1'000'000'000;
    if (sem_timedwait(&state.slots, &deadline) != 0) continue;
    int fd;
    core::accept_status s = acceptor.accept_blocking(fd, false, ctx.stop_fd);
    if (s != core::accept_status::accepted) {
      sem_post(&state.slots);
      if (s == core::accept_status::error) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    ctx.stats.add(ctx.stats.connections);
    state.live.fetch_add(1);
    pthread_t tid;
    int rc;
    {
      core::stop_signals_blocked blocked;  // the worker inherits the block
      rc = pthread_create(&tid, &attr, serve_connection, new job{&state, fd});
    }
    if (rc != 0) {
      if (!warned)
        std::fprintf(stderr, "httpd-thread: pthread_create: %s (dropping connections)\n",
                     std::strerror(rc));
      warned = true;
      ::close(fd);
      ctx.stats.add(ctx.stats.errors);
      state.live.fetch_sub(1);
      sem_post(&state.slots);
    }
  }
  // Stop accepting; give connections in progress a moment to finish, then let exit end them.
  ::close(ctx.listen_fd);
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (state.live.load() > 0 && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  pthread_attr_destroy(&attr);
  return 0;
}

}  // namespace httpbench::backend
