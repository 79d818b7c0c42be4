#pragma once
/// The single-process event-driven (SPED) loop, shared by the backends that run one or more
/// copies of it: `sped` runs one, `symped` runs one per forked process (each with its own
/// poller, created after the fork). Non-blocking sockets, one readiness loop, accept until
/// EAGAIN, write as soon as a request is parsed and watch for writability only after a short
/// write, idle timeouts from an idle_list, lingering close after a rejected request, and the
/// core's stop policy (stop.hpp).
///
/// A template over the poller (epoll_poller, poll_poller, select_poller; explicitly
/// instantiated in event_loop.cpp, defined in event_loop_impl.hpp), so the choice costs nothing
/// at run time.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "deadlines.hpp"
#include "idle_list.hpp"
#include "listener.hpp"
#include "server.hpp"
#include "stop.hpp"

namespace httpbench::core {

/// AMPED (Flash, Pai et al. 1999; Pariag et al. 2007 §2): asked by the loop before it sends a
/// file range, so that a range not in the page cache is read by helpers while the loop serves
/// other connections, instead of the loop blocking in sendfile on the disk. Called only on the
/// loop's thread, except that the gate's helpers may signal ready_fd() from theirs.
class file_gate {
 public:
  virtual ~file_gate() = default;
  /// How many bytes of `range` (from its start, at most range.length) can be sent now without
  /// waiting for the disk. 0: none; the gate fetches the range and hands `key` back through
  /// take_ready() once it is resident.
  virtual size_t sendable(const file_range& range, void* key) = 0;
  /// A descriptor the loop watches: readable when take_ready() has keys to give back.
  virtual int ready_fd() const = 0;
  /// Appends the keys of the ranges fetched since the last call.
  virtual void take_ready(std::vector<void*>& keys) = 0;
};

/// What differs between the copies of the loop.
struct event_loop_options {
  int listen_fd = -1;  ///< accept from this socket (non-blocking, listening)
  int max_conns = 0;   ///< connections this loop holds at once; 0: --max-conns
  /// Register the listening socket with EPOLLEXCLUSIVE (only one of the loops blocked on it is
  /// woken per connection; epoll only, ignored by poll/select).
  bool exclusive_accept = false;
  /// When set, incremented once per connection this loop accepts (e.g. a MAP_SHARED counter
  /// per process, read by the parent). Must outlive run().
  std::atomic<uint64_t>* accepted = nullptr;
  /// When set, asked before every file range is sent (AMPED); a connection whose range it holds
  /// back leaves the poller until the gate gives it back. Must outlive run().
  file_gate* gate = nullptr;
};

template <class Poller>
class event_loop {
 public:
  /// `ctx` must outlive the loop.
  event_loop(server_context& ctx, const event_loop_options& options);
  ~event_loop();
  event_loop(const event_loop&) = delete;
  event_loop& operator=(const event_loop&) = delete;

  /// Serves until ctx.stop_fd becomes readable, then closes idle connections at once and gives
  /// the others the grace period (--grace). Returns the exit code (1 if the poller cannot be
  /// set up).
  int run();

 private:
  struct slot;

  void accept_all();
  void pause_listening();
  void resume_listening();
  void on_ready(slot& s, uint32_t events);
  void wait_for_disk(slot& s);
  void resume_fetched();
  void start_lingering(slot& s);
  void drain_lingering(slot& s);
  void close_slot(slot& s);
  void begin_stop();
  int next_timeout_ms() const;
  void expire_deadlines();

  server_context& ctx_;
  event_loop_options options_;
  std::string program_;  ///< "httpd-<backend>", for messages
  Poller poller_;
  acceptor acceptor_;
  deadline_lists deadlines_;
  grace_period grace_;
  std::vector<std::unique_ptr<slot>> slots_;  ///< indexed by fd
  std::vector<void*> fetched_;                ///< keys given back by the gate
  int live_ = 0;
  bool listen_paused_ = false;
  bool warned_fd_limit_ = false;
};

}  // namespace httpbench::core
