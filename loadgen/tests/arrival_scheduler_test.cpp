// Open-loop arrivals: rate and Poisson statistics.
#include "arrival_scheduler.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

using namespace httpbench::loadgen;

TEST(ArrivalScheduler, ConstantArrivalsAreEvenlySpacedWithoutDrift) {
  arrival_scheduler s(3000.0, arrival_process::constant, 1'000'000, 1);  // 333,333.33 ns gap
  EXPECT_EQ(s.next(), 1'000'000);
  nanos last = s.pop();
  for (int i = 1; i < 30000; ++i) {
    const nanos t = s.pop();
    const nanos gap = t - last;
    EXPECT_TRUE(gap == 333333 || gap == 333334) << gap;
    last = t;
  }
  // 30,000 arrivals at 3,000/s: the last is at 9.999667 s, no accumulated rounding.
  EXPECT_EQ(last, 1'000'000 + 9'999'666'666);
  EXPECT_EQ(s.issued(), 30000u);
}

TEST(ArrivalScheduler, PoissonRateMatchesTarget) {
  const double rate = 10000;
  arrival_scheduler s(rate, arrival_process::poisson, 0, 12345);
  const int n = 200000;
  nanos last = 0;
  for (int i = 0; i < n; ++i) last = s.pop();
  const double observed = n / (static_cast<double>(last) / 1e9);
  EXPECT_NEAR(observed, rate, rate * 0.01);
}

TEST(ArrivalScheduler, PoissonGapsAreExponential) {
  // Mean == standard deviation for the exponential distribution, and P(gap > mean) = 1/e.
  const double rate = 5000;
  arrival_scheduler s(rate, arrival_process::poisson, 0, 99);
  std::vector<double> gaps;
  nanos last = s.pop();
  for (int i = 0; i < 100000; ++i) {
    const nanos t = s.pop();
    gaps.push_back(static_cast<double>(t - last));
    last = t;
  }
  double sum = 0, sq = 0;
  for (double g : gaps) sum += g;
  const double mean = sum / gaps.size();
  for (double g : gaps) sq += (g - mean) * (g - mean);
  const double sd = std::sqrt(sq / gaps.size());
  EXPECT_NEAR(mean, 1e9 / rate, 1e9 / rate * 0.02);
  EXPECT_NEAR(sd / mean, 1.0, 0.03);
  int above = 0;
  for (double g : gaps) above += g > mean;
  EXPECT_NEAR(static_cast<double>(above) / gaps.size(), std::exp(-1.0), 0.01);
}

TEST(ArrivalScheduler, PoissonCountsPerIntervalHaveVarianceEqualToMean) {
  // Counts in fixed windows of a Poisson process: variance / mean (index of dispersion) = 1.
  const double rate = 2000;
  arrival_scheduler s(rate, arrival_process::poisson, 0, 7);
  const nanos window = 10'000'000;  // 10 ms: mean 20 arrivals
  std::vector<int> counts(5000, 0);
  while (true) {
    const nanos t = s.pop();
    const auto w = static_cast<std::size_t>(t / window);
    if (w >= counts.size()) break;
    ++counts[w];
  }
  double sum = 0, sq = 0;
  for (int c : counts) sum += c;
  const double mean = sum / counts.size();
  for (int c : counts) sq += (c - mean) * (c - mean);
  const double variance = sq / counts.size();
  EXPECT_NEAR(mean, 20.0, 0.4);
  EXPECT_NEAR(variance / mean, 1.0, 0.08);
}

TEST(ArrivalScheduler, SameSeedSameArrivals) {
  arrival_scheduler a(1000, arrival_process::poisson, 0, 5),
      b(1000, arrival_process::poisson, 0, 5);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.pop(), b.pop());
}
