// ref-threadpool — the floor of the thread-pool model (Apache worker): --workers kernel threads
// wait on a bounded queue that the main thread fills from accept(); each serves one connection
// at a time with blocking reads and writes of a canned reply. When the queue is full the
// acceptor waits, and new connections wait in the kernel's backlog, as in the backend.
#include <pthread.h>

#include <condition_variable>
#include <deque>
#include <mutex>

#include "reference_common.h"

namespace ref = httpbench::reference;

namespace {

const ref::model_info info{
    .name = "ref-threadpool",
    .reference_for = "threadpool",
    .model = "thread pool (Apache worker), reference",
    .summary = "--workers threads take accepted connections from a bounded queue",
    .category = "thread",
    .default_workers = 256,
    .max_connections = 256,
};

/// Accepted connections waiting for a worker, at most `capacity` (then the acceptor waits).
class connection_queue {
 public:
  explicit connection_queue(size_t capacity) : capacity_(capacity) {}
  // Each side signals after unlocking: a waiter woken while the mutex is still held would
  // only block on it again. Under a cap that stops the acceptor as it leaves the kernel, it
  // may sit throttled holding the mutex for a whole period's remainder, and every worker woken
  // meanwhile sleeps on it once more (threadpool read 5 % cheaper than this floor at a 20-ms
  // period while it signalled under the lock, 2026-12-02).
  void push(int fd) {
    {
      std::unique_lock lock(mutex_);
      not_full_.wait(lock, [&] { return fds_.size() < capacity_; });
      fds_.push_back(fd);
    }
    not_empty_.notify_one();
  }
  int pop() {
    int fd;
    {
      std::unique_lock lock(mutex_);
      not_empty_.wait(lock, [&] { return !fds_.empty(); });
      fd = fds_.front();
      fds_.pop_front();
    }
    not_full_.notify_one();
    return fd;
  }

 private:
  std::mutex mutex_;
  std::condition_variable not_empty_, not_full_;
  std::deque<int> fds_;
  size_t capacity_;
};

void* work(void* arg) {
  auto& queue = *static_cast<connection_queue*>(arg);
  for (;;) {
    int fd = queue.pop();
    ref::serve_blocking([fd](void* buf, size_t n) { return ::read(fd, buf, n); },
                        [fd](const iovec* iov, int n) { return ::writev(fd, iov, n); });
    ::close(fd);
  }
}

}  // namespace

int main(int argc, char** argv) {
  ref::options options = ref::parse_options(argc, argv, info);
  int listen_fd = ref::start(options);
  // As long as the backend's default queue (--set queue=256), whatever the pool: with a queue
  // only as long as the pool, 400 clients of a 64-thread pool kept the acceptor waking once per
  // request (1.3 switches per request against the backend's 0.4) and the floor cost more than
  // the backend (make floors, 2026-12-02).
  connection_queue queue(256);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);  // the backend's default --stack-size
  for (int i = 0; i < options.workers; ++i) {
    pthread_t thread;
    if (pthread_create(&thread, &attr, work, &queue) != 0) {
      std::perror("ref-threadpool: pthread_create");
      return 1;
    }
  }
  for (;;) {
    int fd = ::accept(listen_fd, nullptr, nullptr);
    if (fd >= 0) queue.push(fd);
  }
}
