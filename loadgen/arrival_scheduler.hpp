// Intended send times of an open-loop arrival process.
#pragma once

#include <cstdint>
#include <random>

#include "clock.hpp"

namespace httpbench::loadgen {

enum class arrival_process { constant, poisson };

/// Generates the intended send times of an open loop: evenly spaced (`constant`) or with
/// exponentially distributed gaps (`poisson`), at `rate_per_s` on average, from `start`.
/// Times are computed from the start and the arrival index (constant) or accumulated in double
/// precision (poisson), so rounding never drifts the rate. The caller sends every arrival whose
/// time has passed, late ones included: a slow client or server shows up as latency measured
/// from these intended times, never as a lower offered rate (no coordinated omission).
class arrival_scheduler {
 public:
  arrival_scheduler(double rate_per_s, arrival_process process, nanos start, std::uint64_t seed)
      : process_(process), start_(start), mean_gap_ns_(1e9 / rate_per_s), rng_(seed) {
    next_ = start_;
    if (process_ == arrival_process::poisson) advance_poisson();
  }

  /// Intended time of the next arrival (not yet consumed).
  nanos next() const { return next_; }

  /// Consumes the next arrival and returns its intended time.
  nanos pop() {
    const nanos t = next_;
    ++issued_;
    if (process_ == arrival_process::constant) {
      next_ = start_ + static_cast<nanos>(static_cast<double>(issued_) * mean_gap_ns_);
    } else {
      advance_poisson();
    }
    return t;
  }

  /// Arrivals consumed so far.
  std::uint64_t issued() const { return issued_; }

 private:
  void advance_poisson() {
    offset_ns_ += std::exponential_distribution<double>(1.0 / mean_gap_ns_)(rng_);
    next_ = start_ + static_cast<nanos>(offset_ns_);
  }

  arrival_process process_;
  nanos start_;
  double mean_gap_ns_;
  double offset_ns_ = 0;
  nanos next_ = 0;
  std::uint64_t issued_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace httpbench::loadgen
