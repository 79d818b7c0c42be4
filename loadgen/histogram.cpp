#include "histogram.hpp"

#include <algorithm>
#include <cmath>

namespace httpbench::loadgen {

namespace {
constexpr std::size_t bucket_count =
    static_cast<std::size_t>(histogram::max_value_bits - histogram::sub_bucket_bits) *
        histogram::sub_bucket_count +
    2 * histogram::sub_bucket_count;
}  // namespace

histogram::histogram() : counts_(bucket_count, 0) {}

std::int64_t histogram::lowest_in_bucket(std::size_t index) {
  const auto n = static_cast<std::int64_t>(index);
  if (n < sub_bucket_count) return n;
  const std::int64_t shift = n / sub_bucket_count - 1;
  return (n % sub_bucket_count + sub_bucket_count) << shift;
}

std::int64_t histogram::bucket_width(std::size_t index) {
  const auto n = static_cast<std::int64_t>(index);
  if (n < sub_bucket_count) return 1;
  return std::int64_t{1} << (n / sub_bucket_count - 1);
}

std::int64_t histogram::representative(std::size_t index) const {
  // The midpoint halves the worst-case error of reporting a bucket bound.
  const std::int64_t mid = lowest_in_bucket(index) + (bucket_width(index) - 1) / 2;
  return std::clamp(mid, min(), max());
}

void histogram::merge(const histogram& other) {
  for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  total_ += other.total_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

double histogram::stddev() const {
  if (total_ == 0) return 0;
  const double m = mean();
  double acc = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    if (counts_[i] == 0) continue;
    const double d = static_cast<double>(representative(i)) - m;
    acc += d * d * static_cast<double>(counts_[i]);
  }
  return std::sqrt(acc / static_cast<double>(total_));
}

std::int64_t histogram::value_at_percentile(double p) const {
  if (total_ == 0) return 0;
  if (p >= 100.0) return max();
  const double wanted = std::ceil(std::max(p, 0.0) / 100.0 * static_cast<double>(total_));
  const std::uint64_t rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(wanted));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return representative(i);
  }
  return max();
}

void histogram::write_percentile_distribution(std::FILE* out, double unit_divisor) const {
  std::fprintf(out, "%12s %14s %10s %14s\n\n", "Value", "Percentile", "TotalCount",
               "1/(1-Percentile)");
  if (total_ > 0) {
    // HdrHistogram's iteration: 5 ticks per halving of the distance to 100%.
    constexpr int ticks_per_half_distance = 5;
    double level = 0;
    std::uint64_t seen = 0;
    std::size_t bucket = 0;
    while (true) {
      const std::int64_t value = value_at_percentile(level);
      // Count of samples <= value, for the TotalCount column.
      while (bucket < counts_.size() && lowest_in_bucket(bucket) <= value)
        seen += counts_[bucket++];
      if (level >= 100.0 || seen >= total_) break;
      std::fprintf(out, "%12.3f %2.12f %10llu %14.2f\n", static_cast<double>(value) / unit_divisor,
                   level / 100.0, static_cast<unsigned long long>(seen),
                   1.0 / (1.0 - level / 100.0));
      const double half_distance =
          std::pow(2.0, std::floor(std::log2(100.0 / (100.0 - level))) + 1);
      level += 100.0 / (ticks_per_half_distance * half_distance);
    }
    std::fprintf(out, "%12.3f %2.12f %10llu %14s\n", static_cast<double>(max()) / unit_divisor, 1.0,
                 static_cast<unsigned long long>(total_), "inf");
  }
  std::fprintf(out, "#[Mean    = %12.3f, StdDeviation   = %12.3f]\n", mean() / unit_divisor,
               stddev() / unit_divisor);
  std::fprintf(out, "#[Max     = %12.3f, Total count    = %12llu]\n",
               static_cast<double>(max()) / unit_divisor, static_cast<unsigned long long>(total_));
  std::fprintf(out, "#[Buckets = %12d, SubBuckets     = %12lld]\n",
               max_value_bits - sub_bucket_bits + 1, static_cast<long long>(2 * sub_bucket_count));
}

void histogram::remove(std::int64_t value) {
  if (value < 0) value = 0;
  if (value > max_trackable) value = max_trackable;
  const std::size_t i = index_of(value);
  if (total_ == 0 || counts_[i] == 0) return;
  --counts_[i];
  --total_;
  sum_ -= static_cast<double>(value);
  if (total_ == 0) {
    min_ = max_trackable;
    max_ = 0;
    return;
  }
  if (value == min_ && counts_[i] == 0) {
    std::size_t k = i;
    while (counts_[k] == 0) ++k;
    min_ = std::max(min_, lowest_in_bucket(k));
  }
  if (value == max_ && counts_[i] == 0) {
    std::size_t k = i;
    while (counts_[k] == 0) --k;
    max_ = std::min(max_, lowest_in_bucket(k) + bucket_width(k) - 1);
  }
}

}  // namespace httpbench::loadgen
