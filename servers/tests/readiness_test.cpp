// serve_ready and deadline_passed (readiness.hpp): what a library-driven event loop (libev,
// libuv) is told to do after one readiness event, and which wait its deadline is in then, and
// how a connection whose deadline passed is counted; over real sockets: a socketpair for the
// HTTP cases, a loopback TCP connection for a reset.
#include "core/readiness.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <optional>
#include <vector>
#include <string>

#include "core/content.hpp"
#include "core/deadlines.hpp"
#include "core/stats.hpp"
#include "drive_connection.hpp"
#include "test_server.hpp"

namespace httpbench::core {
namespace {

class Readiness : public ::testing::Test {
 protected:
  void SetUp() override {
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    ours_.reset(fds[0]);
    peer_.reset(fds[1]);
  }
  void peer_sends(std::string_view bytes) {
    ASSERT_EQ(::write(peer_.get(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }
  std::string peer_reads() {
    std::string out;
    char buf[65536];
    for (ssize_t n; (n = ::recv(peer_.get(), buf, sizeof buf, MSG_DONTWAIT)) > 0;)
      out.append(buf, static_cast<size_t>(n));
    return out;
  }

  ready_next serve(connection& c, bool readable, bool stopping = false) {
    return serve_ready(ours_.get(), c, readable, stopping, lists_, node_);
  }
  ready_next serve(bool readable, bool stopping = false) { return serve(c_, readable, stopping); }
  wait_kind waiting() const { return deadline_lists::kind_of(node_); }

  content_store content_ = content_store::builtin();
  server_stats stats_;
  connection_limits limits_ = [] {
    connection_limits l;
    l.idle_timeout_ms = 30'000;
    l.header_timeout_ms = 10'000;
    l.send_timeout_ms = 20'000;
    return l;
  }();
  connection c_{content_, stats_, limits_};
  deadline_lists lists_{wait_timeouts(limits_)};
  idle_node node_;
  unique_fd ours_, peer_;
};

TEST_F(Readiness, AKeepAliveRequestIsAnsweredAtOnceAndTheConnectionIsWatchedForReading) {
  peer_sends("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(serve(true), ready_next::watch);
  EXPECT_TRUE(peer_reads().starts_with("HTTP/1.1 200 OK\r\n"));
  EXPECT_TRUE(c_.wants_read());
  EXPECT_FALSE(c_.wants_write());
  EXPECT_EQ(stats_.requests, 1u);
  EXPECT_EQ(waiting(), wait_kind::request);  // for the next request: --idle-timeout
  EXPECT_EQ(lists_.front(), &node_);
}

TEST_F(Readiness, NothingIsReadWithoutReadability) {
  peer_sends("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(serve(false), ready_next::watch);
  EXPECT_EQ(stats_.requests, 0u);
  EXPECT_EQ(peer_reads(), "");
}

TEST_F(Readiness, ConnectionCloseEndsTheConnectionOnceTheResponseIsOut) {
  peer_sends("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(serve(true), ready_next::close);
  EXPECT_TRUE(peer_reads().starts_with("HTTP/1.1 200 OK\r\n"));
}

TEST_F(Readiness, ARejectedRequestLingersUnderTheLingerDeadline) {
  peer_sends("NONSENSE\r\n\r\n");
  int64_t before = idle_list::now_ms();
  EXPECT_EQ(serve(true), ready_next::linger);
  EXPECT_TRUE(peer_reads().starts_with("HTTP/1.1 400"));
  char byte;
  EXPECT_EQ(::recv(peer_.get(), &byte, 1, MSG_DONTWAIT), 0);  // our side is shut for writing
  EXPECT_EQ(waiting(), wait_kind::linger);
  EXPECT_GE(node_.deadline_ms, before + linger_ms);
  EXPECT_LE(node_.deadline_ms, idle_list::now_ms() + linger_ms);
}

TEST_F(Readiness, ThePeersEofClosesAnIdleConnection) {
  peer_.reset();
  EXPECT_EQ(serve(true), ready_next::close);
}

TEST_F(Readiness, AtTheStopAnIdleConnectionClosesAndOneInsideARequestIsKept) {
  EXPECT_EQ(serve(false, true), ready_next::close);
  connection partial{content_, stats_, limits_};
  peer_sends("GET / HTTP/1.1\r\n");
  EXPECT_EQ(serve(partial, true, true), ready_next::watch);
  EXPECT_FALSE(partial.idle());
}

TEST_F(Readiness, AHeadKeepsTheDeadlineOfItsFirstByte) {
  peer_sends("GET / HTTP/1.1\r\n");
  EXPECT_EQ(serve(true), ready_next::watch);
  EXPECT_EQ(waiting(), wait_kind::head);
  int64_t deadline = node_.deadline_ms;
  EXPECT_LE(deadline, idle_list::now_ms() + limits_.header_timeout_ms);
  ::usleep(20'000);             // past the coarse clock's resolution
  peer_sends("X-Slow: 1\r\n");  // a slowloris's next line extends nothing
  EXPECT_EQ(serve(true), ready_next::watch);
  EXPECT_EQ(waiting(), wait_kind::head);
  EXPECT_EQ(node_.deadline_ms, deadline);
  peer_sends("Host: x\r\n\r\n");
  EXPECT_EQ(serve(true), ready_next::watch);
  EXPECT_EQ(waiting(), wait_kind::request);
  EXPECT_GT(node_.deadline_ms, deadline);
}

TEST_F(Readiness, AResponseTheSocketCannotTakeYetIsWatchedForWriting) {
  // Pipelined requests for more than the socket buffer: the rest waits for writability.
  int small = 4096;
  ASSERT_EQ(::setsockopt(ours_.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
  std::string burst;
  for (int i = 0; i < 40; ++i) burst += "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  peer_sends(burst);
  EXPECT_EQ(serve(true), ready_next::watch);
  EXPECT_TRUE(c_.wants_write());
  EXPECT_EQ(waiting(), wait_kind::send);  // --send-timeout, restarted by every byte sent
  int64_t deadline = node_.deadline_ms;
  ::usleep(20'000);
  EXPECT_EQ(serve(false), ready_next::watch);  // writable, but the peer took nothing
  EXPECT_EQ(node_.deadline_ms, deadline);
  peer_reads();
  EXPECT_EQ(serve(false), ready_next::watch);
  EXPECT_GT(node_.deadline_ms, deadline);
}

TEST_F(Readiness, AConnectionThatWouldNotTakeItsResponseIsResetAndTimedOut) {
  {
    connection c{content_, stats_, limits_};
    c.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n");  // a response queued, never sent
    deadline_passed(ours_.get(), c, wait_kind::send);
  }
  ::linger l{};
  socklen_t len = sizeof l;
  ASSERT_EQ(::getsockopt(ours_.get(), SOL_SOCKET, SO_LINGER, &l, &len), 0);
  EXPECT_EQ(l.l_onoff, 1);
  EXPECT_EQ(l.l_linger, 0);
  EXPECT_EQ(stats_.errors_timeout, 1u);
  EXPECT_EQ(stats_.errors, 1u);
}

TEST_F(Readiness, AnIdleConnectionOrALingeringCloseEndsAtItsDeadlineWithoutAnError) {
  {
    connection idle{content_, stats_, limits_};
    deadline_passed(ours_.get(), idle, wait_kind::request);
    connection lingering{content_, stats_, limits_};
    lingering.feed("NONSENSE\r\n\r\n");
    test_support::drain(lingering);
    deadline_passed(ours_.get(), lingering, wait_kind::linger);
  }
  EXPECT_EQ(stats_.errors, 1u);  // the 400 only
  EXPECT_EQ(stats_.errors_status, 1u);
  EXPECT_EQ(stats_.errors_timeout, 0u);
}

TEST_F(Readiness, AHeadThatRunsOutOfTimeIsATimeout) {
  {
    connection c{content_, stats_, limits_};
    peer_sends("GET / HTTP/1.1\r\n");
    EXPECT_EQ(serve(c, true), ready_next::watch);
    deadline_passed(ours_.get(), c, waiting());
  }
  EXPECT_EQ(stats_.errors_timeout, 1u);
  EXPECT_EQ(stats_.errors, 1u);
}

TEST(ReadinessTcp, AResetInsideARequestClosesTheConnectionAsLost) {
  test_support::test_server server;
  server_context ctx = server.context();
  unique_fd client = test_support::connect_client(local_port(ctx.listener.get()));
  ASSERT_TRUE(client.valid());
  unique_fd ours(::accept4(ctx.listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  ASSERT_TRUE(ours.valid());
  deadline_lists lists{wait_timeouts(connection_limits{})};
  idle_node node;
  std::optional<connection> c;
  c.emplace(server.content, server.stats);
  test_support::send_all(client.get(), "GET / HTTP/1.1\r\n");  // half a request
  ::usleep(20000);
  EXPECT_EQ(serve_ready(ours.get(), *c, true, false, lists, node), ready_next::watch);
  ::linger reset{1, 0};  // close with an RST
  ASSERT_EQ(::setsockopt(client.get(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset), 0);
  client.reset();
  ::usleep(20000);
  EXPECT_EQ(serve_ready(ours.get(), *c, true, false, lists, node), ready_next::close);
  lists.remove(node);
  c.reset();  // closed: broken() has said how it ended
  EXPECT_EQ(server.stats.errors_lost, 1u);
  EXPECT_EQ(server.stats.errors, 1u);
}


TEST(DeadlineTimer, IsRearmedOnlyForAnEarlierDeadlineAndExpiresWhatIsDue) {
  connection_limits l;
  l.idle_timeout_ms = 10'000;
  l.header_timeout_ms = 10'000;
  l.send_timeout_ms = 10'000;
  deadline_lists lists{wait_timeouts(l)};
  deadline_timer timer;
  int64_t now = idle_list::now_ms();
  idle_node due, later;
  lists.start_until(due, wait_kind::request, now - 5);
  lists.start_until(later, wait_kind::request, now + 60'000);
  EXPECT_TRUE(timer.must_cover(due));  // not armed yet
  EXPECT_EQ(timer.arm(due.deadline_ms), 1);  // a deadline already reached: at least 1 ms
  EXPECT_FALSE(timer.must_cover(later));
  std::vector<idle_node*> ended;
  auto next = timer.expire(lists, [&](idle_node& n) {
    ended.push_back(&n);
    lists.remove(n);
  });
  EXPECT_EQ(ended, std::vector<idle_node*>{&due});
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(*next, later.deadline_ms);
  EXPECT_TRUE(timer.must_cover(later));  // fired: nothing armed until the caller arms it again
  EXPECT_GE(timer.arm(*next), 59'000);
  lists.remove(later);
  EXPECT_FALSE(timer.expire(lists, [](idle_node&) {}).has_value());
}

}  // namespace
}  // namespace httpbench::core
