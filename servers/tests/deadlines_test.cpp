// deadline_lists and rearm(): one list per kind of wait, each ordered, the earliest deadline
// across them first; which wait a connection is in after its I/O, and which waits a later
// readiness may extend (docs/interfaces.md, "Deadlines").
#include <gtest/gtest.h>

#include "core/content.hpp"
#include "core/deadlines.hpp"
#include "core/stats.hpp"
#include "drive_connection.hpp"

namespace httpbench::core {
namespace {

using namespace test_support;

connection_limits limits(int idle_ms, int header_ms, int send_ms) {
  connection_limits l;
  l.idle_timeout_ms = idle_ms;
  l.header_timeout_ms = header_ms;
  l.send_timeout_ms = send_ms;
  return l;
}

TEST(DeadlineLists, EachKindHasItsOwnTimeoutAndTheEarliestDeadlineComesFirst) {
  deadline_lists lists(wait_timeouts(limits(30'000, 10'000, 20'000)));
  idle_node idle, head, send, linger;
  lists.start(idle, wait_kind::request, 0);   // 30,000
  lists.start(head, wait_kind::head, 100);    // 10,100
  lists.start(send, wait_kind::send, 200);    // 20,200
  lists.start(linger, wait_kind::linger, 300);  // 300 + linger_ms
  // A single list ordered by when each was touched would put `idle` first.
  EXPECT_EQ(lists.front(), &linger);
  EXPECT_EQ(lists.expired(300 + linger_ms - 1), nullptr);
  EXPECT_EQ(lists.expired(300 + linger_ms), &linger);
  lists.remove(linger);
  EXPECT_EQ(lists.front(), &head);
  EXPECT_EQ(deadline_lists::kind_of(head), wait_kind::head);
  lists.remove(head);
  EXPECT_EQ(lists.front(), &send);
  EXPECT_EQ(lists.ms_until_next(1000, 20'000), 200);
  EXPECT_EQ(lists.ms_until_next(1000, 0), 1000);
  lists.remove(send);
  lists.remove(idle);
  EXPECT_EQ(lists.front(), nullptr);
  EXPECT_EQ(lists.ms_until_next(7, 0), 7);
}

TEST(DeadlineLists, AWaitResumedWithItsOldDeadlineKeepsItsPlace) {
  deadline_lists lists(wait_timeouts(limits(30'000, 1'000, 30'000)));
  idle_node first, second;
  lists.start(first, wait_kind::head, 0);     // 1,000
  lists.start(second, wait_kind::head, 500);  // 1,500
  lists.start_until(first, wait_kind::head, 1'000);  // parks again, same deadline
  EXPECT_EQ(lists.front(), &first);
  EXPECT_EQ(first.deadline_ms, 1'000);
}

class Rearm : public ::testing::Test {
 protected:
  content_store content_ = content_store::builtin();
  server_stats stats_;
  deadline_lists lists_{wait_timeouts(limits(30'000, 1'000, 5'000))};
  idle_node node_;
};

TEST_F(Rearm, ARequestWaitRestartsWhenBytesArriveButNotOnASpuriousWakeUp) {
  connection c(content_, stats_);
  rearm(lists_, node_, c, false, 0);
  EXPECT_EQ(deadline_lists::kind_of(node_), wait_kind::request);
  EXPECT_EQ(node_.deadline_ms, 30'000);
  rearm(lists_, node_, c, false, 100);
  EXPECT_EQ(node_.deadline_ms, 30'000);
  rearm(lists_, node_, c, true, 100);
  EXPECT_EQ(node_.deadline_ms, 30'100);
}

TEST_F(Rearm, AHeadKeepsTheDeadlineOfItsFirstByteHoweverManyMoreArrive) {
  connection c(content_, stats_);
  c.feed("GET / HTTP/1.1\r\n");
  rearm(lists_, node_, c, true, 0);
  EXPECT_EQ(deadline_lists::kind_of(node_), wait_kind::head);
  EXPECT_EQ(node_.deadline_ms, 1'000);
  for (int t = 100; t < 1000; t += 100) {
    c.feed("X: y\r\n");  // a slowloris: one more line every 100 ms
    rearm(lists_, node_, c, true, t);
  }
  EXPECT_EQ(node_.deadline_ms, 1'000);
  c.feed("Host: x\r\n\r\n");  // complete: the response waits to be sent
  rearm(lists_, node_, c, true, 950);
  EXPECT_EQ(deadline_lists::kind_of(node_), wait_kind::send);
  EXPECT_EQ(node_.deadline_ms, 5'950);
}

TEST_F(Rearm, ASendWaitRestartsOnlyWhenBytesWentOut) {
  connection c(content_, stats_);
  c.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  rearm(lists_, node_, c, true, 0);
  EXPECT_EQ(node_.deadline_ms, 5'000);
  rearm(lists_, node_, c, false, 3'000);  // writable, but nothing went out
  EXPECT_EQ(node_.deadline_ms, 5'000);
  c.consumed(10);
  rearm(lists_, node_, c, true, 3'000);
  EXPECT_EQ(node_.deadline_ms, 8'000);
  drain(c);
  rearm(lists_, node_, c, true, 3'100);  // all sent: waiting for the next request
  EXPECT_EQ(deadline_lists::kind_of(node_), wait_kind::request);
  EXPECT_EQ(node_.deadline_ms, 33'100);
}

}  // namespace
}  // namespace httpbench::core
