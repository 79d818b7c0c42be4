// ref-fork — the floor of the process-per-connection model (the CERN httpd / inetd model): the
// parent blocks in accept() and forks; the child serves the connection with blocking reads and
// writes and exits. Nothing else runs per connection: the kernel reaps the children
// (SIGCHLD ignored), and a child asks once for SIGTERM when the parent dies, so that stopping
// the parent stops them.
#include <sys/prctl.h>

#include <csignal>
#include <ctime>

#include "reference_common.h"

namespace ref = httpbench::reference;

namespace {

const ref::model_info info{
    .name = "ref-fork",
    .reference_for = "fork",
    .model = "process per connection (fork), reference",
    .summary = "accept, fork, the child reads and writes a canned reply and exits",
    .category = "process",
    .default_workers = 0,
    .max_connections = 2000,
};

[[noreturn]] void serve_child(int fd, int listen_fd, pid_t parent) {
  ::close(listen_fd);
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != parent) _exit(0);  // the parent stopped before the request above
  ref::serve_blocking([fd](void* buf, size_t n) { return ::read(fd, buf, n); },
                      [fd](const iovec* iov, int n) { return ::writev(fd, iov, n); });
  _exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  int listen_fd = ref::start(ref::parse_options(argc, argv, info));
  signal(SIGCHLD, SIG_IGN);
  pid_t self = ::getpid();
  for (;;) {
    int fd = ::accept(listen_fd, nullptr, nullptr);
    if (fd < 0) continue;
    pid_t child = ::fork();
    if (child == 0) serve_child(fd, listen_fd, self);
    ::close(fd);
    if (child < 0) {  // out of processes or memory: let some children finish
      timespec pause{0, 1'000'000};
      nanosleep(&pause, nullptr);
    }
  }
}
