// The connection state machine, driven exactly as a backend drives it, with no sockets.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "core/connection.hpp"
#include "core/content.hpp"
#include "core/options.hpp"
#include "core/stats.hpp"
#include "drive_connection.hpp"

using namespace httpbench::core;
using namespace httpbench::core::test_support;

namespace {

class ConnectionTest : public ::testing::Test {
 protected:
  content_store content_ = content_store::builtin();
  server_stats stats_;
  connection c_{content_, stats_};
};

}  // namespace

TEST_F(ConnectionTest, Http11GetIsAnsweredAndKeptAlive) {
  auto rs = split_responses(serve_bytes(c_, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].status(), 200);
  EXPECT_EQ(rs[0].body.size(), 305u);
  EXPECT_TRUE(rs[0].has("Content-Length: 305"));
  EXPECT_NE(rs[0].head.find("\r\nDate: "), std::string::npos);
  EXPECT_EQ(rs[0].head.find("Connection:"), std::string::npos);
  EXPECT_FALSE(c_.wants_close());
  EXPECT_TRUE(c_.wants_read());
  EXPECT_TRUE(c_.idle());
  EXPECT_EQ(stats_.requests.load(), 1u);
}

TEST_F(ConnectionTest, Http10ClosesUnlessKeepAliveIsAsked) {
  auto rs = split_responses(serve_bytes(c_, "GET / HTTP/1.0\r\n\r\n"));
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_TRUE(rs[0].has("Connection: close"));
  EXPECT_TRUE(c_.wants_close());

  connection ka(content_, stats_);
  rs = split_responses(serve_bytes(ka, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_TRUE(rs[0].has("Connection: keep-alive"));
  EXPECT_FALSE(ka.wants_close());
}

TEST_F(ConnectionTest, ConnectionCloseOnHttp11ClosesAfterTheResponse) {
  auto rs = split_responses(serve_bytes(c_, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                                         "GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_EQ(rs.size(), 1u);  // nothing after a close is answered
  EXPECT_TRUE(c_.wants_close());
  EXPECT_FALSE(c_.closing_on_error());
}

TEST_F(ConnectionTest, PipelinedRequestsAreAnsweredInOrderEvenBeyondOneBatch) {
  std::string in;
  const int n = 300;  // more than fit in one output queue: forces stall and resume
  for (int i = 0; i < n; ++i)
    in += i % 3 == 0 ? "GET /hello?name=" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n"
          : i % 3 == 1 ? std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                       : std::string("GET /missing HTTP/1.1\r\nHost: x\r\n\r\n");
  auto rs = split_responses(serve_bytes(c_, in));
  ASSERT_EQ(rs.size(), static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    int expected_status = i % 3 == 2 ? 404 : 200;
    EXPECT_EQ(rs[i].status(), expected_status) << "response " << i;
    if (i % 3 == 0) {
      EXPECT_EQ(rs[i].body, "<h1>Hello " + std::to_string(i) + "</h1>");
    }
  }
  EXPECT_EQ(stats_.requests.load(), static_cast<uint64_t>(n));
  EXPECT_EQ(stats_.errors.load(), static_cast<uint64_t>(n / 3));
}

TEST_F(ConnectionTest, RequestArrivingOneByteAtATimeGetsOneResponse) {
  std::string in = "GET /index.html HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\n";
  std::string out;
  for (char ch : in) out += serve_bytes(c_, std::string_view(&ch, 1));
  auto rs = split_responses(out);
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].status(), 200);
}

namespace {

// serve_in_reads() through feed() or feed_in_place() on a fresh connection, followed by the
// connection's state and counters.
std::string served_in_chunks(std::string_view in, size_t chunk, bool in_place) {
  content_store content = content_store::builtin();
  server_stats stats;
  std::string out;
  {
    connection c(content, stats);
    out = serve_in_reads(c, in, chunk, in_place);
    out += "|requests " + std::to_string(c.requests()) + " moved " +
           std::to_string(c.bytes_moved()) + " idle " + std::to_string(c.idle()) + " close " +
           std::to_string(c.wants_close()) + " rejected " + std::to_string(c.closing_on_error());
  }
  return out + "|errors " + std::to_string(stats.errors.load()) + " received " +
         std::to_string(stats.bytes_received.load()) + " sent " +
         std::to_string(stats.bytes_sent.load());
}

}  // namespace

TEST_F(ConnectionTest, FeedingInPlaceAnswersExactlyAsFeedingACopy) {
  std::string pipelined;
  for (int i = 0; i < 60; ++i)
    pipelined += i % 2 ? "GET /hello?name=%3Ci%3E" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n"
                       : std::string("GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string inputs[] = {
      "GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
      "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nHEAD /index.html HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /a%2Fb/../index.html HTTP/1.1\r\nHost: x\r\n\r\nGET /missing HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\nabcdefgGET / HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
      "\r\n\r\nGET / HTTP/1.1\nHost: x\n\n",
      "GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n",
      pipelined,
  };
  for (const std::string& in : inputs) {
    for (size_t chunk : {1, 5, 51, 200, 511, 8000}) {
      std::string copied = served_in_chunks(in, chunk, false);
      EXPECT_EQ(served_in_chunks(in, chunk, true), copied)
          << "chunks of " << chunk << " of " << in.substr(0, 60);
      EXPECT_NE(copied.find("HTTP/1.1 "), std::string::npos);
    }
  }
}

TEST_F(ConnectionTest, BytesLeftAfterFeedingInPlaceAreTheConnectionsOwnCopy) {
  // Part of a request, then the rest after the caller reused its buffer.
  std::string first = "GET /index.html HTTP/1.1\r\nHo";
  EXPECT_EQ(c_.feed_in_place(first), first.size());
  std::fill(first.begin(), first.end(), '#');
  EXPECT_EQ(drain(c_), "");
  std::string rest = "st: x\r\n\r\n";
  auto rs = split_responses(drain(c_) + (c_.feed_in_place(rest), drain(c_)));
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].status(), 200);
  EXPECT_EQ(rs[0].body.size(), 305u);

  // More pipelined requests than the output queue has room for: the ones waiting are answered
  // from the copy once the first responses are written.
  std::string many;
  for (int i = 0; i < 100; ++i) many += "GET /hello?name=" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_LT(many.size(), 8000u);
  EXPECT_EQ(c_.feed_in_place(many), many.size());
  EXPECT_FALSE(c_.wants_read());  // stalled: requests wait for room
  std::fill(many.begin(), many.end(), '#');
  rs = split_responses(drain(c_));
  ASSERT_EQ(rs.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(rs[i].body, "<h1>Hello " + std::to_string(i) + "</h1>");
  EXPECT_TRUE(c_.idle());
}

TEST_F(ConnectionTest, HeadSendsHeadersWithoutBody) {
  std::string out = serve_bytes(c_, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(out.find("Content-Length: 305\r\n"), std::string::npos);
  EXPECT_TRUE(out.ends_with("\r\n\r\n"));
}

TEST_F(ConnectionTest, MalformedRequestGets400AndTheConnectionCloses) {
  auto rs = split_responses(serve_bytes(c_, "BLAH\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].status(), 400);
  EXPECT_TRUE(rs[0].has("Connection: close"));
  EXPECT_TRUE(c_.wants_close());
  EXPECT_TRUE(c_.closing_on_error());
  EXPECT_FALSE(c_.wants_read());
  EXPECT_EQ(stats_.requests.load(), 1u);  // a rejected request is counted as a request
  EXPECT_EQ(stats_.errors.load(), 1u);
}

TEST_F(ConnectionTest, UnsupportedMethodsGet405OrAnd501) {
  auto rs = split_responses(serve_bytes(c_, "DELETE / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[0].status(), 405);
  EXPECT_TRUE(rs[0].has("Allow: GET, HEAD"));
  EXPECT_EQ(rs[1].status(), 200);  // a 405 keeps the connection

  connection other(content_, stats_);
  rs = split_responses(serve_bytes(other, "BREW / HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].status(), 501);
}

TEST_F(ConnectionTest, BodyOfAGetIsSkippedAndTheNextRequestIsAnswered) {
  auto rs = split_responses(
      serve_bytes(c_, "GET /x HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nGET /nope!!GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[0].status(), 404);
  EXPECT_EQ(rs[1].status(), 200);
}

TEST_F(ConnectionTest, ChunkedBodiesAreRefusedAndTheConnectionCloses) {
  auto rs = split_responses(serve_bytes(c_, "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"));
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].status(), 501);
  EXPECT_TRUE(c_.wants_close());
}

TEST_F(ConnectionTest, HugeBodyIsRefusedWith413) {
  auto rs = split_responses(serve_bytes(c_, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n"));
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].status(), 413);
}

TEST_F(ConnectionTest, TraversalIsForbiddenAndBadEscapesAreBad) {
  EXPECT_EQ(split_responses(serve_bytes(c_, "GET /%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"))[0].status(),
            403);
  connection other(content_, stats_);
  EXPECT_EQ(split_responses(serve_bytes(other, "GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n"))[0].status(), 400);
}

TEST_F(ConnectionTest, AbsoluteFormTargetsAreServedByTheirPath) {
  auto rs = split_responses(serve_bytes(c_, "GET http://example.org HTTP/1.1\r\nHost: x\r\n\r\n"
                                            "GET http://example.org/index.html HTTP/1.1\r\nHost: x\r\n\r\n"
                                            "GET http://example.org?x HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_EQ(rs.size(), 3u);
  for (const auto& r : rs) EXPECT_EQ(r.body.size(), 305u);
}

TEST_F(ConnectionTest, HelloPageEscapesHtml) {
  auto rs = split_responses(serve_bytes(c_, "GET /hello?name=%3Cb%3E%26%22%27+x HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].body, "<h1>Hello &lt;b&gt;&amp;&quot;&#39; x</h1>");
  EXPECT_TRUE(rs[0].has("Content-Length: " + std::to_string(rs[0].body.size())));
}

TEST_F(ConnectionTest, HelloWithoutNameGreetsTheWorldAndTooLongNameIs400) {
  EXPECT_EQ(split_responses(serve_bytes(c_, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"))[0].body,
            "<h1>Hello world</h1>");
  connection other(content_, stats_);
  std::string in = std::string("GET /hello?name=") + std::string(2000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n";
  EXPECT_EQ(split_responses(serve_bytes(other, in))[0].status(), 400);
}

TEST_F(ConnectionTest, PeerClosingMidRequestEndsTheConnection) {
  serve_bytes(c_, "GET / HTT");
  EXPECT_FALSE(c_.idle());
  c_.peer_closed();
  EXPECT_TRUE(c_.wants_close());
}

TEST_F(ConnectionTest, PartialWritesResumeWhereTheyStopped) {
  serve_bytes(c_, "");
  c_.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string out;
  while (c_.wants_write()) {
    pending_output o = c_.output();
    const iovec& v = o.iov[0];
    size_t n = std::min<size_t>(7, v.iov_len);  // a socket that takes 7 bytes at a time
    out.append(static_cast<const char*>(v.iov_base), n);
    c_.consumed(n);
  }
  auto rs = split_responses(out);
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].body.size(), 305u);
}

// A stored response goes out from the content store itself: its head and body are not copied.
TEST_F(ConnectionTest, AStoredResponseIsSentFromTheContentStoreWithoutCopies) {
  const static_file* page = content_.find("/index.html");
  ASSERT_NE(page, nullptr);
  c_.feed("GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n");
  pending_output o = c_.output();
  ASSERT_EQ(o.iov.size(), 4u);  // head, Date line, the empty line, body
  EXPECT_EQ(o.iov[0].iov_base, page->head.data());
  EXPECT_EQ(o.iov[3].iov_base, page->body.data());
  std::string date(static_cast<const char*>(o.iov[1].iov_base), o.iov[1].iov_len);
  EXPECT_TRUE(date.starts_with("Date: ") && date.ends_with(" GMT\r\n")) << date;
  EXPECT_EQ(std::string(static_cast<const char*>(o.iov[2].iov_base), o.iov[2].iov_len), "\r\n");
}

// A pipelined request that arrives while a stored response is half sent is answered after
// the rest of it, and both responses arrive whole, in order, for every split of the first.
TEST_F(ConnectionTest, APipelinedRequestArrivingMidResponseIsAnsweredAfterIt) {
  const std::string first = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string second = "GET /nothing-here HTTP/1.1\r\nHost: x\r\n\r\n";
  std::string whole;
  {
    connection ref(content_, stats_);
    whole = serve_bytes(ref, first);
  }
  for (size_t sent = 0; sent < whole.size(); sent += 37) {
    connection c(content_, stats_);
    c.feed(first);
    std::string out;
    while (out.size() < sent) {  // the socket takes `sent` bytes of the first response
      pending_output o = c.output();
      size_t n = std::min<size_t>(sent - out.size(), o.iov[0].iov_len);
      out.append(static_cast<const char*>(o.iov[0].iov_base), n);
      c.consumed(n);
    }
    c.feed(second);
    out += drain(c);
    auto rs = split_responses(out);
    ASSERT_EQ(rs.size(), 2u) << "after " << sent << " bytes";
    EXPECT_EQ(rs[0].status(), 200);
    EXPECT_EQ(rs[0].body.size(), 305u);
    EXPECT_EQ(rs[1].status(), 404);
    EXPECT_TRUE(c.idle());
  }
}

// A HEAD request's stored response is its head and tail only, sent as the GET's would be.
TEST_F(ConnectionTest, AStoredResponseToHeadHasNoBodyEvenWhenSentInPieces) {
  c_.feed("HEAD / HTTP/1.0\r\n\r\n");
  std::string out;
  while (c_.wants_write()) {
    pending_output o = c_.output();
    size_t n = std::min<size_t>(5, o.iov[0].iov_len);
    out.append(static_cast<const char*>(o.iov[0].iov_base), n);
    c_.consumed(n);
  }
  EXPECT_TRUE(out.ends_with("Connection: close\r\n\r\n")) << out;
  EXPECT_NE(out.find("Content-Length: 305\r\n"), std::string::npos);
  EXPECT_TRUE(c_.wants_close());
}

// closes_after(): whether the output just offered is the last thing the connection sends
// before wants_close(), so that a completion-based backend may queue the close behind it.
TEST_F(ConnectionTest, ClosesAfterIsTrueOnlyForTheLastOutputOfANormalClose) {
  c_.feed("GET / HTTP/1.0\r\n\r\n");
  EXPECT_TRUE(c_.closes_after(c_.output()));

  connection keep(content_, stats_);
  keep.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_FALSE(keep.closes_after(keep.output()));  // keep-alive: more requests may come

  connection bad(content_, stats_);
  bad.feed("NONSENSE\r\n\r\n");
  ASSERT_TRUE(bad.wants_write());
  EXPECT_FALSE(bad.closes_after(bad.output()));  // a rejected request's close lingers

  connection eof(content_, stats_);
  eof.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  eof.peer_closed();
  EXPECT_TRUE(eof.closes_after(eof.output()));

  connection partly(content_, stats_);
  partly.feed("GET / HTTP/1.0\r\n\r\n");
  pending_output o = partly.output();
  partly.consumed(10);
  EXPECT_TRUE(partly.closes_after(partly.output()));  // what is left is still the last
  EXPECT_FALSE(partly.closes_after({o.iov.first(0), {}}));  // not all of it
}

// A docroot of one 200,000-byte file, above the 64 KiB sendfile threshold: served as a file range.
class ConnectionFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/httpbench-conn-XXXXXX";
    dir_ = mkdtemp(tmpl);
    std::ofstream(dir_ / "big.bin") << std::string(200000, 'z');
    content_ = std::make_unique<content_store>(content_store::from_directory(dir_.string(), 65536));
  }
  void TearDown() override {
    content_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir_;
  std::unique_ptr<content_store> content_;
  server_stats stats_;
};

TEST_F(ConnectionFiles, ClosesAfterIsFalseWhileAFileRangeFollows) {
  connection c(*content_, stats_);
  c.feed("GET /big.bin HTTP/1.0\r\n\r\n");
  pending_output head = c.output();
  EXPECT_FALSE(c.closes_after(head));  // the file's bytes come after the head
  size_t n = 0;
  for (const iovec& v : head.iov) n += v.iov_len;
  c.consumed(n);
  EXPECT_FALSE(c.closes_after(c.output()));  // a file range is sent by splice, not sendmsg
}

TEST_F(ConnectionFiles, LargeFilesAreOfferedAsFileRanges) {
  connection c(*content_, stats_);
  c.feed("GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n");
  pending_output o = c.output();
  ASSERT_FALSE(o.iov.empty());  // the head first
  size_t head = 0;
  for (const iovec& v : o.iov) head += v.iov_len;
  c.consumed(head);
  o = c.output();
  EXPECT_TRUE(o.iov.empty());
  EXPECT_GE(o.file.fd, 0);
  EXPECT_EQ(o.file.length, 200000u);
  EXPECT_EQ(o.file.offset, 0);
  c.consumed(1000);
  EXPECT_EQ(c.output().file.offset, 1000);
}

// ---- how a connection ends: one definition of the counters (docs/interfaces.md) ----

namespace {

class ConnectionEnd : public ::testing::Test {
 protected:
  content_store content_ = content_store::builtin();
  server_stats stats_;
  uint64_t kinds_total() const {
    return stats_.errors_status + stats_.errors_lost + stats_.errors_timeout + stats_.errors_cut +
           stats_.errors_refused;
  }
};

}  // namespace

TEST_F(ConnectionEnd, EveryConnectionIsCountedWhenMadeAndClosedWhenDestroyed) {
  {
    connection c(content_, stats_);
    EXPECT_EQ(stats_.connections.load(), 1u);
    EXPECT_EQ(stats_.closed.load(), 0u);
  }
  EXPECT_EQ(stats_.closed.load(), 1u);
  EXPECT_EQ(stats_.errors.load(), 0u);
}

TEST_F(ConnectionEnd, AnIdleConnectionEndsWithoutAnErrorWhateverTheReason) {
  {
    connection c(content_, stats_);
    serve_bytes(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    c.timed_out();  // the keep-alive timeout
  }
  { connection c(content_, stats_); c.broken(); }
  { connection c(content_, stats_); c.cut(); }
  { connection c(content_, stats_); }
  EXPECT_EQ(stats_.errors.load(), 0u);
  EXPECT_EQ(stats_.closed.load(), 4u);
}

TEST_F(ConnectionEnd, HalfARequestThenThePeersEofIsLost) {
  {
    connection c(content_, stats_);
    c.feed("GET / HTTP/1.1\r\nHo");
    c.peer_closed();
    EXPECT_TRUE(c.wants_close());
  }  // an event loop just closes it: the destructor knows why
  EXPECT_EQ(stats_.errors_lost.load(), 1u);
  EXPECT_EQ(stats_.errors.load(), 1u);
}

TEST_F(ConnectionEnd, ADeadlineInsideARequestIsATimeoutCountedOnce) {
  {
    connection c(content_, stats_);
    c.feed("GET / HTTP/1.1\r\nHo");
    c.timed_out();
    c.broken();  // only the first reason counts
  }
  EXPECT_EQ(stats_.errors_timeout.load(), 1u);
  EXPECT_EQ(stats_.errors.load(), 1u);
}

TEST_F(ConnectionEnd, AResponseNotCompletelySentIsInsideTheRequest) {
  {
    connection c(content_, stats_);
    c.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    c.consumed(10);
    c.broken();  // the peer reset while we wrote
  }
  EXPECT_EQ(stats_.errors_lost.load(), 1u);
}

TEST_F(ConnectionEnd, DestroyedInsideARequestWithoutAReasonIsCut) {
  {
    connection c(content_, stats_);
    c.feed("GET / HTTP/1.1\r\nHost: x\r\n");  // the grace period ran out on it
  }
  {
    connection c(content_, stats_);
    c.feed("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");  // inside a body
    drain(c);
  }
  EXPECT_EQ(stats_.errors_cut.load(), 2u);
  EXPECT_EQ(stats_.errors.load(), 2u);
}

TEST_F(ConnectionEnd, ARejectedRequestIsOneErrorAndItsLingeringCloseNoOther) {
  {
    connection c(content_, stats_);
    serve_bytes(c, "BLAH\r\n\r\nmore bytes");
    EXPECT_TRUE(c.closing_on_error());
    c.peer_closed();
  }
  EXPECT_EQ(stats_.errors_status.load(), 1u);
  EXPECT_EQ(stats_.errors.load(), 1u);
  EXPECT_EQ(kinds_total(), stats_.errors.load());
}

TEST_F(ConnectionEnd, BytesPipelinedAfterAConnectionCloseRequestAreNoLostRequest) {
  {
    connection c(content_, stats_);
    serve_bytes(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET / HT");
    EXPECT_TRUE(c.wants_close());
  }
  EXPECT_EQ(stats_.errors.load(), 0u);
}

TEST_F(ConnectionEnd, AWorkersOpenConnectionsAreKeptInItsCell) {
  std::atomic<int64_t> open{0};
  connection_limits limits;
  limits.open_in_process = &open;
  {
    connection a(content_, stats_, limits), b(content_, stats_, limits);
    EXPECT_EQ(open.load(), 2);
  }
  EXPECT_EQ(open.load(), 0);
}

TEST_F(ConnectionEnd, ReceivingHeadIsTrueOnlyWhileAHeadIsIncomplete) {
  connection c(content_, stats_);
  EXPECT_FALSE(c.receiving_head());
  c.feed("GET / HTTP/1.1\r\nHo");
  EXPECT_TRUE(c.receiving_head());
  c.feed("st: x\r\nContent-Length: 3\r\n\r\n");
  EXPECT_FALSE(c.receiving_head());  // a body is arriving now
  drain(c);
  c.feed("abc");
  EXPECT_FALSE(c.receiving_head());
  EXPECT_TRUE(c.idle());
}

TEST_F(ConnectionEnd, BytesMovedCountsBothDirections) {
  connection c(content_, stats_);
  std::string_view in = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  c.feed(in);
  uint64_t after_read = c.bytes_moved();
  EXPECT_EQ(after_read, in.size());
  std::string out = drain(c);
  EXPECT_EQ(c.bytes_moved(), in.size() + out.size());
}

TEST(ConnectionLimits, HeaderTimeoutIsCappedAtTheIdleTimeout) {
  server_config config;
  config.idle_timeout_s = 2;
  config.header_timeout_ms = 10'000;
  config.send_timeout_ms = 1'500;
  connection_limits l = limits_from(config);
  EXPECT_EQ(l.idle_timeout_ms, 2000);
  EXPECT_EQ(l.header_timeout_ms, 2000);
  EXPECT_EQ(l.send_timeout_ms, 1500);
  config.header_timeout_ms = 500;
  EXPECT_EQ(limits_from(config).header_timeout_ms, 500);
}
