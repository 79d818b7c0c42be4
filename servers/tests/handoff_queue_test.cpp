// The staged servers' hand-off queue: order, bounds, batched take, wake-ups and shut-down.
#include "core/handoff_queue.hpp"

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <future>
#include <thread>
#include <vector>

using namespace httpbench::core;
using namespace std::chrono_literals;

namespace {

using int_queue = handoff_queue<int>;

// Long enough for a thread that is going to block to have blocked.
constexpr auto settle = 50ms;

// The eventfd's counter, reset to 0; 0 when it was not readable.
uint64_t take_count(int fd) {
  uint64_t value = 0;
  if (::read(fd, &value, sizeof value) < 0) {
    EXPECT_EQ(errno, EAGAIN);
  }
  return value;
}

TEST(HandoffQueue, TakeAllReturnsEverythingInPushOrder) {
  int_queue q(16, -1);
  std::vector<int> first = {1, 2, 3}, second = {4};
  ASSERT_TRUE(q.push(first));
  ASSERT_TRUE(q.push(second));
  std::vector<int> out = {0};
  q.take_all(out);
  EXPECT_EQ(out, (std::vector<int>{0, 1, 2, 3, 4}));  // appended to what `out` held
  out.clear();
  q.take_all(out);
  EXPECT_TRUE(out.empty());
}

TEST(HandoffQueue, TakeWaitReturnsAtMostMaxOldestFirst) {
  int_queue q(16, -1);
  std::vector<int> items = {1, 2, 3, 4, 5};
  ASSERT_TRUE(q.push(items));
  std::vector<int> out;
  EXPECT_EQ(q.take_wait(out, 2), 2u);
  EXPECT_EQ(out, (std::vector<int>{1, 2}));
  out.clear();
  EXPECT_EQ(q.take_wait(out, 10), 3u);
  EXPECT_EQ(out, (std::vector<int>{3, 4, 5}));
}

TEST(HandoffQueue, PushAndClearEmptiesTheProducersBatch) {
  int_queue q(16, -1);
  std::vector<int> batch = {7, 8};
  EXPECT_TRUE(q.push_and_clear(batch));
  EXPECT_TRUE(batch.empty());
  std::vector<int> out;
  q.take_all(out);
  EXPECT_EQ(out, (std::vector<int>{7, 8}));
}

TEST(HandoffQueue, PushIntoAFullQueueBlocksUntilRoomAndKeepsOrder) {
  int_queue q(2, -1);
  std::vector<int> first = {1, 2};
  ASSERT_TRUE(q.push(first));
  std::atomic<bool> pushed{false};
  std::thread producer([&] {
    std::vector<int> more = {3, 4, 5};  // larger than the queue: goes in as room appears
    EXPECT_TRUE(q.push(more));
    pushed = true;
  });
  std::this_thread::sleep_for(settle);
  EXPECT_FALSE(pushed.load()) << "push into a full queue returned without waiting";
  std::vector<int> out;
  while (out.size() < 5) {
    q.take_all(out);
    std::this_thread::yield();
  }
  producer.join();
  EXPECT_TRUE(pushed.load());
  EXPECT_EQ(out, (std::vector<int>{1, 2, 3, 4, 5}));
}

TEST(HandoffQueue, UnboundedQueueNeverBlocksTheProducer) {
  int_queue q(int_queue::unbounded, -1);
  std::vector<int> many(100000, 1);
  EXPECT_TRUE(q.push(many));
  std::vector<int> out;
  q.take_all(out);
  EXPECT_EQ(out.size(), many.size());
}

TEST(HandoffQueue, ShutDownFailsABlockedPushAndLaterOnes) {
  int_queue q(1, -1);
  std::vector<int> one = {1}, two = {2};
  ASSERT_TRUE(q.push(one));
  auto blocked = std::async(std::launch::async, [&] { return q.push(two); });
  EXPECT_EQ(blocked.wait_for(settle), std::future_status::timeout);
  q.shut_down();
  EXPECT_FALSE(blocked.get());
  EXPECT_FALSE(q.push(two));
  std::vector<int> out;
  q.take_all(out);  // what was queued before the shut-down can still be taken
  EXPECT_EQ(out, (std::vector<int>{1}));
}

TEST(HandoffQueue, ShutDownWakesAWaitingConsumerWithNothing) {
  int_queue q(4, -1);
  std::vector<int> out;
  auto waiting = std::async(std::launch::async, [&] { return q.take_wait(out, 4); });
  EXPECT_EQ(waiting.wait_for(settle), std::future_status::timeout);
  q.shut_down();
  EXPECT_EQ(waiting.get(), 0u);
  EXPECT_TRUE(out.empty());
}

TEST(HandoffQueue, TakeWaitAfterShutDownDrainsWhatIsLeftThenReturnsZero) {
  int_queue q(4, -1);
  std::vector<int> items = {1, 2, 3};
  ASSERT_TRUE(q.push(items));
  q.shut_down();
  std::vector<int> out;
  EXPECT_EQ(q.take_wait(out, 2), 2u);
  EXPECT_EQ(q.take_wait(out, 2), 1u);
  EXPECT_EQ(q.take_wait(out, 2), 0u);
  EXPECT_EQ(out, (std::vector<int>{1, 2, 3}));
}

TEST(HandoffQueue, APushWakesOneWaitingConsumerPerBatch) {
  int_queue q(16, -1, /*batch=*/2);
  std::vector<int> got_a, got_b;
  auto a = std::async(std::launch::async, [&] { return q.take_wait(got_a, 2); });
  auto b = std::async(std::launch::async, [&] { return q.take_wait(got_b, 2); });
  std::this_thread::sleep_for(settle);
  std::vector<int> items = {1, 2, 3, 4};  // two batches: both consumers must wake
  ASSERT_TRUE(q.push(items));
  bool both_woke =
      a.wait_for(2s) == std::future_status::ready && b.wait_for(2s) == std::future_status::ready;
  q.shut_down();  // lets a consumer that was never woken finish
  EXPECT_TRUE(both_woke);
  EXPECT_EQ(a.get() + b.get(), 4u);
}

TEST(HandoffQueue, EventfdIsSignalledOnlyWhenTheQueueBecomesNonEmpty) {
  int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  int_queue q(16, fd);
  std::vector<int> one = {1}, two = {2, 3};
  ASSERT_TRUE(q.push(one));
  ASSERT_TRUE(q.push(two));  // not empty before: no second signal
  EXPECT_EQ(take_count(fd), 1u);
  std::vector<int> out;
  q.take_all(out);
  ASSERT_TRUE(q.push(one));
  EXPECT_EQ(take_count(fd), 1u);
  ::close(fd);
}

TEST(HandoffQueue, ClearEventfdMakesItUnreadable) {
  int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  signal_eventfd(fd);
  signal_eventfd(fd);
  clear_eventfd(fd);
  EXPECT_EQ(take_count(fd), 0u);
  clear_eventfd(fd);  // already clear: no effect, no blocking
  ::close(fd);
}

}  // namespace
