// The event loop (SPED, shared by sped and symped) over a fake poller that records what the loop
// asks of it and hands the waiting to poll(): the connection cap pauses and resumes the listener
// (an EPOLLEXCLUSIVE one by removing it), descriptors past the poller's limit are refused, idle
// connections time out, a rejected request lingers, the deadlines of a request head, of a send
// and of a lingering close (each on time even behind idle connections), how connections that end
// inside a request are counted, the stop policy, and a file gate (AMPED) that holds a file range
// back while the loop serves other connections.
#include <gtest/gtest.h>

#include <netinet/tcp.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/event_loop_impl.hpp"
#include "core/poller.hpp"
#include "test_server.hpp"

namespace httpbench::core {

/// Records add/modify/remove of the listening socket, and refuses to modify an exclusive
/// registration as epoll does. max_fd() is what a test sets.
struct recording_poller {
  static constexpr const char* name = "recording";
  static inline int listener = -1;
  static inline int limit = -1;
  static inline std::mutex mutex;
  static inline std::vector<std::string> calls;  ///< about the listener only

  static void note(const std::string& call, int fd) {
    if (fd != listener) return;
    std::lock_guard lock(mutex);
    calls.push_back(call);
  }
  static std::vector<std::string> listener_calls() {
    std::lock_guard lock(mutex);
    return calls;
  }
  bool add(int fd, uint32_t events) {
    note(events & poll_exclusive ? "add exclusive" : events ? "add read" : "add none", fd);
    if (events & poll_exclusive) exclusive.push_back(fd);
    return inner.add(fd, events & ~poll_exclusive);
  }
  bool modify(int fd, uint32_t events) {
    for (int e : exclusive)
      if (e == fd) return false;  // EPOLLEXCLUSIVE: EINVAL
    note(events ? "modify read" : "modify none", fd);
    return inner.modify(fd, events);
  }
  void remove(int fd) {
    note("remove", fd);
    std::erase(exclusive, fd);
    inner.remove(fd);
  }
  void forget(int fd) { remove(fd); }
  int wait(std::span<ready_event> out, int timeout_ms) { return inner.wait(out, timeout_ms); }
  static int max_fd() { return limit; }

  poll_poller inner;
  std::vector<int> exclusive;
};

template class event_loop<recording_poller>;

namespace {

using namespace test_support;
using clock = std::chrono::steady_clock;

constexpr std::string_view get_index = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

class EventLoop : public ::testing::Test {
 protected:
  void SetUp() override {
    recording_poller::calls.clear();
    recording_poller::limit = -1;
    server_.config.idle_timeout_s = 10;
    server_.config.grace_ms = 2000;
  }
  /// Starts the loop on its own thread.
  void start(event_loop_options options = {}) {
    ctx_.emplace(server_.context());
    ASSERT_TRUE(ctx_->listener) << server_.error;
    recording_poller::listener = ctx_->listener.get();
    port_ = local_port(ctx_->listener.get());
    options.listen_fd = ctx_->listener.get();
    loop_.emplace(*ctx_, options);
    done_ = std::async(std::launch::async, [this] { return loop_->run(); });
  }
  /// Signals the stop and waits for run() to return; the time it took.
  clock::duration stop() {
    auto start = clock::now();
    server_.request_stop();
    EXPECT_EQ(done_.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    EXPECT_EQ(done_.get(), 0);
    return clock::now() - start;
  }
  void TearDown() override {
    if (done_.valid()) stop();
  }
  bool answered(int fd) { return receive(fd, "</html>\n").starts_with("HTTP/1.1 200 OK"); }

  test_server server_;
  std::optional<server_context> ctx_;
  std::optional<event_loop<recording_poller>> loop_;
  std::future<int> done_;
  uint16_t port_ = 0;
};

TEST_F(EventLoop, AtTheConnectionCapTheListenerIsPausedUntilAConnectionCloses) {
  start({.max_conns = 1});
  unique_fd a = connect_client(port_), b = connect_client(port_, 300);
  send_all(a.get(), get_index);
  EXPECT_TRUE(answered(a.get()));
  send_all(b.get(), get_index);
  EXPECT_EQ(receive(b.get()), "") << "served beyond the cap";
  EXPECT_EQ(recording_poller::listener_calls(),
            (std::vector<std::string>{"add read", "modify none"}));
  a.reset();
  timeval tv{3, 0};
  ::setsockopt(b.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  EXPECT_TRUE(answered(b.get()));
  EXPECT_EQ(recording_poller::listener_calls().at(2), "modify read");
}

TEST_F(EventLoop, AnExclusiveListenerIsPausedByRemovingItAndResumedByAddingItAgain) {
  start({.max_conns = 1, .exclusive_accept = true});
  unique_fd a = connect_client(port_);
  send_all(a.get(), get_index);
  EXPECT_TRUE(answered(a.get()));
  a.reset();
  unique_fd b = connect_client(port_);
  send_all(b.get(), get_index);
  EXPECT_TRUE(answered(b.get()));
  std::vector<std::string> calls = recording_poller::listener_calls();
  ASSERT_GE(calls.size(), 3u);
  EXPECT_EQ(calls[0], "add exclusive");
  EXPECT_EQ(calls[1], "remove");
  EXPECT_EQ(calls[2], "add exclusive");
}

TEST_F(EventLoop, ConnectionsOnDescriptorsPastThePollersLimitAreClosedAndCounted) {
  int lowest_free = ::dup(0);
  ::close(lowest_free);
  recording_poller::limit = lowest_free + 1;  // the listener and stop fd fit, connections do not
  std::atomic<uint64_t> accepted{0};
  start({.accepted = &accepted});
  unique_fd a = connect_client(port_), b = connect_client(port_), c = connect_client(port_);
  EXPECT_TRUE(closed_by_peer(c.get()));
  EXPECT_GE(server_.stats.errors.load(), 1u);
  EXPECT_EQ(accepted.load(), server_.stats.connections.load());
}

TEST_F(EventLoop, ASilentConnectionIsClosedAfterTheIdleTimeout) {
  server_.config.idle_timeout_s = 1;
  start();
  unique_fd a = connect_client(port_, 3000);
  auto begin = clock::now();
  EXPECT_TRUE(closed_by_peer(a.get()));
  EXPECT_GE(clock::now() - begin, std::chrono::milliseconds(900));
  EXPECT_EQ(server_.stats.errors.load(), 0u);  // idle, not in a request: no error
}

TEST_F(EventLoop, ARejectedRequestIsAnsweredThenTheConnectionLingersAtMostLingerMs) {
  start({.max_conns = 1});
  unique_fd bad = connect_client(port_);
  send_all(bad.get(), "BLAH\r\n\r\n");
  EXPECT_TRUE(receive(bad.get()).starts_with("HTTP/1.1 400"));  // then EOF: we shut down writing
  // `bad` stays open and silent: the slot is held while it lingers, then closed.
  auto begin = clock::now();
  unique_fd next = connect_client(port_);
  send_all(next.get(), get_index);
  EXPECT_TRUE(answered(next.get()));
  auto waited = clock::now() - begin;
  EXPECT_GE(waited, std::chrono::milliseconds(linger_ms - 100));
  EXPECT_LT(waited, std::chrono::milliseconds(linger_ms + 1500));
}

TEST_F(EventLoop, AtTheStopIdleConnectionsCloseAndARequestInProgressMayFinish) {
  start();
  unique_fd idle = connect_client(port_), busy = connect_client(port_);
  send_all(idle.get(), get_index);
  EXPECT_TRUE(answered(idle.get()));
  send_all(busy.get(), "GET / HTTP/1.1\r\nHo");
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  server_.request_stop();
  EXPECT_TRUE(closed_by_peer(idle.get()));
  send_all(busy.get(), "st: x\r\n\r\n");
  EXPECT_TRUE(answered(busy.get())) << "the request in progress was not let finish";
  busy.reset();
  EXPECT_LT(stop(), std::chrono::milliseconds(1500)) << "run() waited although nothing was left";
}

TEST_F(EventLoop, TheGracePeriodBoundsARequestThatNeverCompletes) {
  server_.config.grace_ms = 300;
  start();
  unique_fd stalled = connect_client(port_);
  send_all(stalled.get(), "GET / HTTP/1.1\r\nHo");
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto took = stop();
  EXPECT_GE(took, std::chrono::milliseconds(250));
  EXPECT_LT(took, std::chrono::milliseconds(1500));
}

/// A file gate that holds back every file range until the test opens it, as AMPED's holds back
/// ranges that are not in the page cache until a helper has read them.
struct holding_gate : file_gate {
  size_t sendable(const file_range& range, void* key) override {
    std::lock_guard lock(mutex);
    if (open) return range.length;
    held.push_back(key);
    return 0;
  }
  int ready_fd() const override { return ready.get(); }
  void take_ready(std::vector<void*>& keys) override {
    clear_eventfd(ready.get());
    std::lock_guard lock(mutex);
    keys.insert(keys.end(), released.begin(), released.end());
    released.clear();
  }
  /// From the test's thread: every range may go now, and the held ones are given back.
  void open_up() {
    std::lock_guard lock(mutex);
    open = true;
    released.swap(held);
    signal_eventfd(ready.get());
  }
  size_t held_count() {
    std::lock_guard lock(mutex);
    return held.size();
  }

  unique_fd ready = make_eventfd();
  std::mutex mutex;
  std::vector<void*> held, released;
  bool open = false;
};

TEST_F(EventLoop, AFileRangeTheGateHoldsBackWaitsWhileOtherConnectionsAreServed) {
  char tmpl[] = "/tmp/httpbench-loop-XXXXXX";
  std::filesystem::path dir = mkdtemp(tmpl);
  std::ofstream(dir / "big.bin") << std::string(100000, 'f');
  std::ofstream(dir / "index.html") << "</html>\n";
  server_.content = content_store::from_directory(dir.string(), 65536);
  holding_gate gate;
  start({.gate = &gate});
  unique_fd waiting = connect_client(port_, 300), other = connect_client(port_);
  send_all(waiting.get(), "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string head = receive(waiting.get());  // the head goes out; the body waits for the gate
  EXPECT_TRUE(head.starts_with("HTTP/1.1 200 OK")) << head;
  EXPECT_TRUE(head.ends_with("\r\n\r\n")) << head;
  EXPECT_EQ(gate.held_count(), 1u);
  send_all(other.get(), get_index);
  EXPECT_TRUE(answered(other.get())) << "the loop stopped while a file range was held back";
  gate.open_up();
  timeval tv{3, 0};
  ::setsockopt(waiting.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string body;
  char buf[65536];
  for (ssize_t n; body.size() < 100000 && (n = ::recv(waiting.get(), buf, sizeof buf, 0)) > 0;)
    body.append(buf, static_cast<size_t>(n));
  EXPECT_EQ(body, std::string(100000, 'f'));
  stop();
  std::filesystem::remove_all(dir);
}

// Waits up to `ms` for `done()`.
template <class Done>
bool eventually(Done done, int ms = 3000) {
  auto give_up = clock::now() + std::chrono::milliseconds(ms);
  while (!done() && clock::now() < give_up) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return done();
}

TEST_F(EventLoop, AHeadStillTricklingAtTheHeaderTimeoutIsClosedAsATimeout) {
  server_.config.header_timeout_ms = 300;  // the idle timeout is 10 s
  start();
  unique_fd slow = connect_client(port_);
  send_all(slow.get(), "GET / HTTP/1.1\r\n");
  auto begin = clock::now();
  for (int i = 0; i < 40 && server_.stats.closed.load() == 0; ++i) {
    send_all(slow.get(), "X: y\r\n");  // a new byte well within every idle timeout
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  auto took = clock::now() - begin;
  EXPECT_EQ(server_.stats.closed.load(), 1u) << "a trickling head was never closed";
  EXPECT_GE(took, std::chrono::milliseconds(250));
  EXPECT_LT(took, std::chrono::milliseconds(800));
  EXPECT_EQ(server_.stats.errors_timeout.load(), 1u);
}

TEST_F(EventLoop, ALingeringCloseEndsOnTimeEvenBehindIdleConnections) {
  start();
  std::vector<unique_fd> idle;
  for (int i = 0; i < 3; ++i) {  // their deadlines are 10 s away, and they were touched first
    idle.push_back(connect_client(port_));
    send_all(idle.back().get(), get_index);
    EXPECT_TRUE(answered(idle.back().get()));
  }
  unique_fd bad = connect_client(port_);
  send_all(bad.get(), "BLAH\r\n\r\n");
  EXPECT_TRUE(receive(bad.get()).starts_with("HTTP/1.1 400"));
  auto begin = clock::now();
  ASSERT_TRUE(eventually([&] { return server_.stats.closed.load() == 1; }));  // `bad` stays silent
  EXPECT_LT(clock::now() - begin, std::chrono::milliseconds(linger_ms + 500));
  EXPECT_EQ(server_.stats.errors.load(), 1u);  // the 400 only
}

TEST_F(EventLoop, AClientThatStopsReadingIsResetAfterTheSendTimeout) {
  char dir_template[] = "/tmp/httpbench-loop-XXXXXX";
  std::filesystem::path dir = ::mkdtemp(dir_template);
  std::ofstream(dir / "big.bin") << std::string(8 << 20, 'z');
  server_.content = content_store::from_directory(dir.string(), 65536);
  server_.config.send_timeout_ms = 300;
  start();
  unique_fd reader(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  int small = 4096;
  ::setsockopt(reader.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port_);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(reader.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  send_all(reader.get(), "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n");  // and never read
  auto begin = clock::now();
  ASSERT_TRUE(eventually([&] { return server_.stats.closed.load() == 1; }));
  auto took = clock::now() - begin;
  EXPECT_GE(took, std::chrono::milliseconds(250));
  EXPECT_LT(took, std::chrono::milliseconds(1000));
  EXPECT_EQ(server_.stats.errors_timeout.load(), 1u);
  tcp_info info{};
  socklen_t len = sizeof info;
  ::getsockopt(reader.get(), IPPROTO_TCP, TCP_INFO, &info, &len);
  EXPECT_EQ(info.tcpi_state, TCP_CLOSE) << "abandoned with a reset, not a FIN behind 8 MB";
  stop();
  std::filesystem::remove_all(dir);
}

TEST_F(EventLoop, HalfARequestThenThePeersCloseIsALostConnection) {
  start();
  unique_fd half = connect_client(port_);
  send_all(half.get(), "GET / HTTP/1.1\r\nHo");
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  half.reset();
  ASSERT_TRUE(eventually([&] { return server_.stats.closed.load() == 1; }));
  EXPECT_EQ(server_.stats.errors_lost.load(), 1u);
  EXPECT_EQ(server_.stats.errors.load(), 1u);
}

TEST_F(EventLoop, AResponseStillOwedToAHalfClosedPeerWhenTheGraceEndsIsCutNotLost) {
  char dir_template[] = "/tmp/httpbench-loop-XXXXXX";
  std::filesystem::path dir = ::mkdtemp(dir_template);
  std::ofstream(dir / "big.bin") << std::string(8 << 20, 'z');
  server_.content = content_store::from_directory(dir.string(), 65536);
  server_.config.grace_ms = 200;
  start();
  unique_fd reader = connect_client(port_);
  send_all(reader.get(), "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n");
  ::shutdown(reader.get(), SHUT_WR);  // its request is complete; it never reads the answer
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  stop();
  loop_.reset();
  EXPECT_EQ(server_.stats.errors_cut.load(), 1u);
  EXPECT_EQ(server_.stats.errors_lost.load(), 0u);
  std::filesystem::remove_all(dir);
}

TEST_F(EventLoop, ARequestStillArrivingWhenTheGraceEndsIsCut) {
  server_.config.grace_ms = 200;
  start();
  unique_fd idle = connect_client(port_), stalled = connect_client(port_);
  send_all(idle.get(), get_index);
  EXPECT_TRUE(answered(idle.get()));
  send_all(stalled.get(), "GET / HTTP/1.1\r\nHo");
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  stop();
  loop_.reset();  // what run() left open is closed with the loop
  EXPECT_EQ(server_.stats.connections.load(), 2u);
  EXPECT_EQ(server_.stats.closed.load(), 2u);
  EXPECT_EQ(server_.stats.errors_cut.load(), 1u);
  EXPECT_EQ(server_.stats.errors.load(), 1u);  // the idle one was no error
}

}  // namespace
}  // namespace httpbench::core
