// Exact exclusion of the first and last N samples across per-thread recorders.
#include "sample_window.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

using namespace httpbench::loadgen;

TEST(SampleWindow, DropsExactlyTheGlobalFirstAndLastN) {
  // Three threads with interleaved completion times; latency encodes the global order so the
  // kept set can be checked exactly.
  std::vector<sample_recorder> recorders;
  for (int i = 0; i < 3; ++i) recorders.emplace_back(100, 0);
  std::mt19937 rng(1);
  const int total = 3000;
  for (int k = 1; k <= total; ++k) recorders[rng() % 3].record(k * 1000, k, 2 * k, 10);
  std::vector<const sample_recorder*> ptrs;
  for (auto& r : recorders) ptrs.push_back(&r);
  const window_summary w = merge_windows(ptrs, 100, 0);
  EXPECT_EQ(w.completed_total, static_cast<std::uint64_t>(total));
  EXPECT_EQ(w.completed, static_cast<std::uint64_t>(total - 200));
  EXPECT_EQ(w.discarded_each_end, 100u);
  EXPECT_EQ(w.latencies.min(), 101);
  EXPECT_EQ(w.latencies.max(), total - 100);
  EXPECT_EQ(w.window_start, 100 * 1000);
  EXPECT_EQ(w.window_end, (total - 99) * 1000);
  EXPECT_EQ(w.bytes, static_cast<std::uint64_t>(total - 200) * 10);
  // Mean of 101..2900.
  EXPECT_DOUBLE_EQ(w.latencies.mean(), (101.0 + 2900.0) / 2);
  // Service times (2k) are kept with exactly the same samples.
  EXPECT_DOUBLE_EQ(w.mean_service(), 101.0 + 2900.0);
}

TEST(SampleWindow, OneThreadDoingAllTheWorkStillDropsTheRightSamples) {
  std::vector<sample_recorder> recorders;
  for (int i = 0; i < 4; ++i) recorders.emplace_back(50, 0);
  for (int k = 1; k <= 1000; ++k) recorders[k < 990 ? 0 : 1 + k % 3].record(k, k, 0, 1);
  std::vector<const sample_recorder*> ptrs;
  for (auto& r : recorders) ptrs.push_back(&r);
  const window_summary w = merge_windows(ptrs, 50, 0);
  EXPECT_EQ(w.completed, 900u);
  EXPECT_EQ(w.latencies.min(), 51);
  EXPECT_EQ(w.latencies.max(), 950);
}

TEST(SampleWindow, ShortRunsDropAQuarterAtMost) {
  sample_recorder r(1000, 0);
  for (int k = 1; k <= 400; ++k) r.record(k, k, 0, 1);
  const window_summary w = merge_windows({&r}, 1000, 0);
  EXPECT_EQ(w.discarded_each_end, 100u);
  EXPECT_EQ(w.completed, 200u);
  EXPECT_EQ(w.completed_total, 400u);
}

TEST(SampleWindow, NoDiscardKeepsEverythingFromTheOrigin) {
  sample_recorder r(0, 0);
  for (int k = 1; k <= 10; ++k) r.record(1000 + k, 5, 0, 1);
  const window_summary w = merge_windows({&r}, 0, 1000);
  EXPECT_EQ(w.completed, 10u);
  EXPECT_EQ(w.window_start, 1000);
  EXPECT_EQ(w.window_end, 1010);
}

TEST(SampleWindow, WarmupSamplesAreCountedButNotKept) {
  sample_recorder r(0, 500);
  for (int k = 1; k <= 1000; ++k) r.record(k, 1, 0, 1);
  const window_summary w = merge_windows({&r}, 0, 500);
  EXPECT_EQ(w.completed_total, 1000u);
  EXPECT_EQ(w.warmup_dropped, 499u);
  EXPECT_EQ(w.completed, 501u);
}

TEST(SampleWindow, ClampKeepsTheWindowInsideTheRun) {
  window_summary w;
  w.window_start = 5000;  // a warm-up longer than the run
  w.window_end = 5000;
  w.clamp_to(100, 3000);
  EXPECT_EQ(w.window_start, 3000);
  EXPECT_EQ(w.window_end, 3000);
  w.window_start = 50;
  w.window_end = 2000;
  w.clamp_to(100, 3000);
  EXPECT_EQ(w.window_start, 100);
  EXPECT_EQ(w.window_end, 2000);
}
