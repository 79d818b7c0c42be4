// threadpool — a fixed pool of kernel threads fed by one acceptor through a bounded queue
// (Apache 2's worker MPM run as one process with a fixed thread count, which Kerneis &
// Chroboczek 2009 §3 measured next to prefork; Pariag et al.'s thread-pool architecture).
//
// The main thread accepts and appends each socket to a bounded FIFO; --workers threads, created
// once with an explicit --stack-size, take sockets from it and serve each with blocking I/O
// until it closes. What decides its performance: (1) no thread creation per connection — the
// pool is the difference from `thread` — for the price of one hand-off per connection (a mutex,
// and a futex wake when the worker sleeps); (2) the pool bounds concurrency: while every worker
// holds a keep-alive connection, new connections wait in the queue (--set queue=N) and, beyond
// it, the acceptor stops accepting so they wait in the kernel backlog: they queue, never fail
// (max_connections = the default pool). So the acceptor holds at most --workers + queue
// connections open (and at most --max-conns).
#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "core/buffer_pool.hpp"
#include "core/handoff_queue.hpp"
#include "core/io.hpp"
#include "core/listener.hpp"
#include "core/server.hpp"
#include "core/stop.hpp"
#include "core/worker_threads.hpp"

namespace httpbench::backend {

const core::backend_info info{
    .name = "threadpool",
    .model = "thread pool (Apache worker)",
    .summary = "one acceptor thread and --workers kernel threads taking connections from a "
               "bounded queue, blocking I/O; concurrent keep-alive connections are bounded by "
               "--workers, the rest wait in the queue and the backlog (--max-conns caps queued "
               "plus served)",
    .paper = "Kerneis & Chroboczek 2009 §3 (Apache worker); Pariag et al. 2007 §2",
    .category = core::backend_category::thread,
    .default_workers = 256,  // the default pool; Apache worker allows 400 threads by default
    .workers_bound_connections = true,
    .max_connections = 256,  // one connection per worker at the default --workers
    .tunables = {{"queue", "256", {},
                  "accepted connections waiting for a free worker; beyond it they wait in the "
                  "kernel backlog",
                  1, 1 << 20}},
};

namespace {

class pool {
 public:
  pool(core::server_context& ctx, size_t queue_bound)
      : ctx_(ctx), queue_bound_(queue_bound), queue_(core::handoff_queue<int>::unbounded, -1) {}

  /// Starts `n` workers; returns how many started.
  int start(int n, const pthread_attr_t& attr) {
    for (int i = 0; i < n; ++i) {
      pthread_t tid;
      int rc = pthread_create(&tid, &attr, worker_entry, this);
      if (rc != 0) {
        std::fprintf(stderr, "httpd-threadpool: pthread_create: %s (running %d of %d workers)\n",
                     std::strerror(rc), i, n);
        break;
      }
      threads_.push_back(tid);
    }
    return static_cast<int>(threads_.size());
  }

  void accept_loop() {
    // Queued plus served: beyond it connections wait in the kernel backlog.
    int limit = static_cast<int>(std::min<size_t>(static_cast<size_t>(ctx_.config.max_conns),
                                                  threads_.size() + queue_bound_));
    core::acceptor acceptor(ctx_.listener.get(), &ctx_.stats);
    while (live_.wait_below(limit, ctx_.stop_fd)) {
      core::unique_fd fd;
      core::accept_status s = acceptor.accept_blocking(fd, /*nonblocking=*/false, ctx_.stop_fd);
      if (s == core::accept_status::stopped) break;
      if (s == core::accept_status::error) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      if (s != core::accept_status::accepted) continue;
      live_.opened();
      int raw = fd.release();  // the queue owns it until a worker takes it
      queue_.push({&raw, 1});
    }
  }

  /// The stop policy: no more accepting; reading ends on the connections being served and on
  /// the queued ones when a worker takes them, so requests already received are answered and
  /// idle connections close at once. True when every connection finished within the grace.
  bool stop() {
    ctx_.listener.reset();
    served_.end_reading();
    queue_.shut_down();  // workers take what is queued, then end
    core::grace_period grace = ctx_.grace();
    grace.begin();
    return live_.drain(grace);
  }

  void join() {
    for (pthread_t tid : threads_) pthread_join(tid, nullptr);
  }

 private:
  static void* worker_entry(void* self) {
    static_cast<pool*>(self)->work();
    return nullptr;
  }

  void work() {
    std::vector<int> taken;
    for (;;) {
      taken.clear();
      if (queue_.take_wait(taken, 1) == 0) return;  // stopped, and nothing left to serve
      core::unique_fd fd(taken.front());
      {
        core::served_sockets::entry registered(served_, fd.get());
        core::serve_socket(ctx_, fd.get());
      }
      fd.reset();
      live_.closed();
    }
  }

  core::server_context& ctx_;
  const size_t queue_bound_;              ///< --set queue
  core::handoff_queue<int> queue_;        ///< accepted, waiting for a worker (FIFO)
  core::live_count live_;                 ///< queued plus served
  core::served_sockets served_;
  std::vector<pthread_t> threads_;
};

}  // namespace

int run(core::server_context& ctx) {
  core::set_buffer_cache_limit(0);  // one connection per thread: no per-thread lists, a shared handful
  core::preset_socket_timeouts(ctx);  // accepted sockets inherit serve_socket's timeouts
  size_t bound = ctx.number("queue");
  pthread_attr_t attr;
  if (!core::worker_thread_attributes(ctx, attr, /*detached=*/false)) return 2;
  // Leaked when a worker is still busy at exit: it may touch the pool until the process ends.
  auto* p = new pool(ctx, bound);
  // The attributes block the stop signals in the workers: the acceptor sees the stop.
  int started = p->start(ctx.config.workers, attr);
  pthread_attr_destroy(&attr);
  if (started == 0) return 1;
  p->accept_loop();
  if (p->stop()) {
    p->join();
    delete p;
  }
  return 0;
}

}  // namespace httpbench::backend
