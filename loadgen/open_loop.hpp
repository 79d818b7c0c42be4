// The open loop: requests arrive at a fixed rate whatever the server does.
#pragma once

#include <vector>

#include "arrival_scheduler.hpp"
#include "worker.hpp"

namespace httpbench::loadgen {

/// Sends requests at intended times drawn from an arrival_scheduler. An arrival takes an idle
/// kept-alive connection, else opens a new one (up to the thread's share of -c, or of
/// --max-connections without -c), else waits in a FIFO (up to --max-pending, beyond which it
/// is dropped and counted as a failed request of kind `dropped`). Latency and the response
/// timeout run from the intended time, so time spent waiting for a connection is part of both
/// (no coordinated omission); a request sent 1 ms or more after its intended time is counted
/// as late. Starts `quota` arrivals (0: until the deadline).
class open_loop_worker final : public worker {
 public:
  open_loop_worker(const run_context& context, std::size_t thread_index, std::size_t connections,
                   double rate, std::uint64_t quota, std::uint64_t seed, nanos first_arrival);

  std::uint64_t incomplete() const override;

 private:
  void start(nanos now) override;
  void on_tick(nanos now) override;
  nanos next_wakeup() const override;
  bool finished() const override;
  void on_idle(connection& c, nanos now) override;
  void on_closed(connection& c, std::uint32_t failed, nanos now) override;

  /// Sends the request intended at `intended` on `c` (idle or closed).
  void dispatch(connection& c, nanos intended, nanos now);
  /// Gives `c` the oldest waiting arrival, or parks it as idle / free.
  void reuse(connection& c, nanos now);
  bool arrivals_done() const { return quota_ != 0 && arrivals_.issued() >= quota_; }

  arrival_scheduler arrivals_;
  std::uint64_t quota_;
  std::vector<std::uint32_t> idle_;  // open connections without a request
  std::vector<std::uint32_t> free_;  // closed slots
  std::vector<nanos> pending_;       // ring of intended times waiting for a connection
  std::size_t pending_head_ = 0;
  std::size_t pending_size_ = 0;
  std::vector<std::uint32_t> retry_;  // slots freed by an error, handled on the next tick
  std::size_t busy_ = 0;              // connections with a request in flight
};

}  // namespace httpbench::loadgen
