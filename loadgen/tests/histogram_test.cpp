// The histogram against exact percentiles of known data.
#include "histogram.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

using httpbench::loadgen::histogram;

namespace {

std::int64_t exact_percentile(std::vector<std::int64_t> sorted, double p) {
  const auto rank = static_cast<std::size_t>(
      std::max(1.0, std::ceil(p / 100.0 * static_cast<double>(sorted.size()))));
  return sorted[std::min(rank, sorted.size()) - 1];
}

void expect_within_one_percent(const std::vector<std::int64_t>& data) {
  histogram h;
  for (auto v : data) h.record(v);
  auto sorted = data;
  std::sort(sorted.begin(), sorted.end());
  for (double p : {0.0, 1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 100.0}) {
    const double exact = static_cast<double>(exact_percentile(sorted, p));
    const double got = static_cast<double>(h.value_at_percentile(p));
    EXPECT_LE(std::fabs(got - exact), 0.01 * exact) << "p" << p << " exact " << exact;
  }
}

}  // namespace

TEST(Histogram, EmptyReportsZero) {
  histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.value_at_percentile(50), 0);
  EXPECT_EQ(h.max(), 0);
  EXPECT_EQ(h.mean(), 0);
}

TEST(Histogram, SmallValuesAreExact) {
  histogram h;
  for (int v = 0; v < 128; ++v) h.record(v);
  EXPECT_EQ(h.value_at_percentile(50), 63);
  EXPECT_EQ(h.min(), 0);
  EXPECT_EQ(h.max(), 127);
}

TEST(Histogram, BucketsAreContiguousAndNarrow) {
  // Every bucket starts where the previous one ended, and is at most 1/128 of its value wide.
  for (std::size_t i = 1; i < 4400; ++i) {
    ASSERT_EQ(histogram::lowest_in_bucket(i),
              histogram::lowest_in_bucket(i - 1) + histogram::bucket_width(i - 1))
        << i;
    if (histogram::lowest_in_bucket(i) >= 128) {
      ASSERT_LE(histogram::bucket_width(i) * 128, histogram::lowest_in_bucket(i)) << i;
    }
    ASSERT_EQ(histogram::index_of(histogram::lowest_in_bucket(i)), i);
  }
}

TEST(Histogram, LogUniformOneMicrosecondToHundredSecondsWithinOnePercent) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> exponent(3.0, 11.0);  // 1 us .. 100 s in ns
  std::vector<std::int64_t> data;
  for (int i = 0; i < 200000; ++i)
    data.push_back(static_cast<std::int64_t>(std::pow(10.0, exponent(rng))));
  expect_within_one_percent(data);
}

TEST(Histogram, ExponentialLatenciesWithinOnePercent) {
  std::mt19937_64 rng(7);
  std::exponential_distribution<double> d(1.0 / 2e6);  // mean 2 ms
  std::vector<std::int64_t> data;
  for (int i = 0; i < 100000; ++i) data.push_back(1000 + static_cast<std::int64_t>(d(rng)));
  expect_within_one_percent(data);
}

TEST(Histogram, EachDecadeEndpointWithinOnePercent) {
  for (std::int64_t v = 1000; v <= 100'000'000'000; v *= 10) {
    histogram h;
    h.record(v);
    h.record(v + v / 3);  // two values so that p50 is not clamped to min and max
    EXPECT_LE(std::llabs(h.value_at_percentile(50) - v), v / 100) << v;
  }
}

TEST(Histogram, MeanAndMaxAreExact) {
  histogram h;
  h.record(1'000'001);
  h.record(3'000'003);
  EXPECT_DOUBLE_EQ(h.mean(), 2'000'002.0);
  EXPECT_EQ(h.max(), 3'000'003);
  EXPECT_EQ(h.value_at_percentile(100), 3'000'003);
}

TEST(Histogram, MergeEqualsRecordingEverythingInOne) {
  histogram a, b, all;
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<std::int64_t> d(1000, 50'000'000);
  for (int i = 0; i < 10000; ++i) {
    const auto v = d(rng);
    (i % 2 ? a : b).record(v);
    all.record(v);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  for (double p : {50.0, 90.0, 99.0, 99.9})
    EXPECT_EQ(a.value_at_percentile(p), all.value_at_percentile(p));
  EXPECT_EQ(a.max(), all.max());
  EXPECT_EQ(a.min(), all.min());
}

TEST(Histogram, OutOfRangeValuesAreClamped) {
  histogram h;
  h.record(-5);
  h.record(histogram::max_trackable * 2);
  EXPECT_EQ(h.min(), 0);
  EXPECT_EQ(h.max(), histogram::max_trackable);
}

TEST(Histogram, PercentileDistributionEndsWithTotals) {
  histogram h;
  for (int i = 1; i <= 1000; ++i) h.record(i * 1000);
  char* text = nullptr;
  std::size_t size = 0;
  std::FILE* f = open_memstream(&text, &size);
  h.write_percentile_distribution(f, 1e6);
  std::fclose(f);
  const std::string out(text, size);
  free(text);
  EXPECT_NE(out.find("Value"), std::string::npos);
  EXPECT_NE(out.find("Total count    =         1000"), std::string::npos);
  EXPECT_NE(out.find("1.000000000000       1000            inf"), std::string::npos);
}

TEST(Histogram, RemoveTakesBackOneSample) {
  histogram h;
  for (std::int64_t v : {1000, 2000, 3000, 500000}) h.record(v);
  h.remove(2000);
  EXPECT_EQ(h.count(), 3u);
  EXPECT_DOUBLE_EQ(h.mean(), (1000 + 3000 + 500000) / 3.0);
  EXPECT_EQ(h.min(), 1000);
  EXPECT_EQ(h.max(), 500000);
  // Removing the largest: the new max is bounded by the next non-empty bucket.
  h.remove(500000);
  EXPECT_GE(h.max(), 3000);
  EXPECT_LE(h.max(), 3000 + 3000 / 128);
  h.remove(1000);
  EXPECT_GE(h.value_at_percentile(50), h.min());
  EXPECT_LE(h.value_at_percentile(50), h.max());
  EXPECT_LE(h.min(), 3000);
  h.remove(3000);
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.max(), 0);
  EXPECT_EQ(h.min(), 0);
}
