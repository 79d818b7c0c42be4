// Per-thread recording of response times with exact exclusion of the first and last N samples.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "clock.hpp"
#include "histogram.hpp"

namespace httpbench::loadgen {

struct window_summary;

/// Latency of a held sample that was retracted (see sample_recorder::retract).
inline constexpr nanos retracted_latency = -1;

/// One good response.
struct sample {
  bool operator==(const sample&) const = default;
  nanos completed_at = 0;   ///< when its last byte was read
  nanos latency = 0;        ///< completed_at minus the request's (intended) start
  nanos service = 0;        ///< completed_at minus the start of its service (the write)
  std::uint32_t bytes = 0;  ///< wire bytes of the response
};

/// Records the samples of one thread. The paper discards the first and last N samples of the
/// whole run; with one histogram per thread that needs care: each thread holds its own first N
/// samples and a ring of its last N aside, and only samples evicted from the ring go into the
/// histogram. Such a sample has N samples of its own thread before and after it, so it is in
/// neither the global first N nor the global last N; merge_windows() then sorts the few held
/// samples of all threads and drops exactly the global first and last N. Memory is fixed at
/// start (2N samples), recording never allocates.
class sample_recorder {
 public:
  /// `discard`: N. Samples completing before `warmup_end`, or at or after `cooldown_start`,
  /// are only counted.
  sample_recorder(std::size_t discard, nanos warmup_end,
                  nanos cooldown_start = std::numeric_limits<nanos>::max());

  void record(nanos completed_at, nanos latency, nanos service, std::uint32_t bytes) {
    ++recorded_;
    if (completed_at < warmup_end_) {
      ++warmup_dropped_;
      return;
    }
    if (completed_at >= cooldown_start_) {
      ++cooldown_dropped_;
      return;
    }
    const sample s{completed_at, latency, service, bytes};
    if (head_.size() < discard_) {
      head_.push_back(s);
    } else if (discard_ == 0) {
      keep(s);
    } else if (tail_.size() < discard_) {
      tail_.push_back(s);
    } else {
      keep(tail_[tail_next_]);
      tail_[tail_next_] = s;
      tail_next_ = (tail_next_ + 1) % discard_;
    }
  }

  /// Takes back a sample recorded earlier (a response counted good and then found to have had a
  /// longer body than announced). Rare: a linear search of the held samples. Discarding stays
  /// exact, except when the sample is held (among the thread's first or last N) while samples
  /// already went into the histogram: it then stays held as a placeholder that is never kept,
  /// and the kept window may start (or, if the run ends within N samples, end) one sample off.
  void retract(const sample& s);

  /// All good responses recorded, warm-up included.
  std::uint64_t recorded() const { return recorded_; }

 private:
  friend window_summary merge_windows(const std::vector<const sample_recorder*>&, std::size_t,
                                      nanos, nanos);

  void keep(const sample& s) {
    if (s.latency == retracted_latency) return;
    latencies_.record(s.latency);
    service_sum_ += static_cast<double>(s.service);
    bytes_ += s.bytes;
    if (s.completed_at > last_completion_) last_completion_ = s.completed_at;
  }

  std::size_t discard_;
  nanos warmup_end_;
  nanos cooldown_start_;
  std::vector<sample> head_;
  std::vector<sample> tail_;
  std::size_t tail_next_ = 0;
  histogram latencies_;
  double service_sum_ = 0;
  std::uint64_t bytes_ = 0;
  nanos last_completion_ = 0;
  std::uint64_t recorded_ = 0;
  std::uint64_t warmup_dropped_ = 0;
  std::uint64_t cooldown_dropped_ = 0;
};

/// The kept window of a whole run.
struct window_summary {
  histogram latencies;                 ///< response times of the kept samples (ns)
  std::uint64_t completed = 0;         ///< kept samples (n)
  std::uint64_t completed_total = 0;   ///< all good responses, warm-up and discards included
  std::uint64_t warmup_dropped = 0;    ///< samples completing before the warm-up ended
  std::uint64_t cooldown_dropped = 0;  ///< samples completing in the cool-down
  std::size_t discarded_each_end = 0;  ///< N actually dropped at each end (see merge_windows)
  std::uint64_t bytes = 0;             ///< wire bytes of the kept responses
  double service_sum = 0;              ///< sum of the kept samples' service times (ns)
  nanos window_start = 0;  ///< completion of the last dropped first sample, or the start
  nanos window_end = 0;    ///< completion of the first dropped last sample, or the last
  double elapsed_s() const { return to_seconds(window_end - window_start); }
  /// Mean service time of the kept samples in ns (0 without samples).
  double mean_service() const {
    return completed > 0 ? service_sum / static_cast<double>(completed) : 0;
  }
  /// Keeps the window inside the run [start, end] (a warm-up longer than the run, or no
  /// sample at all, would otherwise leave it outside), with window_start <= window_end.
  void clamp_to(nanos start, nanos end) {
    if (window_start < start) window_start = start;
    if (window_start > end) window_start = end;
    if (window_end > end) window_end = end;
    if (window_end < window_start) window_end = window_start;
  }
};

/// Merges the per-thread recorders and drops the global first and last `discard` samples.
/// When fewer than 4*discard samples were kept after the warm-up, only a quarter of them is
/// dropped at each end (reported as discarded_each_end) so a short run still has a window.
/// `window_origin` is the run start, or the end of the warm-up when there is one;
/// `window_limit` the start of the cool-down, if any (then the window ends there rather than
/// at the last completion).
window_summary merge_windows(const std::vector<const sample_recorder*>& recorders,
                             std::size_t discard, nanos window_origin,
                             nanos window_limit = std::numeric_limits<nanos>::max());

}  // namespace httpbench::loadgen
