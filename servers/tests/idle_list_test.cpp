// idle_list: every connection has the same timeout, so the list is ordered by last activity and
// expires from its front.
#include <gtest/gtest.h>

#include "core/idle_list.hpp"

namespace httpbench::core {
namespace {

TEST(IdleList, EmptyListHasNoFrontNothingExpiredAndWaitsTheMaximum) {
  idle_list list;
  EXPECT_EQ(list.front(), nullptr);
  EXPECT_EQ(list.expired(1'000'000), nullptr);
  EXPECT_EQ(list.ms_until_next(1000), 1000);
}

TEST(IdleList, TouchingMovesANodeToTheBackWithItsNewDeadline) {
  idle_list list;
  idle_node a, b, c;
  list.touch(a, 100);
  list.touch(b, 200);
  list.touch(c, 300);
  EXPECT_EQ(list.front(), &a);
  list.touch(a, 400);  // activity on a: it now expires last
  EXPECT_EQ(list.front(), &b);
  EXPECT_EQ(a.deadline_ms, 400);
  EXPECT_TRUE(a.linked());
}

TEST(IdleList, ExpiredReturnsTheFrontOnlyOnceItsDeadlineHasCome) {
  idle_list list;
  idle_node a, b;
  list.touch(a, 100);
  list.touch(b, 200);
  EXPECT_EQ(list.expired(99), nullptr);
  EXPECT_EQ(list.expired(100), &a);
  list.remove(a);
  EXPECT_EQ(list.expired(150), nullptr);
  EXPECT_EQ(list.expired(250), &b);
}

TEST(IdleList, RemoveUnlinksAndIsHarmlessTwice) {
  idle_list list;
  idle_node a, b;
  list.touch(a, 100);
  list.touch(b, 200);
  list.remove(a);
  EXPECT_FALSE(a.linked());
  list.remove(a);
  EXPECT_EQ(list.front(), &b);
  list.remove(b);
  EXPECT_EQ(list.front(), nullptr);
}

TEST(IdleList, MsUntilNextIsClampedBetweenZeroAndTheMaximum) {
  idle_list list;
  idle_node past, far;
  list.touch(past, idle_list::now_ms() - 5000);
  EXPECT_EQ(list.ms_until_next(1000), 0);
  list.remove(past);
  list.touch(far, idle_list::now_ms() + 60'000);
  EXPECT_EQ(list.ms_until_next(1000), 1000);
  list.remove(far);
  idle_node soon;
  list.touch(soon, idle_list::now_ms() + 300);
  int wait = list.ms_until_next(1000);
  EXPECT_GT(wait, 200);
  EXPECT_LE(wait, 300);
}

TEST(IdleList, InsertFindsItsPlaceByDeadlineFromTheBack) {
  idle_list list;
  idle_node a, b, c, d;
  list.touch(a, 100);
  list.touch(b, 300);
  list.insert(c, 200);  // between a and b
  list.insert(d, 400);  // the latest: at the back
  EXPECT_EQ(list.front(), &a);
  list.remove(a);
  EXPECT_EQ(list.front(), &c);
  list.remove(c);
  EXPECT_EQ(list.front(), &b);
  list.insert(b, 500);  // moved: now after d
  EXPECT_EQ(list.front(), &d);
}

}  // namespace
}  // namespace httpbench::core
