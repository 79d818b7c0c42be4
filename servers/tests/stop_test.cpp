// The stop policy's pieces: the grace period, the live count threads wait on without timers,
// and the served sockets whose blocking reads the stop ends from outside.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <thread>

#include "core/stop.hpp"

namespace httpbench::core {
namespace {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

TEST(GracePeriod, RunsFromBeginForItsLengthAndBeginsOnlyOnce) {
  grace_period grace(200);
  EXPECT_FALSE(grace.begun());
  EXPECT_FALSE(grace.over());
  EXPECT_EQ(grace.ms_left(50), 50);
  grace.begin();
  EXPECT_TRUE(grace.begun());
  EXPECT_GT(grace.ms_left(1000), 150);
  std::this_thread::sleep_for(milliseconds(100));
  grace.begin();  // no restart
  EXPECT_LE(grace.ms_left(1000), 110);
  std::this_thread::sleep_for(milliseconds(130));
  EXPECT_TRUE(grace.over());
  EXPECT_EQ(grace.ms_left(1000), 0);
}

TEST(GracePeriod, WaitNapsUntilDoneOrOver) {
  grace_period grace(300);
  grace.begin();
  int naps = 0;
  EXPECT_TRUE(grace.wait([&] { return naps == 3; }, [&](int ms) {
    EXPECT_LE(ms, 10);
    ++naps;
  }));
  auto start = clock::now();
  EXPECT_FALSE(grace.wait([] { return false; }, [](int ms) { std::this_thread::sleep_for(milliseconds(ms)); }));
  EXPECT_LT(clock::now() - start, milliseconds(400));
}

TEST(LiveCount, WaitBelowReturnsAtOnceWhenThereIsRoom) {
  live_count live;
  live.opened();
  auto start = clock::now();
  EXPECT_TRUE(live.wait_below(2, -1));
  EXPECT_LT(clock::now() - start, milliseconds(50));
}

TEST(LiveCount, WaitBelowSleepsUntilAConnectionClosesOnAnotherThread) {
  live_count live;
  live.opened();
  live.opened();
  auto closer = std::async(std::launch::async, [&] {
    std::this_thread::sleep_for(milliseconds(150));
    live.closed();
  });
  auto start = clock::now();
  EXPECT_TRUE(live.wait_below(2, -1));
  EXPECT_GE(clock::now() - start, milliseconds(140));
  EXPECT_EQ(live.get(), 1);
}

TEST(LiveCount, WaitBelowGivesUpWhenTheStopFdBecomesReadable) {
  live_count live;
  live.opened();
  unique_fd stop = make_eventfd();
  auto stopper = std::async(std::launch::async, [&] {
    std::this_thread::sleep_for(milliseconds(100));
    signal_eventfd(stop.get());
  });
  EXPECT_FALSE(live.wait_below(1, stop.get()));
}

TEST(LiveCount, DrainWaitsForTheLastConnectionOrTheEndOfTheGrace) {
  live_count live;
  live.opened();
  grace_period grace(2000);
  grace.begin();
  auto closer = std::async(std::launch::async, [&] {
    std::this_thread::sleep_for(milliseconds(100));
    live.closed();
  });
  EXPECT_TRUE(live.drain(grace));

  live.opened();  // never closes
  grace_period short_grace(200);
  short_grace.begin();
  auto start = clock::now();
  EXPECT_FALSE(live.drain(short_grace));
  EXPECT_GE(clock::now() - start, milliseconds(190));
  EXPECT_LT(clock::now() - start, milliseconds(1000));
}

TEST(ServedSockets, EndReadingWakesABlockedReadAndEndsOneRegisteredLater) {
  int a[2], b[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
  unique_fd ours(a[0]), peer(a[1]), later(b[0]), later_peer(b[1]);
  served_sockets served;
  auto reader = std::async(std::launch::async, [&] {
    served_sockets::entry registered(served, ours.get());
    char c;
    return ::read(ours.get(), &c, 1);  // blocks until the stop ends reading
  });
  std::this_thread::sleep_for(milliseconds(100));
  served.end_reading();
  ASSERT_EQ(reader.wait_for(std::chrono::seconds(2)), std::future_status::ready);
  EXPECT_EQ(reader.get(), 0);
  ASSERT_EQ(::write(later_peer.get(), "x", 1), 1);
  served_sockets::entry registered(served, later.get());
  char c[2];
  EXPECT_EQ(::read(later.get(), c, 2), 1);  // what had arrived is still read...
  EXPECT_EQ(::read(later.get(), c, 2), 0);  // ...then EOF, without waiting
}

}  // namespace
}  // namespace httpbench::core
