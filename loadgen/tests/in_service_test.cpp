// The in-service integral: exact at checkpoints, bounded between them, summed over threads.
#include "in_service.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

using namespace httpbench::loadgen;

namespace {

/// A piecewise-constant count given as (time, delta) events, with its exact integral.
struct step_function {
  std::vector<std::pair<nanos, std::int64_t>> events;  // sorted by time
  double integral(nanos a, nanos b) const {
    double sum = 0;
    std::int64_t count = 0;
    nanos t = a;  // integrated up to here
    for (const auto& [at, delta] : events) {
      if (at > b) break;
      if (at > t) {
        sum += static_cast<double>(count) * static_cast<double>(at - t);
        t = at;
      }
      count += delta;
    }
    if (b > t) sum += static_cast<double>(count) * static_cast<double>(b - t);
    return sum;
  }
  void feed(in_service_recorder& r) const {
    for (const auto& [at, delta] : events) r.change(at, delta);
  }
};

}  // namespace

TEST(InService, EveryEventACheckpointIsExactEverywhere) {
  // Spacing 1 ns: every event is a checkpoint, so any bound is exact.
  const step_function f{{{10, 2}, {20, 1}, {35, -2}, {50, 4}, {70, -5}}};
  in_service_recorder r(0, 1);
  f.feed(r);
  r.finish(100);
  for (nanos a : {0, 5, 10, 15, 20, 34, 35, 49, 70, 99})
    for (nanos b : {a, a + 1, a + 13, nanos{70}, nanos{100}, nanos{130}})
      EXPECT_DOUBLE_EQ(r.integral_between(a, b), f.integral(a, b)) << a << ".." << b;
  // After the end the final count (0) continues.
  EXPECT_DOUBLE_EQ(r.integral_at(200), r.integral_at(100));
  EXPECT_DOUBLE_EQ(r.integral_at(70), 2.0 * 10 + 3 * 15 + 1 * 15 + 5 * 20);
}

TEST(InService, BoundsOnCheckpointsAreExactAndBetweenThemTheChordIsUsed) {
  // Spacing 100: checkpoints at the origin, at 100 (first event >= 100) and at 250.
  in_service_recorder r(0, 100);
  r.change(10, 3);   // no checkpoint (10 < 100)
  r.change(100, 1);  // checkpoint: integral 3 * 90 = 270
  r.change(150, -4); // no checkpoint
  r.change(250, 2);  // checkpoint: 270 + 4 * 50 = 470
  r.finish(400);     // checkpoint: 470 + 2 * 150 = 770
  const auto& cps = r.checkpoints();
  ASSERT_EQ(cps.size(), 4u);
  EXPECT_EQ(cps[1].at, 100);
  EXPECT_DOUBLE_EQ(r.integral_at(100), 270);
  EXPECT_DOUBLE_EQ(r.integral_at(250), 470);
  EXPECT_DOUBLE_EQ(r.integral_between(100, 250), 200);
  // Between 250 and 400 the count was constant (2): the chord is exact.
  EXPECT_DOUBLE_EQ(r.integral_between(300, 350), 100);
  // Between 100 and 250 the count was 4 then 0: the chord gives the mean, 200/150 per ns.
  EXPECT_DOUBLE_EQ(r.integral_between(100, 175), 100);
  // Its error is at most spacing x the count's variation (exact: 4 * 50 = 200).
  EXPECT_LE(std::abs(r.integral_between(100, 175) - 200), 100.0 * 4);
  // Between the origin and the first checkpoint: the chord of 0 .. 270.
  EXPECT_DOUBLE_EQ(r.integral_at(50), 135);
}

TEST(InService, TimeAverageNeverExceedsTheLargestCount) {
  // A closed loop of 10: each completion is followed by the resend at the same instant, and
  // once in a while a request is out of service for a while (a SYN retry). A checkpoint taken
  // between a completion and its resend holds 9; extrapolating its count would overshoot, the
  // chord never does.
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    in_service_recorder r(0, 1000);
    nanos t = 0;
    r.change(t, 10);
    std::int64_t count = 10;
    for (int i = 0; i < 5000; ++i) {
      t += static_cast<nanos>(rng() % 300);
      if (count == 10) {
        r.change(t, -1);
        count = 9;
        if (rng() % 8 != 0) {
          r.change(t, 1);
          count = 10;
        }
      } else {
        r.change(t, 1);
        count = 10;
      }
    }
    r.finish(t + 1);
    for (int k = 0; k < 200; ++k) {
      const nanos a = static_cast<nanos>(rng() % static_cast<std::uint64_t>(t));
      const nanos b = a + 1 + static_cast<nanos>(rng() % static_cast<std::uint64_t>(t - a + 1));
      const double mean = mean_in_service({&r}, a, b);
      EXPECT_LE(mean, 10.0 + 1e-9) << a << ".." << b;
      EXPECT_GE(mean, 9.0 - 1e-9) << a << ".." << b;
    }
  }
}

TEST(InService, RandomStepsStayWithinTheDocumentedErrorBound) {
  std::mt19937_64 rng(3);
  const nanos spacing = 1000;
  step_function f;
  std::int64_t count = 0;
  nanos t = 0;
  for (int i = 0; i < 20000; ++i) {
    t += static_cast<nanos>(rng() % 200);
    const std::int64_t delta = count == 0 ? 1 : (rng() % 2 ? 1 : -1);
    count += delta;
    f.events.push_back({t, delta});
  }
  in_service_recorder r(0, spacing);
  f.feed(r);
  r.finish(t);
  std::int64_t max_count = 0;
  count = 0;
  for (const auto& e : f.events) max_count = std::max(max_count, count += e.second);
  for (int k = 0; k < 1000; ++k) {
    const nanos a = static_cast<nanos>(rng() % static_cast<std::uint64_t>(t));
    const nanos b = static_cast<nanos>(rng() % static_cast<std::uint64_t>(t));
    if (b <= a) continue;
    // Each bound is off by at most spacing x variation (<= max count); checkpoints are at
    // least `spacing` apart but at most one event gap (< 200) beyond it.
    EXPECT_NEAR(r.integral_between(a, b), f.integral(a, b),
                2.0 * (spacing + 200) * static_cast<double>(max_count));
  }
}

TEST(InService, ThreadsAreSummed) {
  in_service_recorder one(0, 1), two(0, 1);
  one.change(0, 3);  // 3 in service on thread one all along
  two.change(50, 2);
  two.change(150, -2);
  one.finish(200);
  two.finish(200);
  // Over [0, 200]: 3 * 200 + 2 * 100 = 800 request·ns, 4 on average.
  EXPECT_DOUBLE_EQ(mean_in_service({&one, &two}, 0, 200), 4.0);
  EXPECT_DOUBLE_EQ(mean_in_service({&one, &two}, 50, 150), 5.0);
  EXPECT_DOUBLE_EQ(mean_in_service({&one, &two}, 100, 100), 0.0);
}

TEST(InService, MemoryIsBoundedByThinningTheCheckpoints) {
  in_service_recorder r(0, 10, 64);
  // One request in service all along, a change every 10 ns: a constant count, so the
  // integral stays exact however far the checkpoints are thinned.
  r.change(0, 1);
  for (nanos t = 10; t <= 100000; t += 10) {
    r.change(t, 1);
    r.change(t, -1);
  }
  r.finish(100000);
  EXPECT_LE(r.checkpoints().size(), 64u);
  EXPECT_GT(r.spacing(), 10);
  EXPECT_DOUBLE_EQ(r.integral_at(100000), 100000);
  EXPECT_DOUBLE_EQ(r.integral_between(12345, 67890), 67890 - 12345);
}

TEST(InService, IntegralBeyondInt64IsKept) {
  // Ten million requests for two hours: 7.2e19 request·ns (int64 ends at 9.2e18).
  in_service_recorder r(0);
  r.change(0, 10'000'000);
  r.finish(2 * 3600 * ns_per_s);
  EXPECT_DOUBLE_EQ(r.integral_at(2 * 3600 * ns_per_s), 7.2e19);
  EXPECT_DOUBLE_EQ(mean_in_service({&r}, ns_per_s, 3600 * ns_per_s), 1e7);
}

TEST(InService, ABackdatedStartIsExactAtTheCheckpointsItSpans) {
  // Spacing 10: one request enters service at 45 but is counted from 12 (a connect that started
  // then); the checkpoints at 20 and 30 (and the one the change takes at 45) get its share.
  in_service_recorder r(0, 10);
  r.change(5, 1);    // no checkpoint yet
  r.change(20, 1);   // checkpoint 20: 15
  r.change(30, -1);  // checkpoint 30: 15 + 2 * 10 = 35
  r.change_since(12, 45, 1);
  r.finish(60);
  const step_function f{{{5, 1}, {12, 1}, {20, 1}, {30, -1}}};
  for (nanos t : {nanos{0}, nanos{20}, nanos{30}, nanos{45}, nanos{60}})
    EXPECT_DOUBLE_EQ(r.integral_at(t), f.integral(0, t)) << t;
  // Never more than the 3 requests in flight at once, over any window.
  for (nanos a = 0; a < 60; a += 3)
    for (nanos b = a + 1; b <= 60; b += 4) EXPECT_LE(r.integral_between(a, b), 3.0 * (b - a) + 1e-9);
}

TEST(InService, ABackdatedStartNeverReachesBeforeTheOrigin) {
  in_service_recorder r(100, 10);
  r.change_since(40, 150, 2);  // counted from the origin, not from 40
  r.finish(200);
  EXPECT_DOUBLE_EQ(r.integral_at(200), 2.0 * 100);
}
