// serve_ready (readiness.hpp): what a library-driven event loop (libev, libuv) is told to do
// after one readiness event, over real sockets: a socketpair for the HTTP cases, a loopback TCP
// connection for a reset.
#include "core/readiness.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "core/content.hpp"
#include "core/stats.hpp"
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

  content_store content_ = content_store::builtin();
  server_stats stats_;
  connection c_{content_, stats_};
  unique_fd ours_, peer_;
};

TEST_F(Readiness, AKeepAliveRequestIsAnsweredAtOnceAndTheConnectionIsWatchedForReading) {
  peer_sends("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(serve_ready(ours_.get(), c_, true, false), ready_next::watch);
  EXPECT_TRUE(peer_reads().starts_with("HTTP/1.1 200 OK\r\n"));
  EXPECT_TRUE(c_.wants_read());
  EXPECT_FALSE(c_.wants_write());
  EXPECT_EQ(stats_.requests, 1u);
}

TEST_F(Readiness, NothingIsReadWithoutReadability) {
  peer_sends("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(serve_ready(ours_.get(), c_, false, false), ready_next::watch);
  EXPECT_EQ(stats_.requests, 0u);
  EXPECT_EQ(peer_reads(), "");
}

TEST_F(Readiness, ConnectionCloseEndsTheConnectionOnceTheResponseIsOut) {
  peer_sends("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(serve_ready(ours_.get(), c_, true, false), ready_next::close);
  EXPECT_TRUE(peer_reads().starts_with("HTTP/1.1 200 OK\r\n"));
}

TEST_F(Readiness, ARejectedRequestLingers) {
  peer_sends("NONSENSE\r\n\r\n");
  EXPECT_EQ(serve_ready(ours_.get(), c_, true, false), ready_next::linger);
  EXPECT_TRUE(peer_reads().starts_with("HTTP/1.1 400"));
}

TEST_F(Readiness, ThePeersEofClosesAnIdleConnection) {
  peer_.reset();
  EXPECT_EQ(serve_ready(ours_.get(), c_, true, false), ready_next::close);
}

TEST_F(Readiness, AtTheStopAnIdleConnectionClosesAndOneInsideARequestIsKept) {
  EXPECT_EQ(serve_ready(ours_.get(), c_, false, true), ready_next::close);
  connection partial{content_, stats_};
  peer_sends("GET / HTTP/1.1\r\n");
  EXPECT_EQ(serve_ready(ours_.get(), partial, true, true), ready_next::watch);
  EXPECT_FALSE(partial.idle());
}

TEST_F(Readiness, AResponseTheSocketCannotTakeYetIsWatchedForWriting) {
  // Pipelined requests for more than the socket buffer: the rest waits for writability.
  int small = 4096;
  ASSERT_EQ(::setsockopt(ours_.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
  std::string burst;
  for (int i = 0; i < 40; ++i) burst += "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  peer_sends(burst);
  EXPECT_EQ(serve_ready(ours_.get(), c_, true, false), ready_next::watch);
  EXPECT_TRUE(c_.wants_write());
}

TEST(ReadinessTcp, AResetIsALostConnection) {
  test_support::test_server server;
  server_context ctx = server.context();
  unique_fd client = test_support::connect_client(local_port(ctx.listener.get()));
  ASSERT_TRUE(client.valid());
  unique_fd ours(::accept4(ctx.listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  ASSERT_TRUE(ours.valid());
  ::linger reset{1, 0};  // close with an RST
  ASSERT_EQ(::setsockopt(client.get(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset), 0);
  client.reset();
  ::usleep(20000);
  connection c{server.content, server.stats};
  EXPECT_EQ(serve_ready(ours.get(), c, true, false), ready_next::close_lost);
}

}  // namespace
}  // namespace httpbench::core
