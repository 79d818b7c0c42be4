// The listening socket and the acceptor: accept4 with TCP_NODELAY, blocking or not, the stop fd,
// and the spare descriptor that turns EMFILE into a dropped connection instead of a busy loop.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <cstring>
#include <string>

#include "core/listener.hpp"
#include "core/stats.hpp"
#include "core/unique_fd.hpp"

namespace httpbench::core {
namespace {

unique_fd listen_on_loopback() {
  std::string error;
  unique_fd fd = open_listener({"127.0.0.1", 0, 16, false}, error);
  if (!fd) ADD_FAILURE() << error;
  return fd;
}

unique_fd connect_to(int listener) {
  unique_fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(local_port(listener));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    ADD_FAILURE() << "connect: " << std::strerror(errno);
  return client;
}

TEST(Listener, ReportsItsAddressAndRefusesBadOnesWithAReason) {
  unique_fd listener = listen_on_loopback();
  EXPECT_GT(local_port(listener.get()), 0);
  EXPECT_EQ(local_address(listener.get()), "127.0.0.1:" + std::to_string(local_port(listener.get())));
  std::string error;
  EXPECT_FALSE(open_listener({"not-an-address", 0, 16, false}, error));
  EXPECT_NE(error.find("not an IPv4 or IPv6 address"), std::string::npos) << error;
  EXPECT_FALSE(open_listener({"127.0.0.1", local_port(listener.get()), 16, false}, error));
  EXPECT_NE(error.find("cannot bind"), std::string::npos) << error;
}

TEST(Listener, WithDeferAcceptHandsOverOnlyConnectionsWhoseFirstBytesArrived) {
  std::string error;
  unique_fd listener = open_listener({"127.0.0.1", 0, 16, false, /*defer_accept_s=*/30}, error);
  ASSERT_TRUE(listener) << error;
  int deferred = 0;
  socklen_t len = sizeof deferred;
  ASSERT_EQ(::getsockopt(listener.get(), IPPROTO_TCP, TCP_DEFER_ACCEPT, &deferred, &len), 0);
  EXPECT_GT(deferred, 0);
  acceptor a(listener.get());
  unique_fd silent = connect_to(listener.get()), talking = connect_to(listener.get());
  ::usleep(50'000);  // the handshakes are done on the client's side by now
  unique_fd fd;
  EXPECT_EQ(a.accept_one(fd, true), accept_status::again) << "a silent connection was handed over";
  ASSERT_EQ(::write(talking.get(), "GET / HTTP/1.0\r\n\r\n", 18), 18);
  for (int i = 0; i < 100 && a.accept_one(fd, true) == accept_status::again; ++i) ::usleep(2'000);
  ASSERT_TRUE(fd) << "a connection with a request waiting was not handed over";
  char buf[32];
  EXPECT_EQ(::read(fd.get(), buf, sizeof buf), 18) << "its request was not already there";
  EXPECT_EQ(a.accept_one(fd, true), accept_status::again) << "the silent one was handed over";

  // Off (the default): a connection is handed over at the end of its handshake.
  unique_fd plain = listen_on_loopback();
  acceptor b(plain.get());
  ASSERT_EQ(::getsockopt(plain.get(), IPPROTO_TCP, TCP_DEFER_ACCEPT, &deferred, &len), 0);
  EXPECT_EQ(deferred, 0);
  unique_fd silent_too = connect_to(plain.get());
  fd.reset();
  for (int i = 0; i < 100 && b.accept_one(fd, true) == accept_status::again; ++i) ::usleep(2'000);
  EXPECT_TRUE(fd);
}

TEST(Acceptor, AcceptsWithNodelayInTheAskedModeAndSaysAgainWhenNoneWaits) {
  unique_fd listener = listen_on_loopback();
  acceptor a(listener.get());
  unique_fd fd;
  EXPECT_EQ(a.accept_one(fd, true), accept_status::again);
  unique_fd c1 = connect_to(listener.get()), c2 = connect_to(listener.get());
  ASSERT_EQ(a.accept_one(fd, true), accept_status::accepted);
  EXPECT_TRUE(::fcntl(fd.get(), F_GETFL) & O_NONBLOCK);
  int nodelay = 0;
  socklen_t len = sizeof nodelay;
  ::getsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &nodelay, &len);
  EXPECT_EQ(nodelay, 1);
  ASSERT_EQ(a.accept_one(fd, false), accept_status::accepted);
  EXPECT_FALSE(::fcntl(fd.get(), F_GETFL) & O_NONBLOCK);
}

TEST(Acceptor, AcceptBlockingReturnsStoppedOnceTheStopFdIsReadable) {
  unique_fd listener = listen_on_loopback();
  acceptor a(listener.get());
  unique_fd stop = make_eventfd();
  signal_eventfd(stop.get());
  unique_fd fd;
  EXPECT_EQ(a.accept_blocking(fd, false, stop.get()), accept_status::stopped);
  unique_fd client = connect_to(listener.get());
  EXPECT_EQ(a.accept_blocking(fd, false, stop.get()), accept_status::accepted);  // accepts first
}

TEST(Acceptor, OutOfDescriptorsTheWaitingConnectionIsDroppedNotLeftToSpin) {
  unique_fd listener = listen_on_loopback();
  server_stats stats;
  acceptor a(listener.get(), &stats);
  unique_fd client = connect_to(listener.get());
  // No descriptor number is free below the limit: accept4 fails with EMFILE.
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  int lowest_free = ::dup(0);
  ASSERT_GE(lowest_free, 0);
  ::close(lowest_free);
  rlimit tight = saved;
  tight.rlim_cur = static_cast<rlim_t>(lowest_free);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &tight), 0);
  unique_fd fd;
  accept_status s = a.accept_one(fd, true);
  ::setrlimit(RLIMIT_NOFILE, &saved);
  EXPECT_EQ(s, accept_status::again);
  EXPECT_EQ(a.dropped_for_fd_limit(), 1u);
  // Counted once: a connection, closed, refused (docs/interfaces.md, "The counters").
  EXPECT_EQ(stats.connections.load(), 1u);
  EXPECT_EQ(stats.closed.load(), 1u);
  EXPECT_EQ(stats.errors_refused.load(), 1u);
  EXPECT_EQ(stats.errors.load(), 1u);
  // The client sees its connection closed, and the queue is empty: nothing left to wake us.
  char c;
  timeval tv{2, 0};
  ::setsockopt(client.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  EXPECT_LE(::recv(client.get(), &c, 1, 0), 0);
  EXPECT_EQ(a.accept_one(fd, true), accept_status::again);
  // With descriptors back, accepting works again (the spare was taken back).
  unique_fd next = connect_to(listener.get());
  EXPECT_EQ(a.accept_one(fd, true), accept_status::accepted);
}

TEST(UniqueFd, ClosesOnDestructionAndMovesOwnership) {
  int raw;
  {
    unique_fd a(::dup(0));
    raw = a.get();
    ASSERT_GE(raw, 0);
    unique_fd b(std::move(a));
    EXPECT_FALSE(a.valid());
    EXPECT_EQ(b.get(), raw);
    unique_fd c;
    c = std::move(b);
    EXPECT_EQ(c.get(), raw);
  }
  EXPECT_EQ(::fcntl(raw, F_GETFD), -1);  // closed exactly once, by the last owner
  unique_fd d(::dup(0));
  int kept = d.release();
  EXPECT_FALSE(d.valid());
  EXPECT_NE(::fcntl(kept, F_GETFD), -1);  // released, not closed
  ::close(kept);
}

TEST(Eventfd, SignalMakesItReadableAndClearMakesItQuietAgain) {
  unique_fd e = make_eventfd();
  ASSERT_TRUE(e.valid());
  uint64_t value;
  EXPECT_EQ(::read(e.get(), &value, sizeof value), -1);  // non-blocking, nothing yet
  signal_eventfd(e.get());
  signal_eventfd(e.get());
  clear_eventfd(e.get());
  EXPECT_EQ(::read(e.get(), &value, sizeof value), -1);
}

}  // namespace
}  // namespace httpbench::core
