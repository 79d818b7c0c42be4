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
// (max_connections = the default pool).
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "core/buffer_pool.hpp"
#include "core/io.hpp"
#include "core/listener.hpp"
#include "core/server.hpp"
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

/// How long connections in progress get to finish after SIGTERM.
constexpr auto stop_grace = std::chrono::seconds(2);

class pool {
 public:
  pool(core::server_context& ctx, size_t queue_bound)
      : ctx_(ctx), acceptor_(ctx.listen_fd), bound_(queue_bound),
        max_open_(static_cast<size_t>(ctx.config.max_conns)) {}

  /// Starts `n` workers; returns how many started.
  int start(int n, const pthread_attr_t& attr) {
    serving_.assign(static_cast<size_t>(n), -1);
    for (int i = 0; i < n; ++i) {
      pthread_t tid;
      auto* arg = new worker_arg{this, static_cast<size_t>(i)};
      int rc = pthread_create(&tid, &attr, worker_entry, arg);
      if (rc != 0) {
        delete arg;
        std::fprintf(stderr, "httpd-threadpool: pthread_create: %s (running %d of %d workers)\n",
                     std::strerror(rc), i, n);
        break;
      }
      threads_.push_back(tid);
    }
    std::lock_guard lock(mutex_);
    running_ = static_cast<int>(threads_.size());
    return running_;
  }

  void accept_loop() {
    while (!ctx_.stop_requested()) {
      {
        // Beyond the queue bound or --max-conns, leave connections in the kernel backlog;
        // look at the stop now and then.
        std::unique_lock lock(mutex_);
        auto room = [&] { return queue_.size() < bound_ && open_ < max_open_; };
        if (!room_.wait_for(lock, std::chrono::milliseconds(100), room)) continue;
      }
      int fd;
      core::accept_status s = acceptor_.accept_blocking(fd, /*nonblocking=*/false, ctx_.stop_fd);
      if (s == core::accept_status::error) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      if (s != core::accept_status::accepted) continue;
      ctx_.stats.add(ctx_.stats.connections);
      {
        std::lock_guard lock(mutex_);
        queue_.push_back(fd);
        ++open_;
      }
      work_.notify_one();
    }
  }

  /// Stops accepting and ends reading on every connection, so requests already received are
  /// answered and idle connections close at once. True when every worker finished in time.
  bool stop() {
    ::close(ctx_.listen_fd);
    std::unique_lock lock(mutex_);
    stopping_ = true;
    for (int fd : serving_)
      if (fd >= 0) ::shutdown(fd, SHUT_RD);
    for (int fd : queue_) ::shutdown(fd, SHUT_RD);
    work_.notify_all();
    return finished_.wait_for(lock, stop_grace, [&] { return running_ == 0; });
  }

  void join() {
    for (pthread_t tid : threads_) pthread_join(tid, nullptr);
  }

 private:
  struct worker_arg {
    pool* self;
    size_t index;
  };

  static void* worker_entry(void* p) {
    worker_arg arg = *static_cast<worker_arg*>(p);
    delete static_cast<worker_arg*>(p);
    arg.self->work(arg.index);
    return nullptr;
  }

  void work(size_t index) {
    for (;;) {
      int fd;
      {
        std::unique_lock lock(mutex_);
        work_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) break;  // stopping, and nothing left to serve
        fd = queue_.front();
        queue_.pop_front();
        // Published under the lock so stop() can end its reading, and cleared before close()
        // so stop() never touches a descriptor number that was reused.
        serving_[index] = fd;
      }
      room_.notify_one();
      bool rejected = core::serve_blocking_socket(ctx_, fd);
      {
        std::lock_guard lock(mutex_);
        serving_[index] = -1;
      }
      core::close_served(fd, rejected);
      {
        std::lock_guard lock(mutex_);
        --open_;
      }
      room_.notify_one();
    }
    std::lock_guard lock(mutex_);
    if (--running_ == 0) finished_.notify_all();
  }

  core::server_context& ctx_;
  core::acceptor acceptor_;
  const size_t bound_;     ///< --set queue
  const size_t max_open_;  ///< --max-conns: queued plus served
  std::vector<pthread_t> threads_;
  std::mutex mutex_;
  std::condition_variable work_;      ///< queue_ not empty, or stopping_
  std::condition_variable room_;      ///< queue_ below bound_ and open_ below max_open_
  std::condition_variable finished_;  ///< running_ reached 0
  std::deque<int> queue_;             ///< accepted, waiting for a worker (FIFO)
  std::vector<int> serving_;          ///< per worker: the connection it serves, or -1
  size_t open_ = 0;  ///< accepted and not yet closed
  int running_ = 0;
  bool stopping_ = false;
};

}  // namespace

int run(core::server_context& ctx) {
  core::set_buffer_cache_limit(0);  // one connection per thread: share buffers through malloc
  size_t bound = ctx.number("queue");
  pthread_attr_t attr;
  if (!core::worker_thread_attributes(ctx, attr, /*detached=*/false)) return 2;
  // Leaked when a worker is still blocked at exit: it may touch the pool until the process ends.
  auto* p = new pool(ctx, bound);
  int started;
  {
    core::stop_signals_blocked blocked;  // workers inherit it: the acceptor sees the stop
    started = p->start(ctx.config.workers, attr);
  }
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
