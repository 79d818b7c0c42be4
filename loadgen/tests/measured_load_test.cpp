// The measured-load arithmetic of Kerneis & Chroboczek.
#include "measured_load.hpp"

#include <gtest/gtest.h>

using namespace httpbench::loadgen;

TEST(MeasuredLoad, IdealRunGivesOfferedLoad) {
  // l = 100 in flight, t_r = 5 ms: 20,000 requests/s, so 200,000 requests take 10 s.
  EXPECT_DOUBLE_EQ(measured_load_nt(200000, 0.005, 10.0), 100.0);
}

TEST(MeasuredLoad, IdleTimeLowersIt) {
  // Same requests and service time over twice the time: half the load was really applied.
  EXPECT_DOUBLE_EQ(measured_load_nt(200000, 0.005, 20.0), 50.0);
}

TEST(MeasuredLoad, PaperSomaxconnExample) {
  // A limit of 130 connections: 1,000 requests/s at 130 ms each gives l_m = 130 whatever l is.
  EXPECT_NEAR(measured_load_nt(10000, 0.130, 10.0), 130.0, 1e-9);
}

TEST(MeasuredLoad, EmptyWindowIsZero) {
  EXPECT_EQ(measured_load_nt(0, 0.0, 0.0), 0.0);
  EXPECT_EQ(measured_load_nt(10, 0.01, 0.0), 0.0);
}

TEST(MeasuredLoad, OpenLoopOfferedLoadIsLittlesLaw) {
  EXPECT_DOUBLE_EQ(open_loop_offered_load(1000.0, 0.002), 2.0);
}
