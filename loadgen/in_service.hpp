// The measured load as a time average: how many requests the server really held at once.
#pragma once

#include <cstdint>
#include <vector>

#include "clock.hpp"

namespace httpbench::loadgen {

/// 128-bit integer for integrals in request·ns: one hour of a million requests in flight is
/// 3.6e21, beyond int64.
__extension__ using wide_int = __int128;

/// The integral over time of one thread's count of requests *in service*: written to the
/// server (on a new connection, from the moment epoll reports the connect done; on a kept-alive
/// connection, from the send) and not yet ended (good response, error, timeout or close).
///
/// Every start and end of service updates the running integral exactly with the clock reading
/// the event already took (one multiply-add, no allocation, no clock read of its own). To
/// evaluate the integral at bounds known only at the end (the kept window), the recorder keeps
/// checkpoints (time, integral) taken at events at least `spacing` apart. Between two
/// checkpoints the integral is interpolated linearly. That is exact when the count did not
/// change between them, and otherwise off by at most spacing × (the count's variation in that
/// stretch); it also means the interpolated integral grows by at most the largest count
/// reached between the two checkpoints per ns (a chord's slope is the mean count over its
/// stretch), so a time average over any window never exceeds the largest number of requests in
/// service, hence never the requests in flight. (Extrapolating from the last checkpoint with
/// its count would not have that property: a checkpoint taken between a completion and the
/// resend at the same instant holds one request too few.)
///
/// Memory is bounded: at most `max_checkpoints` are kept. When they are used up, every other
/// one is dropped and the spacing doubles, so a run of any length keeps at most that many; with
/// the defaults (1 ms, 2^18 checkpoints of 32 bytes: 8 MiB reserved per thread, touched as used)
/// the spacing stays 1 ms for the first 262 s and is 16 ms for the one-hour hard cap.
class in_service_recorder {
 public:
  struct checkpoint {
    nanos at = 0;
    wide_int integral = 0;  ///< ∫ count dt from the first checkpoint to `at`, in request·ns
  };

  static constexpr nanos default_spacing = ns_per_ms;
  static constexpr std::size_t default_max_checkpoints = std::size_t{1} << 18;

  /// Starts at `origin` with no request in service. `max_checkpoints` must be at least 4.
  explicit in_service_recorder(nanos origin, nanos spacing = default_spacing,
                               std::size_t max_checkpoints = default_max_checkpoints);

  /// `delta` requests start (positive) or end (negative) service at `now` (non-decreasing).
  void change(nanos now, std::int64_t delta) {
    integral_ += static_cast<wide_int>(count_) * (now - last_);
    last_ = now;
    count_ += delta;
    if (now >= next_due_) add_checkpoint();
  }

  /// `delta` requests enter service at `now` but are counted from `since` (≤ now): requests whose
  /// service began before the event that reports it (a connect's start, seen when it completes).
  /// The checkpoints taken since then did not know them yet and get their share, so the integral
  /// stays exact at every checkpoint and a time average never exceeds the requests in flight.
  void change_since(nanos since, nanos now, std::int64_t delta) {
    integral_ += static_cast<wide_int>(count_) * (now - last_);
    last_ = now;
    if (since > now) since = now;
    if (since < checkpoints_.front().at) since = checkpoints_.front().at;
    for (auto it = checkpoints_.rbegin(); it != checkpoints_.rend() && it->at > since; ++it)
      it->integral += static_cast<wide_int>(delta) * (it->at - since);
    integral_ += static_cast<wide_int>(delta) * (now - since);
    count_ += delta;
    if (now >= next_due_) add_checkpoint();
  }

  /// Closes the record at `now` (the thread's end): the last checkpoint. The count is then
  /// taken as constant after it.
  void finish(nanos now) {
    integral_ += static_cast<wide_int>(count_) * (now - last_);
    last_ = now;
    add_checkpoint();
  }

  /// Requests in service now.
  std::int64_t count() const { return count_; }

  /// The integral from the origin to `t` in request·ns (0 before the origin), exact at
  /// checkpoints, interpolated between them, extended with the final count after the last.
  double integral_at(nanos t) const;

  /// ∫ count dt over [a, b] in request·ns, computed without the rounding of two large values.
  double integral_between(nanos a, nanos b) const;

  const std::vector<checkpoint>& checkpoints() const { return checkpoints_; }
  nanos spacing() const { return spacing_; }

 private:
  void add_checkpoint();
  /// Index of the last checkpoint at or before `t` (0 if `t` precedes them all).
  std::size_t checkpoint_before(nanos t) const;
  /// Integral from checkpoint `k` to `t` (t at or after checkpoint k, before checkpoint k+1).
  double from_checkpoint(std::size_t k, nanos t) const;

  std::int64_t count_ = 0;
  nanos last_;
  wide_int integral_ = 0;
  nanos spacing_;
  nanos next_due_;  // earliest time of the next checkpoint
  std::size_t max_checkpoints_;
  std::vector<checkpoint> checkpoints_;
};

/// Time-averaged number of requests in service over [a, b], summed over the threads'
/// recorders: the measured load. 0 when b <= a.
double mean_in_service(const std::vector<const in_service_recorder*>& recorders, nanos a, nanos b);

}  // namespace httpbench::loadgen
