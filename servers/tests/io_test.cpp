// The io.hpp templates, driven through a scripted system-call policy: what read_into, write_from,
// read_idle, linger and serve_blocking do with each answer a system call can give (partial,
// EINTR, EAGAIN, EOF, errors), and the idle-at-stop rule. The socket is a real socketpair, so
// what the policy does not script happens for real.
#include "core/io.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/content.hpp"
#include "core/stats.hpp"
#include "test_server.hpp"

namespace httpbench::core {
namespace {

/// One scripted answer: `result` >= 0 is a count of bytes (for read, the bytes are taken from
/// `data`); < 0 fails with `error`.
struct answer {
  ssize_t result;
  int error = 0;
  std::string data = {};
  int delay_ms = 0;  ///< the call takes this long first (a client that trickles)
};

/// The policy: each call takes the next scripted answer for its kind, or, with none left, does
/// the real system call. Every call is logged.
struct scripted_io {
  static inline std::deque<answer> reads, writes, waits;
  static inline std::vector<std::string> log;
  /// set_timeout() calls, as "request 30000", "head 1234", "send 30000".
  static inline std::vector<std::string> timeouts;
  static inline bool stopping_now = false;

  static void reset() {
    reads.clear();
    writes.clear();
    waits.clear();
    log.clear();
    timeouts.clear();
    stopping_now = false;
  }
  static bool take(std::deque<answer>& script, answer& a) {
    if (script.empty()) return false;
    a = script.front();
    script.pop_front();
    return true;
  }
  static ssize_t result(const answer& a) {
    if (a.result < 0) errno = a.error;
    return a.result;
  }
  static ssize_t read(int fd, void* buf, size_t n) {
    log.push_back("read");
    answer a;
    if (!take(reads, a)) return ::read(fd, buf, n);
    if (a.delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(a.delay_ms));
    std::memcpy(buf, a.data.data(), std::min(n, a.data.size()));
    return a.result >= 0 ? static_cast<ssize_t>(std::min(n, a.data.size())) : result(a);
  }
  static ssize_t writev(int fd, const iovec* iov, int n) {
    log.push_back("writev");
    answer a;
    if (!take(writes, a)) return ::writev(fd, iov, n);
    if (a.result < 0) return result(a);
    // A short write: send exactly `result` bytes of the iovecs for real.
    std::string bytes;
    for (int i = 0; i < n && bytes.size() < static_cast<size_t>(a.result); ++i)
      bytes.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
    bytes.resize(static_cast<size_t>(a.result));
    return ::write(fd, bytes.data(), bytes.size());
  }
  static ssize_t sendfile(int out, int in, off_t* offset, size_t n) {
    log.push_back("sendfile");
    return ::sendfile(out, in, offset, n);
  }
  static void set_timeout(int, wait_kind kind, int ms) {
    static const char* names[] = {"request", "head", "send", "linger"};
    timeouts.push_back(std::string(names[static_cast<int>(kind)]) + " " + std::to_string(ms));
  }
  static bool wait_readable(int fd, int timeout_ms) {
    log.push_back("wait_readable");
    answer a;
    if (take(waits, a)) return a.result > 0;
    return posix_io::wait_readable(fd, timeout_ms);
  }
  static bool stopping() { return stopping_now; }
};

constexpr std::string_view get_index = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

class Io : public ::testing::Test {
 protected:
  void SetUp() override {
    scripted_io::reset();
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    ours_.reset(fds[0]);
    peer_.reset(fds[1]);
    timeval tv{2, 0};  // nothing here may hang the suite
    ::setsockopt(ours_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(peer_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  // Everything the peer can read now (it waits up to 2 s for the first byte, then not at all).
  std::string peer_reads() {
    std::string out;
    char buf[65536];
    for (ssize_t n; (n = ::recv(peer_.get(), buf, sizeof buf, out.empty() ? 0 : MSG_DONTWAIT)) > 0;)
      out.append(buf, static_cast<size_t>(n));
    return out;
  }
  void peer_sends(std::string_view bytes) {
    ASSERT_EQ(::write(peer_.get(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }

  content_store content_ = content_store::builtin();
  server_stats stats_;
  connection c_{content_, stats_};
  unique_fd ours_, peer_;
};

TEST_F(Io, ReadIntoRetriesEintrAndMapsEagainEofAndErrors) {
  scripted_io::reads = {{-1, EINTR}, {5, 0, "GET /"}};
  EXPECT_EQ(read_into<scripted_io>(ours_.get(), c_), io_status::ok);
  EXPECT_EQ(scripted_io::log.size(), 2u);
  EXPECT_EQ(stats_.bytes_received, 5u);
  scripted_io::reads = {{-1, EAGAIN}};
  EXPECT_EQ(read_into<scripted_io>(ours_.get(), c_), io_status::again);
  scripted_io::reads = {{-1, ECONNRESET}};
  EXPECT_EQ(read_into<scripted_io>(ours_.get(), c_), io_status::error);
  scripted_io::reads = {{0}};
  EXPECT_EQ(read_into<scripted_io>(ours_.get(), c_), io_status::closed);
  EXPECT_TRUE(c_.wants_close());  // EOF in the middle of a request: nothing to answer
}

TEST_F(Io, WriteFromResumesAfterShortWritesAndEintrAndStopsAtEagain) {
  c_.feed(get_index);
  ASSERT_TRUE(c_.wants_write());
  scripted_io::writes = {{10}, {-1, EINTR}, {-1, EAGAIN}};
  EXPECT_EQ(write_from<scripted_io>(ours_.get(), c_), io_status::again);
  EXPECT_EQ(stats_.bytes_sent, 10u);
  EXPECT_EQ(write_from<scripted_io>(ours_.get(), c_), io_status::ok);  // the rest, for real
  std::string got = peer_reads();
  EXPECT_TRUE(got.starts_with("HTTP/1.1 200 OK\r\n")) << got;
  EXPECT_EQ(got.size(), stats_.bytes_sent);
  scripted_io::writes = {{-1, EPIPE}};
  c_.feed(get_index);
  EXPECT_EQ(write_from<scripted_io>(ours_.get(), c_), io_status::error);
}

TEST(WriteFromGate, AFileRangeTheGateHoldsBackIsDeferredAndOnlyWhatItAllowsIsSent) {
  char tmpl[] = "/tmp/httpbench-io-XXXXXX";
  std::filesystem::path dir = mkdtemp(tmpl);
  std::ofstream(dir / "big.bin") << std::string(100000, 'b');  // above the 64 KiB threshold
  {
    content_store content = content_store::from_directory(dir.string(), 65536);
    server_stats stats;
    connection c(content, stats);
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    unique_fd ours(fds[0]), peer(fds[1]);
    c.feed("GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    std::vector<size_t> asked;  // the length of each range the gate was shown
    size_t allow = 1000;
    auto gate = [&](const file_range& range) {
      asked.push_back(range.length);
      return std::exchange(allow, 0);
    };
    EXPECT_EQ(write_from(ours.get(), c, gate), io_status::deferred);
    EXPECT_EQ(asked, (std::vector<size_t>{100000, 99000}));  // the head never asks
    uint64_t head = stats.bytes_sent - 1000;
    EXPECT_GT(head, 0u);
    EXPECT_TRUE(c.wants_write());
    EXPECT_EQ(write_from(ours.get(), c), io_status::ok);  // the default gate: all of it
    std::string got;
    char buf[65536];
    for (ssize_t n; got.size() < head + 100000 && (n = ::recv(peer.get(), buf, sizeof buf, 0)) > 0;)
      got.append(buf, static_cast<size_t>(n));
    EXPECT_EQ(got.size(), head + 100000);
    EXPECT_EQ(got.substr(head), std::string(100000, 'b'));
  }
  std::filesystem::remove_all(dir);
}

TEST_F(Io, ServeBlockingAnswersUntilThePeerClosesCleanly) {
  peer_sends(std::string(get_index) + std::string(get_index));
  ::shutdown(peer_.get(), SHUT_WR);
  EXPECT_EQ(serve_blocking<scripted_io>(ours_.get(), c_), served::clean);
  EXPECT_EQ(stats_.requests, 2u);
  EXPECT_EQ(stats_.errors, 0u);
  std::string got = peer_reads();
  EXPECT_EQ(got.find("HTTP/1.1 200 OK"), 0u);
  EXPECT_NE(got.find("HTTP/1.1 200 OK", 10), std::string::npos);
}

TEST_F(Io, EofInTheMiddleOfARequestIsALostConnectionAndAnError) {
  peer_sends("GET / HTTP/1.1\r\nHo");
  ::shutdown(peer_.get(), SHUT_WR);
  EXPECT_EQ(serve_blocking<scripted_io>(ours_.get(), c_), served::lost);
  EXPECT_EQ(stats_.errors, 1u);
}

TEST_F(Io, IdleConnectionTimingOutIsNoError) {
  scripted_io::reads = {{-1, EAGAIN}};  // SO_RCVTIMEO expired while idle
  EXPECT_EQ(serve_blocking<scripted_io>(ours_.get(), c_), served::timed_out);
  EXPECT_EQ(stats_.errors, 0u);
}

TEST_F(Io, RejectedRequestIsAnsweredThenLingersUntilThePeerCloses) {
  peer_sends("BLAH\r\n\r\nmore bytes the client was still sending");
  auto start = std::chrono::steady_clock::now();
  ::shutdown(peer_.get(), SHUT_WR);  // the peer finishes: the linger ends at once
  EXPECT_EQ(serve_blocking<scripted_io>(ours_.get(), c_), served::rejected);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(linger_ms));
  EXPECT_TRUE(peer_reads().starts_with("HTTP/1.1 400"));
  char c;
  EXPECT_EQ(::recv(peer_.get(), &c, 1, 0), 0);  // our side was shut down for writing
}

TEST_F(Io, LingerGivesUpAfterLingerMsWhenThePeerNeverCloses) {
  peer_sends("leftover");
  auto start = std::chrono::steady_clock::now();
  linger<scripted_io>(ours_.get());
  auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, std::chrono::milliseconds(linger_ms - 20));
  EXPECT_LT(waited, std::chrono::milliseconds(linger_ms + 500));
  EXPECT_NE(std::find(scripted_io::log.begin(), scripted_io::log.end(), "wait_readable"),
            scripted_io::log.end());
}

TEST_F(Io, LingerEndsWhenThePolicysWaitSaysTimeOut) {
  scripted_io::waits = {{0}};
  auto start = std::chrono::steady_clock::now();
  linger<scripted_io>(ours_.get());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(100));
  EXPECT_EQ(scripted_io::log, std::vector<std::string>{"wait_readable"});
}

TEST_F(Io, AtTheStopAnIdleConnectionAnswersWhatWasSentThenEndsWithoutWaiting) {
  peer_sends(get_index);
  scripted_io::stopping_now = true;
  EXPECT_EQ(serve_blocking<scripted_io>(ours_.get(), c_), served::clean);
  EXPECT_EQ(stats_.requests, 1u);
  EXPECT_TRUE(peer_reads().starts_with("HTTP/1.1 200 OK"));
  // The policy's read, which would have waited for a next request, was never called.
  EXPECT_EQ(std::find(scripted_io::log.begin(), scripted_io::log.end(), "read"),
            scripted_io::log.end());
}

TEST_F(Io, AWaitInterruptedByTheStopEndsTheIdleConnection) {
  // The backend wakes a connection waiting for its next request: the read says EINTR.
  scripted_io::reads = {{-1, EINTR}};
  struct stop_on_eintr : scripted_io {
    static ssize_t read(int fd, void* buf, size_t n) {
      ssize_t r = scripted_io::read(fd, buf, n);
      scripted_io::stopping_now = true;
      return r;
    }
  };
  EXPECT_EQ(serve_blocking<stop_on_eintr>(ours_.get(), c_), served::clean);
  EXPECT_EQ(scripted_io::log, std::vector<std::string>{"read"});
  EXPECT_EQ(stats_.errors, 0u);
}

TEST_F(Io, PipelinedRequestsBeyondOneOutputQueueInOneIdleReadAreAllAnswered) {
  // 23 requests in one 506-byte read (bare LF and an empty Host keep them at 22 bytes). A
  // request is parsed only when the output queue has room for the longest /hello page, so with
  // long names allowed the queue is full after fewer than 23 responses; the rest wait in the
  // connection and are answered as the output drains.
  std::string burst;
  for (int i = 0; i < 23; ++i) burst += "GET / HTTP/1.1\nHost:\n\n";
  ASSERT_LE(burst.size(), 512u);  // read_idle's first read takes it whole
  connection_limits long_names;
  long_names.max_name = 2000;
  connection c(content_, stats_, long_names);
  scripted_io::reads = {{static_cast<ssize_t>(burst.size()), 0, burst}};
  EXPECT_EQ(read_idle<scripted_io>(ours_.get(), c), io_status::ok);
  EXPECT_LT(stats_.requests, 23u);
  EXPECT_FALSE(c.wants_read());
  EXPECT_EQ(write_from<scripted_io>(ours_.get(), c), io_status::ok);
  EXPECT_EQ(stats_.requests, 23u);
  std::string got = peer_reads();
  size_t responses = 0;
  for (size_t at = got.find("HTTP/1.1 200"); at != std::string::npos;
       at = got.find("HTTP/1.1 200", at + 1))
    ++responses;
  EXPECT_EQ(responses, 23u);
}

TEST_F(Io, BytesPipelinedAfterAConnectionCloseRequestAreNotAnswered) {
  std::string in = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" + std::string(get_index);
  scripted_io::reads = {{static_cast<ssize_t>(in.size()), 0, in}};
  EXPECT_EQ(serve_blocking<scripted_io>(ours_.get(), c_), served::clean);
  EXPECT_EQ(stats_.requests, 1u);
}

// ---- deadlines (deadlines.hpp): what serve_blocking tells the policy, and what ends a wait ----

connection_limits deadlines(int idle_ms, int header_ms, int send_ms) {
  connection_limits l;
  l.idle_timeout_ms = idle_ms;
  l.header_timeout_ms = header_ms;
  l.send_timeout_ms = send_ms;
  return l;
}

TEST_F(Io, TimeoutsAreSetAtTheStartAndAHeadWaitsOnlyWhatIsLeftOfItsDeadline) {
  connection c(content_, stats_, deadlines(30'000, 1'000, 7'000));
  scripted_io::reads = {{18, 0, "GET / HTTP/1.1\r\nHo"}, {11, 0, "st: x\r\n\r\n", 50}, {0}};
  EXPECT_EQ(serve_blocking<scripted_io>(ours_.get(), c), served::clean);
  EXPECT_EQ(stats_.requests, 1u);
  ASSERT_EQ(scripted_io::timeouts.size(), 4u);
  EXPECT_EQ(scripted_io::timeouts[0], "send 7000");
  EXPECT_EQ(scripted_io::timeouts[1], "request 30000");
  EXPECT_TRUE(scripted_io::timeouts[2].starts_with("head ")) << scripted_io::timeouts[2];
  int left = std::stoi(scripted_io::timeouts[2].substr(5));
  EXPECT_GT(left, 900);
  EXPECT_LE(left, 1000);
  EXPECT_EQ(scripted_io::timeouts[3], "request 30000");  // the head is done: the idle wait again
}

TEST_F(Io, AHeadThatKeepsTricklingIsEndedAtItsDeadlineAsATimeout) {
  connection c(content_, stats_, deadlines(30'000, 200, 7'000));
  scripted_io::reads = {{16, 0, "GET / HTTP/1.1\r\n"}};
  for (int i = 0; i < 20; ++i) scripted_io::reads.push_back({6, 0, "X: y\r\n", 50});
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(serve_blocking<scripted_io>(ours_.get(), c), served::timed_out);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, std::chrono::milliseconds(150));
  EXPECT_LT(took, std::chrono::milliseconds(450));  // every byte restarting a timer: 1 s
  EXPECT_GT(scripted_io::reads.size(), 10u);  // it stopped reading the trickle
  EXPECT_EQ(stats_.errors_timeout, 1u);
  EXPECT_EQ(stats_.requests, 0u);
}

TEST_F(Io, AHeadWhoseReadTimesOutIsATimeoutError) {
  connection c(content_, stats_, deadlines(30'000, 1'000, 7'000));
  scripted_io::reads = {{18, 0, "GET / HTTP/1.1\r\nHo"}, {-1, EAGAIN}};
  EXPECT_EQ(serve_blocking<scripted_io>(ours_.get(), c), served::timed_out);
  EXPECT_EQ(stats_.errors_timeout, 1u);
  EXPECT_EQ(stats_.errors, 1u);
}

TEST_F(Io, EofInsideARequestAtTheStopIsTheStopsOwnCut) {
  peer_sends("GET / HTTP/1.1\r\nHo");
  scripted_io::stopping_now = true;  // read_idle shuts reading down: the next read sees EOF
  EXPECT_EQ(serve_blocking<scripted_io>(ours_.get(), c_), served::lost);
  EXPECT_EQ(stats_.errors_cut, 1u);
  EXPECT_EQ(stats_.errors_lost, 0u);
}

TEST_F(Io, AWriteThatTimesOutIsATimeoutAndTheConnectionIsReset) {
  peer_sends(get_index);
  scripted_io::writes = {{-1, EAGAIN}};  // --send-timeout passed without progress
  EXPECT_EQ(serve_blocking<scripted_io>(ours_.get(), c_), served::timed_out);
  EXPECT_EQ(stats_.errors_timeout, 1u);
  struct ::linger l {};
  socklen_t len = sizeof l;
  ASSERT_EQ(::getsockopt(ours_.get(), SOL_SOCKET, SO_LINGER, &l, &len), 0);
  EXPECT_EQ(l.l_onoff, 1);  // the close drops the unsent bytes with a reset
  EXPECT_EQ(l.l_linger, 0);
}

/// A socket's SO_RCVTIMEO or SO_SNDTIMEO in ms.
long timeout_ms(int fd, int option) {
  timeval tv{};
  socklen_t len = sizeof tv;
  ::getsockopt(fd, SOL_SOCKET, option, &tv, &len);
  return tv.tv_sec * 1000 + tv.tv_usec / 1000;  // in jiffies: rounded up by a few ms
}

TEST(BlockingIo, AWriteGivesUpOnlyAfterAWholeSendTimeoutWithoutProgressInSlices) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  unique_fd ours(fds[0]), peer(fds[1]);  // the peer never reads
  blocking_io::set_timeout(ours.get(), wait_kind::send, 300);
  long slice_ms = timeout_ms(ours.get(), SO_SNDTIMEO);
  EXPECT_GE(slice_ms, 30);  // a tenth: the kernel's timer
  EXPECT_LE(slice_ms, 40);
  std::string big(4 << 20, 'x');
  iovec iov{big.data(), big.size()};
  auto last_progress = std::chrono::steady_clock::now();
  ssize_t n;
  while ((n = blocking_io::writev(ours.get(), &iov, 1)) > 0) {
    last_progress = std::chrono::steady_clock::now();
    iov.iov_base = static_cast<char*>(iov.iov_base) + n;
    iov.iov_len -= static_cast<size_t>(n);
  }
  auto stalled = std::chrono::steady_clock::now() - last_progress;
  EXPECT_EQ(n, -1);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_GE(stalled, std::chrono::milliseconds(270));
  EXPECT_LT(stalled, std::chrono::milliseconds(600));
}

TEST(BlockingIo, ASendfileCallSendsAtMostOneChunk) {
  char path[] = "/tmp/httpbench-sendfile-XXXXXX";
  unique_fd file(::mkstemp(path));
  ::unlink(path);
  std::string data(3 << 20, 'y');
  ASSERT_EQ(::write(file.get(), data.data(), data.size()), static_cast<ssize_t>(data.size()));
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  unique_fd ours(fds[0]), peer(fds[1]);
  std::thread reader([&] {
    char buf[65536];
    while (::read(peer.get(), buf, sizeof buf) > 0) {
    }
  });
  blocking_io::set_timeout(ours.get(), wait_kind::send, 5000);
  off_t offset = 0;
  ssize_t n = blocking_io::sendfile(ours.get(), file.get(), &offset, data.size());
  EXPECT_GT(n, 0);
  EXPECT_LE(static_cast<size_t>(n), blocking_io::max_chunk);
  ours.reset();
  reader.join();
}

TEST(PresetSocketTimeouts, EverySocketAcceptedFromTheListenerInheritsServeSocketsTimeouts) {
  test_support::test_server server;
  server.config.idle_timeout_s = 7;
  server.config.send_timeout_ms = 2000;
  server_context ctx = server.context();
  ASSERT_TRUE(preset_socket_timeouts(ctx));
  for (int i = 0; i < 2; ++i) {
    unique_fd client = test_support::connect_client(local_port(ctx.listener.get()));
    unique_fd accepted(::accept4(ctx.listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    ASSERT_TRUE(accepted);
    EXPECT_NEAR(timeout_ms(accepted.get(), SO_RCVTIMEO), 7000, 8);  // --idle-timeout
    EXPECT_NEAR(timeout_ms(accepted.get(), SO_SNDTIMEO), 200, 8);   // a tenth of --send-timeout
  }
}

TEST(BlockingIo, OnServeSocketsSocketATimeoutItAlreadyHasIsNotSetAgainAndAnyOtherIs) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  unique_fd ours(fds[0]), peer(fds[1]);
  timeval one_second{1, 0};  // not what the bookkeeping below says the socket has
  ::setsockopt(ours.get(), SOL_SOCKET, SO_RCVTIMEO, &one_second, sizeof one_second);
  blocking_io::socket_fd = ours.get();  // as serve_socket() says of its connection
  blocking_io::socket_receive_ms = 5000;
  blocking_io::socket_send_ms = -1;
  blocking_io::set_timeout(ours.get(), wait_kind::request, 5000);
  EXPECT_NEAR(timeout_ms(ours.get(), SO_RCVTIMEO), 1000, 8) << "a timeout it has: no setsockopt";
  blocking_io::set_timeout(ours.get(), wait_kind::head, 3000);
  EXPECT_NEAR(timeout_ms(ours.get(), SO_RCVTIMEO), 3000, 8);
  blocking_io::set_timeout(ours.get(), wait_kind::request, 5000);
  EXPECT_NEAR(timeout_ms(ours.get(), SO_RCVTIMEO), 5000, 8);
  blocking_io::set_timeout(ours.get(), wait_kind::send, 30'000);  // not known: set
  EXPECT_NEAR(timeout_ms(ours.get(), SO_SNDTIMEO), 250, 8);
  EXPECT_EQ(blocking_io::socket_send_ms, 250);

  blocking_io::socket_fd = -1;  // any other socket is always set
  ::setsockopt(ours.get(), SOL_SOCKET, SO_RCVTIMEO, &one_second, sizeof one_second);
  blocking_io::set_timeout(ours.get(), wait_kind::request, 5000);
  EXPECT_NEAR(timeout_ms(ours.get(), SO_RCVTIMEO), 5000, 8);
  blocking_io::socket_receive_ms = blocking_io::socket_send_ms = -1;
}

}  // namespace
}  // namespace httpbench::core
