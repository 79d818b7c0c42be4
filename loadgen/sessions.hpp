// The partially-open session workload (Pariag et al. 2007, §3.2; httperf --wsesslog).
#pragma once

#include <random>
#include <vector>

#include "arrival_scheduler.hpp"
#include "think_time.hpp"
#include "worker.hpp"
#include "wsesslog.hpp"

namespace httpbench::loadgen {

/// A session as the engine runs it: request_table indices instead of paths.
struct session_plan {
  struct burst {
    std::vector<std::uint32_t> targets;
    double think_s = -1;  ///< after the burst; negative: the default / generated think time
  };
  std::vector<burst> bursts;
};

/// Sessions arrive open-loop at the session rate. Each has up to --session-connections
/// persistent connections and runs its bursts as httperf does (src/gen/wsesslog.c and
/// session.c): the burst's first request is sent; when its response is in, all the other
/// requests of the burst are issued at once, each on the first of the session's connections
/// with fewer than --max-piped-calls requests in flight (pipelined on the first connection by
/// default; on separate connections once the server has closed a connection after a response,
/// as the manual describes for a "Connection: close" reply). Requests that find every
/// connection full are issued as responses come back. After the burst's last response the
/// user thinks (the file's think=, a fixed --think-time, or a Pareto draw) before the next
/// burst. The built-in generator instead sends a burst's objects one after another with an
/// active off-period between them (Pariag et al.'s browser model).
/// A failed request fails the session, as in httperf: no further request is issued, and the
/// session ends (counted failed) once its requests in flight are over. A session arriving
/// when the thread has no free session slot is dropped and counted. Starts `quota` sessions
/// (0: until the deadline).
class session_worker final : public worker {
 public:
  session_worker(const run_context& context, std::size_t thread_index, std::size_t sessions,
                 const std::vector<session_plan>& plans, bool generated, double session_rate,
                 std::uint64_t quota, std::uint64_t seed, nanos first_arrival);

  std::uint64_t incomplete() const override { return worker::incomplete(); }
  /// Sessions started but neither completed nor failed when the run ended.
  std::uint64_t sessions_in_progress() const { return active_; }

 private:
  struct session_state {
    std::uint32_t plan = 0;
    std::uint32_t burst = 0;
    std::uint32_t issued = 0;    // requests of the current burst sent
    std::uint32_t answered = 0;  // requests of the current burst ended
    std::uint32_t id = 0;        // bumps when a session ends (stale timers)
    bool active = false;
    bool failed = false;
    bool separate_connections = false;  // the server closed a connection after a response
  };
  struct timer {
    nanos due;
    std::uint32_t session;
    std::uint32_t id;
    bool operator>(const timer& other) const { return due > other.due; }
  };

  void start(nanos now) override;
  void on_tick(nanos now) override;
  nanos next_wakeup() const override;
  bool finished() const override;
  void on_idle(connection& c, nanos now) override;
  void on_response(connection& c, nanos now) override;
  void on_closed(connection& c, std::uint32_t failed, nanos now) override;

  std::uint32_t session_of(const connection& c) const { return c.index / per_session_; }
  /// One request of session `s` ended on `c`: issue the rest of the burst, or think.
  void answered(std::uint32_t s, nanos now);
  /// Issues requests of the current burst: only the first when none is out yet, else as many
  /// as the session's connections take.
  void issue(std::uint32_t s, nanos intended, nanos now);
  /// Requests in flight on session `s`'s connections.
  std::uint32_t in_flight(std::uint32_t s) const;
  void end_session(std::uint32_t s, bool completed);
  nanos think_after_burst(const session_plan::burst& b);
  bool arrivals_done() const { return quota_ != 0 && arrivals_.issued() >= quota_; }

  const std::vector<session_plan>& plans_;
  bool generated_;
  std::uint32_t per_session_;  // connection slots per session
  arrival_scheduler arrivals_;
  std::uint64_t quota_;
  std::vector<session_state> sessions_;
  std::vector<std::uint32_t> free_;  // free session slots
  std::vector<timer> timers_;        // min-heap on due
  std::size_t active_ = 0;
  std::uint64_t next_plan_ = 0;
  std::mt19937_64 rng_;
  pareto_think_time inactive_;
  weibull_think_time active_think_;
};

/// Turns parsed wsesslog sessions into plans, adding their requests to `targets`.
std::vector<session_plan> plans_from_wsesslog(const std::vector<session_definition>& sessions,
                                              request_table& targets);

/// The built-in generator's single plan: `bursts` bursts of `burst_length` requests of
/// target 0 (think times are drawn per session by the worker).
std::vector<session_plan> generated_plan(std::uint32_t bursts, std::uint32_t burst_length);

}  // namespace httpbench::loadgen
