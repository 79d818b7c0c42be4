#include "worker_process.hpp"

#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>

#include "server.hpp"

namespace httpbench::core {
namespace {

volatile std::sig_atomic_t serving_fd = -1;

// Async-signal-safe: shutdown() makes a blocked read return EOF.
extern "C" void on_worker_stop(int) {
  int saved = errno;
  stop_flag = 1;
  if (serving_fd >= 0) ::shutdown(serving_fd, SHUT_RD);
  errno = saved;
}

// Does nothing: SIGCHLD only has to interrupt ppoll(); reaping happens in the caller's loop.
extern "C" void on_child_exit(int) {}

}  // namespace

sigset_t wake_on_child_exit(sigset_t& previous) {
  struct sigaction sa {};
  sa.sa_handler = on_child_exit;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_NOCLDSTOP;
  sigaction(SIGCHLD, &sa, nullptr);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, &previous);
  sigset_t waiting = previous;
  sigdelset(&waiting, SIGCHLD);
  return waiting;
}

bool become_worker_process(pid_t parent, int death_signal) {
  struct sigaction sa {};
  sa.sa_handler = on_worker_stop;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGCHLD, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  ::prctl(PR_SET_PDEATHSIG, death_signal);
  return ::getppid() == parent;
}

void serving(int fd) {
  serving_fd = fd;
  if (fd >= 0 && stop_flag) ::shutdown(fd, SHUT_RD);  // the stop came before the handler knew
}

}  // namespace httpbench::core
