// Each poller (epoll, poll, select) behind the one interface: level-triggered readiness, changes
// of interest, removal, hang-ups, timeouts; and what only one of them does.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <vector>

#include "core/poller.hpp"
#include "core/unique_fd.hpp"

namespace httpbench::core {
namespace {

struct socket_pair {
  socket_pair() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) std::abort();
    ours.reset(fds[0]);
    peer.reset(fds[1]);
  }
  unique_fd ours, peer;
};

template <class Poller>
class PollerTest : public ::testing::Test {
 protected:
  // The events for `fd` in one wait (0 when not reported).
  uint32_t events_for(int fd, int timeout_ms = 0) {
    std::vector<ready_event> out(16);
    int n = poller_.wait(out, timeout_ms);
    for (int i = 0; i < n; ++i)
      if (out[i].fd == fd) return out[i].events;
    return 0;
  }
  Poller poller_;
};

using pollers = ::testing::Types<epoll_poller, poll_poller, select_poller>;
TYPED_TEST_SUITE(PollerTest, pollers);

TYPED_TEST(PollerTest, ReportsReadableAgainAndAgainUntilDrained) {
  socket_pair p;
  ASSERT_TRUE(this->poller_.add(p.ours.get(), poll_read));
  EXPECT_EQ(this->events_for(p.ours.get()), 0u);
  ASSERT_EQ(::write(p.peer.get(), "x", 1), 1);
  EXPECT_TRUE(this->events_for(p.ours.get(), 1000) & poll_read);
  EXPECT_TRUE(this->events_for(p.ours.get()) & poll_read);  // level-triggered: still there
  char c;
  ASSERT_EQ(::read(p.ours.get(), &c, 1), 1);
  EXPECT_EQ(this->events_for(p.ours.get()), 0u);
}

TYPED_TEST(PollerTest, ModifyChangesTheInterestAndZeroSilencesIt) {
  socket_pair p;
  ASSERT_TRUE(this->poller_.add(p.ours.get(), poll_read));
  ASSERT_TRUE(this->poller_.modify(p.ours.get(), poll_write));
  EXPECT_EQ(this->events_for(p.ours.get(), 1000) & (poll_read | poll_write), poll_write);
  ASSERT_EQ(::write(p.peer.get(), "x", 1), 1);
  ASSERT_TRUE(this->poller_.modify(p.ours.get(), 0));
  EXPECT_EQ(this->events_for(p.ours.get()), 0u);
  ASSERT_TRUE(this->poller_.modify(p.ours.get(), poll_read | poll_write));
  EXPECT_EQ(this->events_for(p.ours.get()) & (poll_read | poll_write), poll_read | poll_write);
}

TYPED_TEST(PollerTest, RemovedDescriptorIsNeverReported) {
  socket_pair p, q;
  ASSERT_TRUE(this->poller_.add(p.ours.get(), poll_read));
  ASSERT_TRUE(this->poller_.add(q.ours.get(), poll_read));
  this->poller_.remove(p.ours.get());
  ASSERT_EQ(::write(p.peer.get(), "x", 1), 1);
  ASSERT_EQ(::write(q.peer.get(), "y", 1), 1);
  std::vector<ready_event> out(16);
  int n = this->poller_.wait(out, 1000);
  ASSERT_EQ(n, 1);
  EXPECT_EQ(out[0].fd, q.ours.get());
}

TYPED_TEST(PollerTest, PeerClosingMakesTheSocketReadable) {
  socket_pair p;
  ASSERT_TRUE(this->poller_.add(p.ours.get(), poll_read));
  p.peer.reset();
  EXPECT_TRUE(this->events_for(p.ours.get(), 1000) & (poll_read | poll_hangup));
}

TYPED_TEST(PollerTest, WaitReturnsNothingAfterItsTimeout) {
  socket_pair p;
  ASSERT_TRUE(this->poller_.add(p.ours.get(), poll_read));
  auto start = std::chrono::steady_clock::now();
  std::vector<ready_event> out(4);
  EXPECT_EQ(this->poller_.wait(out, 50), 0);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(45));
}

TEST(PollPoller, MoreReadyDescriptorsThanRoomAreReportedInTurn) {
  poll_poller poller;
  std::vector<socket_pair> pairs(6);
  for (auto& p : pairs) {
    ASSERT_TRUE(poller.add(p.ours.get(), poll_read));
    ASSERT_EQ(::write(p.peer.get(), "x", 1), 1);
  }
  std::set<int> seen;
  std::vector<ready_event> out(2);
  for (int round = 0; round < 3; ++round) {
    ASSERT_EQ(poller.wait(out, 0), 2);
    seen.insert(out[0].fd);
    seen.insert(out[1].fd);
  }
  EXPECT_EQ(seen.size(), pairs.size()) << "a ready descriptor starved";
}

TEST(PollPoller, AddingTwiceIsRefused) {
  poll_poller poller;
  socket_pair p;
  ASSERT_TRUE(poller.add(p.ours.get(), poll_read));
  EXPECT_FALSE(poller.add(p.ours.get(), poll_read));
  poller.remove(p.ours.get());
  EXPECT_FALSE(poller.modify(p.ours.get(), poll_read));
}

TEST(SelectPoller, RefusesDescriptorsAtOrAboveFdSetsize) {
  select_poller poller;
  EXPECT_EQ(select_poller::max_fd(), FD_SETSIZE - 1);
  EXPECT_FALSE(poller.add(FD_SETSIZE, poll_read));
  EXPECT_FALSE(poller.modify(FD_SETSIZE + 10, poll_read));
  EXPECT_EQ(epoll_poller::max_fd(), -1);
  EXPECT_EQ(poll_poller::max_fd(), -1);
}

TEST(EpollPoller, ExclusiveRegistrationCanBeRemovedButNotModified) {
  epoll_poller poller;
  socket_pair p;
  ASSERT_TRUE(poller.add(p.ours.get(), poll_read | poll_exclusive));
  EXPECT_FALSE(poller.modify(p.ours.get(), 0));  // EPOLLEXCLUSIVE: EINVAL
  ASSERT_EQ(::write(p.peer.get(), "x", 1), 1);
  std::vector<ready_event> out(4);
  ASSERT_EQ(poller.wait(out, 1000), 1);
  EXPECT_TRUE(out[0].events & poll_read);
  poller.remove(p.ours.get());
  EXPECT_EQ(poller.wait(out, 0), 0);
  EXPECT_TRUE(poller.add(p.ours.get(), poll_read | poll_exclusive));  // back after removal
}

}  // namespace
}  // namespace httpbench::core
