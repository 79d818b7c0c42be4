// The connection state machine, driven exactly as a backend drives it, with no sockets.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/connection.hpp"
#include "core/content.hpp"
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

TEST(ConnectionFiles, LargeFilesAreOfferedAsFileRanges) {
  char tmpl[] = "/tmp/httpbench-conn-XXXXXX";
  std::filesystem::path dir = mkdtemp(tmpl);
  std::ofstream(dir / "big.bin") << std::string(200000, 'z');
  {
    content_store content = content_store::from_directory(dir.string(), 65536);
    server_stats stats;
    connection c(content, stats);
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
  std::filesystem::remove_all(dir);
}
