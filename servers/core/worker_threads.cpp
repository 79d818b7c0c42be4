#include "worker_threads.hpp"

#include <cstdio>
#include <string>

#include "server.hpp"

namespace httpbench::core {

bool worker_thread_attributes(const server_context& ctx, pthread_attr_t& attr, bool detached) {
  pthread_attr_init(&attr);
  if (detached) pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (pthread_attr_setstacksize(&attr, ctx.config.stack_size) == 0) return true;
  std::fprintf(stderr, "httpd-%s: --stack-size %zu is below this system's minimum\n",
               std::string(ctx.info.name).c_str(), ctx.config.stack_size);
  pthread_attr_destroy(&attr);
  return false;
}

stop_signals_blocked::stop_signals_blocked() {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, &previous_);
}

stop_signals_blocked::~stop_signals_blocked() { pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }

}  // namespace httpbench::core
