// Log-linear (HdrHistogram-style) latency histogram with bounded relative error.
#pragma once

#include <bit>
#include <cstdint>
#include <cstdio>
#include <vector>

namespace httpbench::loadgen {

/// Counts non-negative integer values (nanoseconds here) in log-linear buckets: values below
/// 2^sub_bucket_bits are exact, every power-of-two range above is split into 2^sub_bucket_bits
/// equal buckets. A bucket's width is at most 1/128 of its lower bound, and reported values are
/// bucket midpoints, so any percentile is within 0.4% of the exact one (the issue asks for 1%)
/// for values from 1 ns up to `max_trackable` (~18 minutes); larger values are clamped.
/// Recording is one clz, a shift and an increment: no allocation after construction.
class histogram {
 public:
  static constexpr int sub_bucket_bits = 7;
  static constexpr std::int64_t sub_bucket_count = std::int64_t{1} << sub_bucket_bits;
  static constexpr int max_value_bits = 40;
  static constexpr std::int64_t max_trackable = (std::int64_t{1} << max_value_bits) - 1;

  histogram();

  /// Adds one sample. Negative values count as 0, values above max_trackable as max_trackable.
  void record(std::int64_t value) {
    if (value < 0) value = 0;
    if (value > max_trackable) value = max_trackable;
    ++counts_[index_of(value)];
    ++total_;
    sum_ += static_cast<double>(value);
    if (value < min_) min_ = value;
    if (value > max_) max_ = value;
  }

  /// Takes back one sample recorded earlier with `value` (a response found bad after it was
  /// counted good). Count, mean and percentiles stay exact; if it was the smallest or largest
  /// value, min() / max() become the bounds of the nearest non-empty bucket (within 0.8%).
  void remove(std::int64_t value);

  /// Adds every sample of `other` (used to merge per-thread histograms at the end).
  void merge(const histogram& other);

  std::uint64_t count() const { return total_; }
  /// Exact smallest / largest recorded value; 0 when empty.
  std::int64_t min() const { return total_ ? min_ : 0; }
  std::int64_t max() const { return total_ ? max_ : 0; }
  /// Exact mean of the recorded values (kept as a running sum, not from buckets); 0 when empty.
  double mean() const { return total_ ? sum_ / static_cast<double>(total_) : 0.0; }
  /// Standard deviation estimated from bucket midpoints.
  double stddev() const;

  /// Value at percentile `p` in [0, 100] by the nearest-rank rule (the smallest recorded value
  /// such that at least p% of the samples are <= it), as the midpoint of its bucket clamped to
  /// [min(), max()]. p = 100 gives max() exactly. 0 when empty.
  std::int64_t value_at_percentile(double p) const;

  /// Writes HdrHistogram's "percentile distribution" text format (as printed by
  /// HdrHistogram's outputPercentileDistribution and read by its plotter), values divided by
  /// `unit_divisor` (1e6: nanoseconds shown as milliseconds).
  void write_percentile_distribution(std::FILE* out, double unit_divisor) const;

  /// Bucket index of `value` (0 <= value <= max_trackable). Public for the tests.
  static std::size_t index_of(std::int64_t value) {
    if (value < sub_bucket_count) return static_cast<std::size_t>(value);
    const int top_bit = 63 - std::countl_zero(static_cast<std::uint64_t>(value));
    const int shift = top_bit - sub_bucket_bits;
    // (value >> shift) is in [sub_bucket_count, 2*sub_bucket_count): the bucket inside the octave.
    return static_cast<std::size_t>(shift) * sub_bucket_count +
           static_cast<std::size_t>(value >> shift);
  }
  /// Smallest value that maps to bucket `index`.
  static std::int64_t lowest_in_bucket(std::size_t index);
  /// Number of distinct values that map to bucket `index`.
  static std::int64_t bucket_width(std::size_t index);

 private:
  std::int64_t representative(std::size_t index) const;

  std::vector<std::uint64_t> counts_;
  std::uint64_t total_ = 0;
  double sum_ = 0;
  std::int64_t min_ = max_trackable;
  std::int64_t max_ = 0;
};

}  // namespace httpbench::loadgen
