// Table-driven parser tests: every valid request is also fed one byte at a time and cut at
// every prefix, and parsed from a buffer that ends at a PROT_NONE page.
#include <gtest/gtest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cctype>
#include <cstring>
#include <string>
#include <vector>

#include "core/parser.hpp"
#include "guarded_buffer.hpp"

using namespace httpbench::core;

namespace {

struct valid_case {
  const char* label;
  std::string input;
  std::string method, target;
  int minor;
  bool keep_alive;
  size_t headers;
  uint64_t content_length = 0;
};

const std::vector<valid_case>& valid_cases() {
  static const std::vector<valid_case> cases = {
      {"simple 1.1", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET", "/", 1, true, 1},
      {"1.0 closes by default", "GET /x HTTP/1.0\r\n\r\n", "GET", "/x", 0, false, 0},
      {"1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", "GET", "/", 0, true, 1},
      {"1.1 close", "HEAD /a HTTP/1.1\r\nHost: a\r\nconnection: close\r\n\r\n", "HEAD", "/a", 1,
       false, 2},
      {"connection token list", "GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n",
       "GET", "/", 1, false, 2},
      {"bare LF line ends", "GET /lf HTTP/1.1\nHost: a\n\n", "GET", "/lf", 1, true, 1},
      {"leading empty line", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET", "/", 1, true, 1},
      {"query kept in target", "GET /hello?name=a%20b HTTP/1.1\r\nHost: a\r\n\r\n", "GET",
       "/hello?name=a%20b", 1, true, 1},
      {"value whitespace trimmed", "GET / HTTP/1.1\r\nHost: a\r\nX-A:   v  \r\n\r\n", "GET", "/",
       1, true, 2},
      {"empty header value", "GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\n\r\n", "GET", "/", 1,
       true, 2},
      {"content length", "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n", "POST",
       "/p", 1, true, 2, 12},
      {"http/1.9 processed as 1.1", "GET / HTTP/1.9\r\nHost: a\r\n\r\n", "GET", "/", 1, true, 1},
      {"absolute form target", "GET http://h/p HTTP/1.1\r\nHost: h\r\n\r\n", "GET", "http://h/p",
       1, true, 1},
      {"1.0 without host", "GET / HTTP/1.0\r\nConnection: close\r\n\r\n", "GET", "/", 0, false, 1},
      {"empty host (no authority)", "GET / HTTP/1.1\r\nHost:\r\n\r\n", "GET", "/", 1, true, 1},
      {"host with port", "GET / HTTP/1.1\r\nhOsT: example.org:8080\r\n\r\n", "GET", "/", 1, true, 1},
      {"ipv6 literal host", "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", "GET", "/", 1, true, 1},
  };
  return cases;
}

struct bad_case {
  const char* label;
  std::string input;
  int status;
};

const std::vector<bad_case>& bad_cases() {
  static const std::vector<bad_case> cases = {
      {"garbage", "\x01\x02\x03 nonsense\r\n\r\n", 400},
      {"missing version", "GET /\r\n\r\n", 400},
      {"http/0.9 style", "GET / \r\n\r\n", 400},
      {"lowercase version", "GET / http/1.1\r\n\r\n", 400},
      {"version 2", "GET / HTTP/2.0\r\n\r\n", 505},
      {"version 3", "GET / HTTP/3.0\r\n\r\n", 505},
      {"two-digit minor version", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400},
      {"double space", "GET  / HTTP/1.1\r\n\r\n", 400},
      {"nul in target", std::string("GET /a\0b HTTP/1.1\r\n\r\n", 22), 400},
      {"nul in header", std::string("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", 27), 400},
      {"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
      {"obsolete folding", "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", 400},
      {"no colon", "GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400},
      {"bare CR inside line", "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 400},
      {"bare CR ending the request line", "GET / HTTP/1.1\rHost: a\r\n\r\n", 400},
      {"bad content length", "GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400},
      {"conflicting content lengths",
       "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
      {"request line over limit", std::string("GET /") + std::string(9000, 'a') + " HTTP/1.1\r\n\r\n", 414},
      {"headers over limit", std::string("GET / HTTP/1.1\r\nX: ") + std::string(9000, 'a') + "\r\n\r\n", 431},
      // RFC 9112 §3.2.
      {"1.1 without host", "GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 400},
      {"1.9 without host (processed as 1.1)", "GET / HTTP/1.9\r\n\r\n", 400},
      {"two host fields", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400},
      {"two host fields on 1.0", "GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", 400},
      {"host with a space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
      {"host with a slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
      {"host with userinfo", "GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", 400},
      {"host with a backslash", "GET / HTTP/1.1\r\nHost: a\\b\r\n\r\n", 400},
  };
  return cases;
}

parse_result parse_all(std::string_view input, request& req) {
  request_parser p;
  return p.parse(input, req);
}

}  // namespace

TEST(Parser, ValidRequestsParseWithTheirFields) {
  for (const auto& c : valid_cases()) {
    SCOPED_TRACE(c.label);
    guarded_buffer buf(c.input);
    request req;
    parse_result r = parse_all(buf.view(), req);
    ASSERT_EQ(r.status, parse_status::complete);
    EXPECT_EQ(r.consumed, c.input.size());
    EXPECT_EQ(req.method, c.method);
    EXPECT_EQ(req.target, c.target);
    EXPECT_EQ(req.version_minor, c.minor);
    EXPECT_EQ(req.keep_alive, c.keep_alive);
    EXPECT_EQ(req.header_count, c.headers);
    EXPECT_EQ(req.content_length, c.content_length);
  }
}

// The header storage is not initialised (header_fields); the parser sets every field up to
// header_count, names as sent and values trimmed, and the same request object serves again.
TEST(Parser, HeaderFieldsAreSetUpToTheCountWhenTheObjectIsReused) {
  request req;
  guarded_buffer first("GET / HTTP/1.1\r\nHost: a\r\nX-Long:   spaced value \t\r\nAccept: */*\r\n\r\n");
  ASSERT_EQ(parse_all(first.view(), req).status, parse_status::complete);
  ASSERT_EQ(req.header_count, 3u);
  EXPECT_EQ(req.headers[0].name, "Host");
  EXPECT_EQ(req.headers[0].value, "a");
  EXPECT_EQ(req.headers[1].name, "X-Long");
  EXPECT_EQ(req.headers[1].value, "spaced value");
  EXPECT_EQ(req.headers[2].name, "Accept");
  EXPECT_EQ(req.headers[2].value, "*/*");
  guarded_buffer second("GET /b HTTP/1.0\r\nUser-Agent: x\r\n\r\n");
  ASSERT_EQ(parse_all(second.view(), req).status, parse_status::complete);
  ASSERT_EQ(req.header_count, 1u);
  EXPECT_EQ(req.headers[0].name, "User-Agent");
  EXPECT_EQ(req.headers[0].value, "x");
  EXPECT_EQ(header_fields::capacity(), max_header_fields);
}

TEST(Parser, EveryProperPrefixOfAValidRequestIsIncomplete) {
  for (const auto& c : valid_cases()) {
    SCOPED_TRACE(c.label);
    for (size_t n = 0; n < c.input.size(); ++n) {
      guarded_buffer buf(c.input.substr(0, n));
      request req;
      EXPECT_EQ(parse_all(buf.view(), req).status, parse_status::incomplete) << "prefix " << n;
    }
  }
}

TEST(Parser, OneByteAtATimeResumesAndGivesTheSameResult) {
  for (const auto& c : valid_cases()) {
    SCOPED_TRACE(c.label);
    request_parser p;
    request req;
    for (size_t n = 1; n <= c.input.size(); ++n) {
      guarded_buffer buf(c.input.substr(0, n));  // a new address each time, as after a realloc
      parse_result r = p.parse(buf.view(), req);
      if (n < c.input.size()) {
        ASSERT_EQ(r.status, parse_status::incomplete) << "at " << n;
        continue;
      }
      ASSERT_EQ(r.status, parse_status::complete);
      EXPECT_EQ(req.target, c.target);  // views into buf: checked while it lives
      EXPECT_EQ(req.keep_alive, c.keep_alive);
    }
  }
}

TEST(Parser, MalformedRequestsAreRejectedWithTheirStatus) {
  for (const auto& c : bad_cases()) {
    SCOPED_TRACE(c.label);
    guarded_buffer buf(c.input);
    request req;
    parse_result r = parse_all(buf.view(), req);
    EXPECT_EQ(r.status, parse_status::bad);
    EXPECT_EQ(r.error_status, c.status);
  }
}

TEST(Parser, AStrayCarriageReturnAnywhereInTheHeadIsRejected) {
  // Lines are not searched for CR: each byte is checked by the character class of its place.
  // A CR inserted at every place of every valid request must still give 400.
  size_t checked = 0;
  for (const auto& c : valid_cases()) {
    size_t start = c.input.find_first_not_of("\r\n");  // CRs and LFs before a request are skipped
    for (size_t i = start + 1; i < c.input.size(); ++i) {
      if (c.input[i] == '\n' && c.input[i - 1] != '\r') continue;  // that makes a proper CRLF
      std::string input = c.input;
      input.insert(i, 1, '\r');
      SCOPED_TRACE(std::string(c.label) + " with a CR at " + std::to_string(i));
      request req;
      parse_result r = parse_all(guarded_buffer(input).view(), req);
      // A CR in the final empty line ("\r\r\n") leaves the head unfinished; one more line end
      // finishes it, and the line holding the CR is then bad.
      if (r.status == parse_status::incomplete)
        r = parse_all(guarded_buffer(input + "\r\n").view(), req);
      EXPECT_EQ(r.status, parse_status::bad);
      EXPECT_EQ(r.error_status, 400);
      ++checked;
    }
  }
  EXPECT_GT(checked, 500u);
}

TEST(Parser, TheFieldsItActsOnAreKnownInAnyCaseAndByNoOtherName) {
  // Host, Connection, Content-Length and Transfer-Encoding are matched by folding case with one
  // OR per byte; every name that differs by one token character must not match.
  struct field {
    std::string name, value;
    bool (*acted_on)(const parse_result&, const request&);
  };
  const field fields[] = {
      {"host", "a",
       [](const parse_result& r, const request&) { return r.status == parse_status::complete; }},
      {"connection", "close", [](const parse_result&, const request& q) { return !q.keep_alive; }},
      {"content-length", "5",
       [](const parse_result&, const request& q) { return q.content_length == 5; }},
      {"transfer-encoding", "chunked",
       [](const parse_result&, const request& q) { return q.has_transfer_encoding; }},
  };
  std::string tokens;
  for (int c = 1; c < 256; ++c)
    if (std::isalnum(c) ||
        std::string_view("!#$%&'*+-.^_`|~").find(char(c)) != std::string_view::npos)
      tokens += char(c);
  auto parse_with = [](const field& f, const std::string& name, request& req) {
    // Host is given by its own line unless it is the field under test.
    std::string head = "POST / HTTP/1.1\r\n" + std::string(f.name == "host" ? "" : "Host: a\r\n") +
                       name + ": " + f.value + "\r\n\r\n";
    guarded_buffer buf(head);
    return parse_all(buf.view(), req);
  };
  size_t near_misses = 0;
  for (const field& f : fields) {
    std::string upper = f.name, alternating = f.name;
    for (size_t i = 0; i < f.name.size(); ++i) {
      upper[i] = char(std::toupper(f.name[i]));
      if (i % 2 == 0) alternating[i] = upper[i];
    }
    for (const std::string& name : {f.name, upper, alternating}) {
      request req;
      parse_result r = parse_with(f, name, req);
      EXPECT_TRUE(f.acted_on(r, req)) << name;
    }
    for (size_t i = 0; i < f.name.size(); ++i) {
      for (char c : tokens) {
        if (std::tolower(c) == f.name[i]) continue;
        std::string name = f.name;
        name[i] = c;
        request req;
        parse_result r = parse_with(f, name, req);
        EXPECT_FALSE(f.acted_on(r, req)) << name;
        ++near_misses;
      }
    }
  }
  EXPECT_GT(near_misses, 2000u);
}

TEST(Parser, OversizedInputIsRejectedBeforeTheHeaderBlockEnds) {
  // A client that never finishes its headers must not make us buffer without bound.
  request req;
  EXPECT_EQ(parse_all(std::string("GET /") + std::string(9000, 'a'), req).error_status, 414);
  EXPECT_EQ(parse_all(std::string("GET / HTTP/1.1\r\nX: ") + std::string(9000, 'a'), req).error_status, 431);
}

TEST(Parser, TooManyHeaderFieldsAreRejectedWith431) {
  std::string in = "GET / HTTP/1.1\r\n";
  for (size_t i = 0; i <= max_header_fields; ++i) {
    in += "X";
    in += std::to_string(i);
    in += ": v\r\n";
  }
  in += "\r\n";
  request req;
  EXPECT_EQ(parse_all(in, req).error_status, 431);
}

TEST(Parser, PipelinedRequestsAreParsedOneAfterAnother) {
  std::string in = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n"
                   "GET /3 HTTP/1.1\r\nHost: a\r\n\r\n";
  request_parser p;
  std::string_view rest = in;
  for (const char* target : {"/1", "/2", "/3"}) {
    request req;
    parse_result r = p.parse(rest, req);
    ASSERT_EQ(r.status, parse_status::complete);
    EXPECT_EQ(req.target, target);
    rest.remove_prefix(r.consumed);
    p.reset();
  }
  EXPECT_TRUE(rest.empty());
}

TEST(Parser, ResumingNeverRereadsBytesAlreadySearched) {
  // The request's first page is made unreadable after the first call: if a later call rescans
  // from the start, it crashes. Only the call that completes the header block may read it.
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  char* base = static_cast<char*>(
      mmap(nullptr, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(base, MAP_FAILED);
  std::string in = std::string("GET / HTTP/1.1\r\nHost: a\r\nX: ") + std::string(2 * page - 40, 'a') +
                   "\r\n\r\n";
  ASSERT_LT(in.size(), 3 * page);
  std::memcpy(base, in.data(), in.size());
  request_parser p({8 * 1024, 16 * 1024});
  request req;
  ASSERT_EQ(p.parse({base, page + 100}, req).status, parse_status::incomplete);
  mprotect(base, page, PROT_NONE);
  for (size_t n = page + 101; n < in.size() - 2; n += 7)
    ASSERT_EQ(p.parse({base, n}, req).status, parse_status::incomplete);
  mprotect(base, page, PROT_READ | PROT_WRITE);
  EXPECT_EQ(p.parse({base, in.size()}, req).status, parse_status::complete);
  munmap(base, 3 * page);
}
