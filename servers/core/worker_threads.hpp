#pragma once
/// For backends that run connections on kernel threads (thread, threadpool): the thread set-up
/// they share, so the two differ only in when threads are created.
#include <pthread.h>
#include <signal.h>

namespace httpbench::core {

struct server_context;

/// Initialises `attr` with --stack-size (and detached when asked), and with the calling
/// thread's signal mask plus SIGTERM and SIGINT blocked: a thread created with it never takes
/// the stop, which the thread polling the stop eventfd sees, and its creator needs no
/// stop_signals_blocked around pthread_create (two system calls per thread saved). On a size
/// below the system's minimum, prints a message naming the backend and returns false.
bool worker_thread_attributes(const server_context& ctx, pthread_attr_t& attr, bool detached);

/// While alive, SIGTERM and SIGINT are blocked in the calling thread, so threads created
/// meanwhile inherit the block: the stop is seen by the thread that polls the stop eventfd,
/// never by a worker whose blocked read would only retry.
class stop_signals_blocked {
 public:
  stop_signals_blocked();
  ~stop_signals_blocked();
  stop_signals_blocked(const stop_signals_blocked&) = delete;
  stop_signals_blocked& operator=(const stop_signals_blocked&) = delete;

 private:
  sigset_t previous_;
};

}  // namespace httpbench::core
