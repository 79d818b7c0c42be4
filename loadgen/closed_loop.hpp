// The ab-style self-clocking closed loop (Kerneis & Chroboczek 2009, §2).
#pragma once

#include <vector>

#include "worker.hpp"

namespace httpbench::loadgen {

/// Keeps exactly `connections` connections each with `pipeline` requests in flight: a
/// completion starts the next request at once (on the same connection with keep-alive,
/// otherwise on a new one, whose connect time is part of the response time as in ab).
/// Starts exactly `quota` requests (0: unlimited, the run ends at the deadline); failed
/// requests count towards the quota, as in ab.
class closed_loop_worker final : public worker {
 public:
  closed_loop_worker(const run_context& context, std::size_t thread_index, std::size_t connections,
                     std::uint64_t quota);

 private:
  void start(nanos now) override;
  void on_tick(nanos now) override;
  nanos next_wakeup() const override;
  bool finished() const override { return retired_ == connections_.size(); }
  void on_idle(connection& c, nanos now) override { next_request(c, now); }
  void on_closed(connection& c, std::uint32_t failed, nanos now) override;

  /// Starts the next request on `c`, or retires `c` when the quota is used up.
  void next_request(connection& c, nanos now);

  std::uint64_t quota_;
  std::uint64_t started_ = 0;
  std::size_t retired_ = 0;
  std::size_t ramped_ = 0;            // connections started so far (--ramp)
  std::vector<std::uint32_t> retry_;  // closed by an error: restarted on the next tick
  std::vector<std::uint32_t> retry_now_;
};

}  // namespace httpbench::loadgen
