// ref-prefork — the floor of the process-pool model (Apache prefork): --workers processes forked
// at start, each blocking in accept() on the shared listening socket and serving one connection
// at a time with blocking reads and writes of a canned reply. The parent only waits: a stop
// signal ends it, and each worker asked for SIGTERM when the parent dies.
#include <sys/prctl.h>

#include <csignal>
#include <cstdio>

#include "reference_common.h"

namespace ref = httpbench::reference;

namespace {

const ref::model_info info{
    .name = "ref-prefork",
    .reference_for = "prefork",
    .model = "process pool (Apache prefork), reference",
    .summary = "--workers processes block in accept() on one socket",
    .category = "process",
    .default_workers = 256,
    .max_connections = 256,
};

[[noreturn]] void worker(int listen_fd, pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != parent) _exit(0);
  for (;;) {
    int fd = ::accept(listen_fd, nullptr, nullptr);
    if (fd < 0) continue;
    ref::serve_blocking([fd](void* buf, size_t n) { return ::read(fd, buf, n); },
                        [fd](const iovec* iov, int n) { return ::writev(fd, iov, n); });
    ::close(fd);
  }
}

}  // namespace

int main(int argc, char** argv) {
  ref::options options = ref::parse_options(argc, argv, info);
  int listen_fd = ref::start(options);
  pid_t self = ::getpid();
  for (int i = 0; i < options.workers; ++i) {
    pid_t pid = ::fork();
    if (pid == 0) worker(listen_fd, self);
    if (pid < 0) {
      std::perror("ref-prefork: fork");
      return 1;
    }
  }
  for (;;) ::pause();  // until SIGTERM or SIGINT, whose handler exits 0
}
