#include "worker_threads.hpp"

#include <cstdio>
#include <cstring>
#include <string>

#include "server.hpp"

namespace httpbench::core {

namespace {

sigset_t stop_signals() {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  return stop;
}

}  // namespace

bool worker_thread_attributes(const server_context& ctx, pthread_attr_t& attr, bool detached) {
  pthread_attr_init(&attr);
  if (detached) pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  // The new thread's mask is set by pthread_create itself (glibc >= 2.32), which blocks every
  // signal around clone() anyway: blocking the stop in the creator around each call, as
  // stop_signals_blocked does, cost two more rt_sigprocmask per connection in `thread`.
  sigset_t mask;
  pthread_sigmask(SIG_SETMASK, nullptr, &mask);
  sigset_t stop = stop_signals();
  sigorset(&mask, &mask, &stop);
  if (int rc = pthread_attr_setsigmask_np(&attr, &mask); rc != 0) {
    std::fprintf(stderr, "httpd-%s: pthread_attr_setsigmask_np: %s\n",
                 std::string(ctx.info.name).c_str(), std::strerror(rc));
    pthread_attr_destroy(&attr);
    return false;
  }
  if (pthread_attr_setstacksize(&attr, ctx.config.stack_size) == 0) return true;
  std::fprintf(stderr, "httpd-%s: --stack-size %zu is below this system's minimum\n",
               std::string(ctx.info.name).c_str(), ctx.config.stack_size);
  pthread_attr_destroy(&attr);
  return false;
}

stop_signals_blocked::stop_signals_blocked() {
  sigset_t stop = stop_signals();
  pthread_sigmask(SIG_BLOCK, &stop, &previous_);
}

stop_signals_blocked::~stop_signals_blocked() { pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }

}  // namespace httpbench::core
