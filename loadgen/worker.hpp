// One client thread: an epoll loop driving connections for one of the three engines.
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <climits>
#include <cstdint>
#include <string>
#include <vector>

#include "clock.hpp"
#include "config.hpp"
#include "error_kind.hpp"
#include "http_response_parser.hpp"
#include "in_service.hpp"
#include "request_table.hpp"
#include "response_verifier.hpp"
#include "sample_window.hpp"
#include "unique_fd.hpp"
#include "url.hpp"

namespace httpbench::loadgen {

/// What every thread of a run shares (read-only during the run, except `stop`).
struct run_context {
  const config* cfg = nullptr;
  const resolved_address* address = nullptr;
  const request_table* targets = nullptr;
  nanos start = 0;                    ///< common start time of all threads
  nanos deadline = 0;                 ///< -d or the hard cap, whichever is first
  /// Samples completing from here on are in the cool-down (not kept); INT64_MAX for none.
  nanos cooldown_start = INT64_MAX;
  std::atomic<bool>* stop = nullptr;  ///< set by SIGINT
};

/// How the last response completed on a connection was counted, kept until the next response
/// on it begins: bytes that arrive after it and do not start a response were part of its body
/// (longer than announced), and it is then counted as wrong_length instead.
struct last_response {
  bool open = false;  // no byte of a later response seen yet
  bool good = false;  // counted as a good response (sample below)
  std::uint32_t target = 0;
  std::uint64_t body_bytes = 0;
  sample kept;
};

/// A request pipelined behind the one whose response is being read (sessions only: the closed
/// loop's pipeline repeats one target and needs no queue).
struct queued_request {
  std::uint32_t target = 0;
  nanos request_start = 0;
  nanos service_start = 0;
};

/// One client connection slot. A slot is reused for a new socket after a close; `generation`
/// tells events of an old socket from those of the new one.
struct connection {
  enum class state : std::uint8_t { closed, connecting, writing, reading, idle };

  unique_fd fd;
  state status = state::closed;
  bool capturing = false;      // body copied to become the reference
  bool body_mismatch = false;  // body differed from the reference so far
  bool in_service = false;     // its requests were written (counted in the in-service load)
  std::uint32_t index = 0;
  std::uint32_t generation = 0;
  std::uint32_t target = 0;     // request_table index of the requests in flight
  std::uint32_t in_flight = 0;  // responses still expected
  const char* out_data = nullptr;
  std::size_t out_length = 0;
  std::size_t out_offset = 0;
  nanos request_start = 0;  // latency origin: send, connect start or intended time
  nanos connect_start = 0;
  nanos service_start = 0;  // when its requests started service (see in_service_recorder)
  nanos deadline = 0;     // connect or response timeout
  std::uint64_t tag = 0;  // engine's own use
  http_response_parser parser;
  last_response last;
  std::vector<queued_request> queue;  // requests in flight after the current one, in order
  std::string out_buffer;             // output assembled when a request joins a pending write
  std::string capture;
};

/// Counters of one thread besides the samples and errors.
struct worker_counters {
  std::uint64_t requests_started = 0;
  std::uint64_t connects = 0;        ///< successful connects
  nanos connect_time_sum = 0;        ///< sum of their durations
  nanos last_connect_at = 0;         ///< when the latest successful connect completed
  std::uint64_t response_bytes = 0;  ///< wire bytes of all good responses
  std::uint64_t late = 0;            ///< open loop: sent >= 1 ms after the intended time
  std::uint64_t dropped = 0;         ///< open loop: arrivals dropped (no connection, queue full)
  nanos max_send_lag = 0;            ///< open loop: worst send time minus intended time
  std::uint64_t sessions_started = 0;
  std::uint64_t sessions_completed = 0;
  std::uint64_t sessions_failed = 0;
  std::uint64_t sessions_dropped = 0;
  nanos idle_polling = 0;  ///< time spent polling with nothing to do (--spin-us)
};

/// The event loop and connection I/O shared by the closed-loop, open-loop and session engines.
/// The common case costs one send() and one read() per request on a kept-alive connection:
/// sockets are registered once, edge-triggered for both directions, so no epoll_ctl is made
/// per request; a new connection is written to once epoll reports it connected.
class worker {
 public:
  worker(const run_context& context, std::size_t thread_index, std::size_t slots);
  virtual ~worker() = default;
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;

  /// Runs until the engine is finished, the deadline passes or a stop is requested.
  void run();

  const sample_recorder& samples() const { return samples_; }
  const error_counts& errors() const { return errors_; }
  const worker_counters& counters() const { return counters_; }
  const response_verifier& verifier() const { return verifier_; }
  /// This thread's requests in service over time (the measured load).
  const in_service_recorder& in_service() const { return in_service_; }
  /// Requests started but not finished when run() returned.
  virtual std::uint64_t incomplete() const;
  /// Set when run() stopped because of a stop request.
  bool interrupted() const { return interrupted_; }
  /// When run() returned.
  nanos ended_at() const { return ended_at_; }
  /// Server header of the first good response ("" if none had one).
  const std::string& server_software() const { return server_software_; }

 protected:
  /// Engine hooks. start: once, at the common start time. on_tick: every loop iteration,
  /// for timers. next_wakeup: the engine's next timer (INT64_MAX if none). finished: stop the
  /// loop. on_idle: `c` has no response outstanding; it is `idle` (open, reusable) or
  /// `closed`. on_closed: `c` was closed by an error or the server; `failed` requests of it
  /// were counted as errors.
  virtual void start(nanos now) = 0;
  virtual void on_tick(nanos now) = 0;
  virtual nanos next_wakeup() const = 0;
  virtual bool finished() const = 0;
  virtual void on_idle(connection& c, nanos now) = 0;
  virtual void on_closed(connection& c, std::uint32_t failed, nanos now) = 0;

  /// Sends `count` copies of `target` (count > 1 only for closed-loop pipelining) on `c`,
  /// opening a new connection first if `c` is closed. Latency is measured from
  /// `request_start`.
  void send(connection& c, std::uint32_t target, std::uint32_t count, nanos request_start,
            nanos now);
  /// Sends `target` on `c` even if `c` has requests in flight (pipelined behind them; written at
  /// once if the earlier ones are, else appended to the pending output). Latency is measured
  /// from `request_start`.
  void send_another(connection& c, std::uint32_t target, nanos request_start, nanos now);
  /// Closes `c` without counting anything.
  void close(connection& c);
  /// Hook: one response on `c` ended (good or counted as an error) and more are in flight on
  /// it; on_idle follows the last one.
  virtual void on_response(connection&, nanos) {}

  const run_context& context_;
  const config& cfg_;
  std::size_t thread_index_;
  std::vector<connection> connections_;
  sample_recorder samples_;
  error_counts errors_;
  worker_counters counters_;
  response_verifier verifier_;
  in_service_recorder in_service_;

 private:
  void open(connection& c, nanos now);
  void flush(connection& c, nanos now);
  void on_event(connection& c, std::uint32_t events, nanos now);
  void read_ready(connection& c, bool peer_closed, nanos now);
  /// Parses `length` bytes; false when `c` was closed or reopened meanwhile.
  bool consume(connection& c, const char* data, std::size_t length, nanos now);
  /// Books one complete response; `trailing` = bytes followed it with nothing in flight.
  void complete_response(connection& c, bool trailing, nanos now);
  /// Bytes arrived on `c` after its last response that do not start a response: that
  /// response's body was longer than announced. Counts it as wrong_length, once (taking back
  /// its good count).
  void blame_last_response(connection& c);
  /// Sends `c`'s requests in flight again on a new connection (the stream of the old one is
  /// unusable); they keep their latency origin and are not counted again.
  void resend(connection& c, nanos now);
  void on_eof(connection& c, nanos now);
  void fail(connection& c, error_kind kind, nanos now);
  void sweep(nanos now);
  /// Polls without blocking until an event arrives or `budget` has passed; the events found.
  int poll_without_blocking(epoll_event* events, nanos budget);
  void start_response(connection& c);
  /// `c`'s requests enter service, counted from `since` (≤ now): when they were written, or
  /// for a new connection when its connect started (see on_event).
  void begin_service(connection& c, nanos now, nanos since) {
    if (c.in_service) return;
    c.in_service = true;
    c.service_start = since;
    for (auto& q : c.queue) q.service_start = since;
    in_service_.change_since(since, now, c.in_flight);
  }
  /// Counts `c`'s requests in flight as failed with `kind` (each under its own target).
  void count_failed(connection& c, error_kind kind);
  /// `ended` of `c`'s requests left service at `now`.
  void end_service(connection& c, std::uint32_t ended, nanos now) {
    if (!c.in_service) return;
    in_service_.change(now, -static_cast<std::int64_t>(ended));
    if (c.in_flight == 0) c.in_service = false;
  }

  unique_fd epoll_;
  std::vector<char> read_buffer_;
  nanos sweep_interval_;
  bool interrupted_ = false;
  bool use_pwait2_ = true;
  nanos ended_at_ = 0;
  std::string server_software_;
  bool server_seen_ = false;
};

}  // namespace httpbench::loadgen
