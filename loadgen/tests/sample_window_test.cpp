// Exact exclusion of the first and last N samples across per-thread recorders.
#include "sample_window.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

using namespace httpbench::loadgen;

namespace {

/// 12 samples with N = 2 — sample k completes at k·100 with latency and service time k — after
/// taking back sample `retracted`. Before that the head held 1, 2, the ring 11, 12 and the
/// histogram 3..10.
sample_recorder twelve_samples_less(int retracted) {
  sample_recorder r(2, 0);
  for (int k = 1; k <= 12; ++k) r.record(k * 100, k, k, 1);
  r.retract(sample{retracted * 100, retracted, retracted, 1});
  return r;
}

}  // namespace

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

TEST(SampleWindow, RetractedSamplesAreGoneWhereverTheyWereHeld) {
  for (int retracted : {4, 5, 10}) {
    const sample_recorder r = twelve_samples_less(retracted);
    EXPECT_EQ(r.recorded(), 11u);
    const window_summary w = merge_windows({&r}, 2, 0);
    EXPECT_EQ(w.completed_total, 11u);
    EXPECT_EQ(w.completed, 7u) << retracted;  // 11 samples less 2 at each end
    EXPECT_EQ(w.bytes, 7u);
    // The kept ones are the 3rd to 9th of the remaining samples in completion order.
    std::vector<int> left;
    for (int k = 1; k <= 12; ++k)
      if (k != retracted) left.push_back(k);
    double sum = 0;
    for (int i = 2; i <= 8; ++i) sum += left[i];
    EXPECT_EQ(w.latencies.min(), left[2]) << retracted;
    EXPECT_EQ(w.latencies.max(), left[8]) << retracted;
    EXPECT_DOUBLE_EQ(w.latencies.mean(), sum / 7) << retracted;
    EXPECT_DOUBLE_EQ(w.mean_service(), sum / 7) << retracted;
    EXPECT_EQ(w.window_start, left[1] * 100) << retracted;
    EXPECT_EQ(w.window_end, left[9] * 100) << retracted;
  }
}

TEST(SampleWindow, RetractingFromTheHeadBeforeTheRingWrappedIsExact) {
  // 4 samples with N = 2: head 1, 2, ring 3, 4, nothing in the histogram yet; retracting 1
  // moves 3 up into the head.
  sample_recorder r(2, 0);
  for (int k = 1; k <= 4; ++k) r.record(k, k, 0, 1);
  r.retract(sample{1, 1, 0, 1});
  for (int k = 5; k <= 10; ++k) r.record(k, k, 0, 1);
  const window_summary w = merge_windows({&r}, 2, 0);
  // Remaining 2..10 (9 samples): drop 2, 3 and 9, 10; keep 4..8.
  EXPECT_EQ(w.completed, 5u);
  EXPECT_EQ(w.latencies.min(), 4);
  EXPECT_EQ(w.latencies.max(), 8);
  EXPECT_EQ(w.window_start, 3);
  EXPECT_EQ(w.window_end, 9);
}

TEST(SampleWindow, RetractingFromTheRingAtTheEndOfTheRunEndsTheWindowOneSampleLate) {
  // The documented limit on the other side: the last sample taken back right at the end.
  const sample_recorder r = twelve_samples_less(12);
  const window_summary w = merge_windows({&r}, 2, 0);
  // Remaining 1..11: exact would keep 3..9; 3..10 are kept.
  EXPECT_EQ(w.completed, 8u);
  EXPECT_EQ(w.latencies.min(), 3);
  EXPECT_EQ(w.latencies.max(), 10);
}

TEST(SampleWindow, RetractingFromTheHeadAfterTheRingWrappedStartsTheWindowOneSampleEarly) {
  // The documented limit: samples already in the histogram counted on the head's N samples.
  const sample_recorder r = twelve_samples_less(1);
  const window_summary w = merge_windows({&r}, 2, 0);
  // Remaining 2..12: exact would keep 4..10; 3..10 are kept.
  EXPECT_EQ(w.completed_total, 11u);
  EXPECT_EQ(w.completed, 8u);
  EXPECT_EQ(w.latencies.min(), 3);
  EXPECT_EQ(w.latencies.max(), 10);
  EXPECT_EQ(w.window_end, 1100);
}

TEST(SampleWindow, RetractingFromAFullRingKeepsItARing) {
  sample_recorder r(3, 0);
  for (int k = 1; k <= 10; ++k) r.record(k, k, 0, 1);  // the ring wrapped: holds 8, 9, 10
  r.retract(sample{9, 9, 0, 0 + 1});
  for (int k = 11; k <= 14; ++k) r.record(k, k, 0, 1);
  const window_summary w = merge_windows({&r}, 3, 0);
  // Remaining: 1..8, 10..14 (13 samples); kept: 4..8, 10, 11.
  EXPECT_EQ(w.completed, 7u);
  EXPECT_DOUBLE_EQ(w.latencies.mean(), (4 + 5 + 6 + 7 + 8 + 10 + 11) / 7.0);
  EXPECT_EQ(w.window_start, 3);
  EXPECT_EQ(w.window_end, 12);
}

TEST(SampleWindow, RetractingAWarmupSampleOnlyCountsIt) {
  sample_recorder r(0, 500);
  r.record(100, 1, 1, 1);
  r.record(600, 2, 2, 1);
  r.retract(sample{100, 1, 1, 1});
  const window_summary w = merge_windows({&r}, 0, 500);
  EXPECT_EQ(w.completed_total, 1u);
  EXPECT_EQ(w.warmup_dropped, 0u);
  EXPECT_EQ(w.completed, 1u);
}
