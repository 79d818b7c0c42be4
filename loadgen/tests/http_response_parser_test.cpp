// The client-side response parser: table of cases, each also fed byte by byte.
#include "http_response_parser.hpp"

#include <gtest/gtest.h>

#include <string>

using httpbench::loadgen::http_response_parser;
using outcome = http_response_parser::outcome;

namespace {

struct fed {
  outcome status = outcome::incomplete;
  std::size_t consumed = 0;
  std::string body;
};

/// Feeds `text` in pieces of `step` bytes until complete / bad.
fed feed_in_steps(http_response_parser& p, const std::string& text, std::size_t step) {
  fed out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t n = std::min(step, text.size() - pos);
    const auto r = p.feed(text.data() + pos, n);
    if (r.body) out.body.append(r.body, r.body_length);
    pos += r.consumed;
    out.consumed = pos;
    out.status = r.status;
    if (r.status != outcome::incomplete) break;
    if (r.consumed < n) break;
  }
  return out;
}

/// Each proper prefix of the response `text`, fed at once to a fresh parser, is incomplete and
/// consumed whole (the parser keeps its place rather than asking for those bytes again).
void expect_every_prefix_incomplete(const std::string& text) {
  for (std::size_t cut = 0; cut < text.size(); ++cut) {
    http_response_parser p;
    p.reset();
    const auto r = p.feed(text.data(), cut);
    EXPECT_EQ(r.status, outcome::incomplete) << "cut at " << cut;
    EXPECT_EQ(r.consumed, cut) << "cut at " << cut;
  }
}

struct good_case {
  const char* name;
  std::string text;
  int status;
  std::string body;
  bool keep_alive;
  bool head = false;
};

}  // namespace

TEST(HttpResponseParser, GoodResponsesWholeAndByteByByte) {
  const good_case cases[] = {
      {"content_length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, "hello", true},
      {"http10_closes", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi", 200, "hi", false},
      {"http10_keep_alive",
       "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nhi", 200, "hi", true},
      {"connection_close", "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\nx",
       200, "x", false},
      {"not_found", "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno!", 404, "no!", true},
      {"no_content", "HTTP/1.1 204 No Content\r\n\r\n", 204, "", true},
      {"head", "HTTP/1.1 200 OK\r\nContent-Length: 305\r\n\r\n", 200, "", true, true},
      {"empty_body", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 200, "", true},
      {"chunked",
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-T: "
       "y\r\n\r\n",
       200, "", true},
      // Interim responses are skipped (RFC 9110 §15.2); their fields do not carry over.
      {"interim_100_continue",
       "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200,
       "hello", true},
      {"interim_103_then_100",
       "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\nContent-Length: 99\r\n\r\n"
       "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
       200, "ok", true},
      {"switching_protocols_is_final",
       "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", 101, "", false},
      // Bare LF line endings are accepted (RFC 9112 §2.2).
      {"bare_lf", "HTTP/1.1 200 OK\nContent-Length: 5\n\nhello", 200, "hello", true},
      {"bare_lf_mixed", "HTTP/1.1 200 OK\r\nContent-Length: 5\n\r\nhello", 200, "hello", true},
      {"bare_lf_interim", "HTTP/1.1 100 Continue\n\nHTTP/1.0 200 OK\nContent-Length: 1\n\nx",
       200, "x", false},
      {"bare_lf_chunked",
       "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n5\nhello\n0\n\n", 200, "", true},
  };
  for (const auto& c : cases) {
    for (std::size_t step : {c.text.size(), std::size_t{1}, std::size_t{7}}) {
      http_response_parser p;
      p.reset(c.head);
      const fed f = feed_in_steps(p, c.text, step);
      EXPECT_EQ(f.status, outcome::complete) << c.name << " step " << step;
      EXPECT_EQ(f.consumed, c.text.size()) << c.name << " step " << step;
      EXPECT_EQ(p.status_code(), c.status) << c.name;
      EXPECT_EQ(f.body, c.body) << c.name << " step " << step;
      EXPECT_EQ(p.keep_alive(), c.keep_alive) << c.name;
      EXPECT_EQ(p.bytes_received(), c.text.size()) << c.name;
    }
  }
}

TEST(HttpResponseParser, ChunkedPayloadIsCounted) {
  http_response_parser p;
  p.reset();
  const std::string text =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: "
      "chunked\r\n\r\n3\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\n";
  EXPECT_EQ(feed_in_steps(p, text, 3).status, outcome::complete);
  EXPECT_EQ(p.body_received(), 13u);
}

TEST(HttpResponseParser, EveryPrefixIsIncomplete) {
  expect_every_prefix_incomplete(
      "HTTP/1.1 200 OK\r\nServer: t\r\nContent-Length: 4\r\n\r\nbody");
}

TEST(HttpResponseParser, EveryPrefixOfAnInterimAndBareLfResponseIsIncomplete) {
  expect_every_prefix_incomplete(
      "HTTP/1.1 100 Continue\n\nHTTP/1.1 200 OK\nServer: t\r\nContent-Length: 4\n\nbody");
}

TEST(HttpResponseParser, StopsAtTheEndOfOneResponseForPipelining) {
  const std::string one = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
  const std::string two = one + one;
  http_response_parser p;
  p.reset();
  auto r = p.feed(two.data(), two.size());
  ASSERT_EQ(r.status, outcome::complete);
  ASSERT_EQ(r.consumed, one.size());
  p.reset();
  r = p.feed(two.data() + one.size(), one.size());
  EXPECT_EQ(r.status, outcome::complete);
}

TEST(HttpResponseParser, CloseDelimitedBodyCompletesAtEof) {
  http_response_parser p;
  p.reset();
  const std::string text = "HTTP/1.0 200 OK\r\n\r\nuntil close";
  const auto r = p.feed(text.data(), text.size());
  EXPECT_EQ(r.status, outcome::incomplete);
  EXPECT_EQ(p.finish_at_eof(), outcome::complete);
  EXPECT_EQ(p.body_received(), 11u);
  EXPECT_FALSE(p.keep_alive());
}

TEST(HttpResponseParser, ShortBodyIsIncompleteAtEof) {
  http_response_parser p;
  p.reset();
  const std::string text = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
  EXPECT_EQ(p.feed(text.data(), text.size()).status, outcome::incomplete);
  EXPECT_TRUE(p.headers_done());
  EXPECT_EQ(p.finish_at_eof(), outcome::incomplete);
}

TEST(HttpResponseParser, BadResponses) {
  const char* bad[] = {
      "HTTP/2.0 200 OK\r\n\r\n",
      "HTTP/1.1 2x0 OK\r\n\r\n",
      "SMTP ready\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
      "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
  };
  for (const char* text : bad) {
    for (std::size_t step : {std::string(text).size(), std::size_t{1}}) {
      http_response_parser p;
      p.reset();
      EXPECT_EQ(feed_in_steps(p, text, step).status, outcome::bad) << text << " step " << step;
    }
  }
}

TEST(HttpResponseParser, OversizedHeaderIsBad) {
  http_response_parser p;
  p.reset();
  std::string text = "HTTP/1.1 200 OK\r\nX: " + std::string(70000, 'a');
  EXPECT_EQ(feed_in_steps(p, text, 4096).status, outcome::bad);
}

TEST(HttpResponseParser, ServerHeaderIsKept) {
  http_response_parser p;
  p.reset();
  const std::string text = "HTTP/1.1 200 OK\r\nServer: h2o/2.2.5\r\nContent-Length: 0\r\n\r\n";
  p.feed(text.data(), text.size());
  EXPECT_EQ(p.server_header(), "h2o/2.2.5");
}
