// ref-thread — the floor of the thread-per-connection model (NPTL kernel threads): the main
// thread blocks in accept() and creates one detached thread per connection, which reads and
// writes a canned reply with blocking calls. Threads get 64 KiB stacks, as the thread backend's
// default --stack-size, so that memory per connection is the model's and not glibc's 8 MiB.
#include <pthread.h>

#include <cstdint>

#include "reference_common.h"

namespace ref = httpbench::reference;

namespace {

const ref::model_info info{
    .name = "ref-thread",
    .reference_for = "thread",
    .model = "thread per connection (NPTL), reference",
    .summary = "accept, pthread_create, the thread reads and writes a canned reply",
    .category = "thread",
    .default_workers = 0,
    .max_connections = 2000,
};

void* serve(void* arg) {
  int fd = int(reinterpret_cast<intptr_t>(arg));
  ref::serve_blocking([fd](void* buf, size_t n) { return ::read(fd, buf, n); },
                      [fd](const iovec* iov, int n) { return ::writev(fd, iov, n); });
  ::close(fd);
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  int listen_fd = ref::start(ref::parse_options(argc, argv, info));
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  for (;;) {
    int fd = ::accept(listen_fd, nullptr, nullptr);
    if (fd < 0) continue;
    pthread_t thread;
    if (pthread_create(&thread, &attr, serve, reinterpret_cast<void*>(intptr_t{fd})) != 0)
      ::close(fd);  // out of threads or memory: drop this one
  }
}
