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

/// Sessions arrive open-loop at the session rate; each runs on one persistent connection:
/// within a burst each request is sent when the previous response arrived (after an active
/// off-period when the built-in generator is used), between bursts the user thinks (the file's
/// think=, a fixed --think-time, or a Pareto draw). A session that hits an error is aborted and
/// counted as failed, as httperf does. A session arriving when the thread has no free
/// connection slot is dropped and counted. Starts `quota` sessions (0: until the deadline).
class session_worker final : public worker {
 public:
  session_worker(const run_context& context, std::size_t thread_index, std::size_t connections,
                 const std::vector<session_plan>& plans, bool generated, double session_rate,
                 std::uint64_t quota, std::uint64_t seed, nanos first_arrival);

  std::uint64_t incomplete() const override { return worker::incomplete(); }
  /// Sessions started but neither completed nor failed when the run ended.
  std::uint64_t sessions_in_progress() const { return active_; }

 private:
  struct session_state {
    std::uint32_t plan = 0;
    std::uint32_t burst = 0;
    std::uint32_t request = 0;
  };
  struct timer {
    nanos due;
    std::uint32_t slot;
    std::uint32_t generation;
    bool operator>(const timer& other) const { return due > other.due; }
  };

  void start(nanos now) override;
  void on_tick(nanos now) override;
  nanos next_wakeup() const override;
  bool finished() const override;
  void on_idle(connection& c, nanos now) override;
  void on_closed(connection& c, std::uint32_t failed, nanos now) override;

  void send_current(connection& c, nanos intended, nanos now);
  void end_session(connection& c, bool completed);
  nanos think_after_burst(const session_plan::burst& b);
  bool arrivals_done() const { return quota_ != 0 && arrivals_.issued() >= quota_; }

  const std::vector<session_plan>& plans_;
  bool generated_;
  arrival_scheduler arrivals_;
  std::uint64_t quota_;
  std::vector<session_state> states_;      // per slot
  std::vector<std::uint32_t> session_id_;  // per slot: bumps when a session ends (stale timers)
  std::vector<bool> in_session_;
  std::vector<std::uint32_t> free_;
  std::vector<timer> timers_;  // min-heap on due
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
