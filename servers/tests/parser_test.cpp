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
#include "core/path.hpp"
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

namespace {

// target_is_path by its definition (parser.hpp), byte by byte.
bool is_path_by_definition(std::string_view t) {
  if (t.empty() || t[0] != '/') return false;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '%' || t[i] == '?' || t[i] == '#') return false;
    if (t[i] == '/' && i + 1 < t.size() && (t[i + 1] == '/' || t[i + 1] == '.')) return false;
  }
  return true;
}

// Targets of 1 to 40 bytes with one pattern at every position: the scans take 16 bytes at a
// time while 16 are left, so a pattern lands in every place of a block and across two blocks.
std::vector<std::string> targets_with_patterns() {
  std::vector<std::string> targets;
  for (std::string pattern : {"", "%", "?", "#", "//", "/.", "/a", ".", "a/", "%2e", "/..", "./"}) {
    for (size_t length = 1; length <= 40; ++length) {
      for (size_t at = 1; at + pattern.size() <= length; ++at) {
        std::string filler(length - pattern.size() - 1, 'x');
        std::string t(1, '/');
        t.append(filler, 0, at - 1).append(pattern).append(filler, at - 1);
        targets.push_back(t);
      }
    }
  }
  for (const char* t : {"*", "x/a", "http://h/p", "/", "/index.html", "/a/b/c.html", "/.well"})
    targets.push_back(t);
  return targets;
}

}  // namespace

// The flag lets the connection skip split_target() and normalize_path(): it may be set only
// when both give the target back unchanged, and must be set for ordinary paths.
TEST(Parser, TargetIsPathOnlyWhenSplittingAndNormalisingLeaveItUnchanged) {
  struct expectation {
    const char* target;
    bool is_path;
  };
  for (auto [target, is_path] : std::vector<expectation>{
           {"/", true}, {"/index.html", true}, {"/a/b.c/d", true}, {"/a.b/", true},
           {"/a//b", false}, {"/./a", false}, {"/a/.", false}, {"/a/..", false},
           {"/a%20b", false}, {"/hello?name=x", false}, {"/a#f", false}, {"*", false},
           {"http://h/p", false}, {"/.hidden", false}}) {
    SCOPED_TRACE(target);
    std::string in = std::string("GET ") + target + " HTTP/1.1\r\nHost: a\r\n\r\n";
    request req;
    ASSERT_EQ(parse_all(in, req).status, parse_status::complete);
    EXPECT_EQ(req.target_is_path, is_path);
  }
  for (const std::string& target : targets_with_patterns()) {
    if (!is_path_by_definition(target)) continue;
    SCOPED_TRACE(target);
    std::string_view path, query;
    split_target(target, path, query);
    EXPECT_EQ(path, target);
    EXPECT_TRUE(query.empty());
    std::string out(target.size(), '\0');
    size_t n = 0;
    ASSERT_EQ(normalize_path(target, {out.data(), out.size()}, n), path_status::ok);
    EXPECT_EQ(out.substr(0, n), target);
  }
}

// Each target is parsed with 0 to 20 bytes of header after it (so its scan runs 16 bytes at a
// time, byte by byte, or both), and from a buffer ending at a guard page: the target and the
// flag are the same whichever way it was scanned.
TEST(Parser, TargetScanGivesTheSameAnswerWideAndByteByByte) {
  for (const std::string& target : targets_with_patterns()) {
    SCOPED_TRACE(target);
    for (size_t extra = 0; extra <= 20; ++extra) {
      std::string in = "GET " + target + " HTTP/1.0\r\n" +
                       (extra == 0 ? "" : "X: " + std::string(extra, 'v') + "\r\n") + "\r\n";
      guarded_buffer buf(in);
      request req;
      ASSERT_EQ(parse_all(buf.view(), req).status, parse_status::complete) << extra;
      EXPECT_EQ(req.target, target);
      EXPECT_EQ(req.target_is_path, is_path_by_definition(target)) << extra;
    }
  }
}

// A field value ends at CR or LF; a control byte other than HTAB, or DEL, anywhere in it is a
// 400 and HTAB is kept; at every place of a 16-byte block, with the head ending right after
// the value or 17 bytes later.
TEST(Parser, ValueScanFindsEveryForbiddenByteWideAndByteByByte) {
  for (size_t length = 1; length <= 40; ++length) {
    for (size_t at = 0; at < length; ++at) {
      for (bool more : {false, true}) {
        std::string value(length, 'v');
        std::string tail = more ? "Y: 0123456789abc\r\n\r\n" : "\r\n";
        for (char c : {'\x01', '\x7f', '\x1f', '\0'}) {
          value[at] = c;
          std::string in = "GET / HTTP/1.0\r\nX: " + value + "\r\n" + tail;
          guarded_buffer buf(in);
          request req;
          parse_result r = parse_all(buf.view(), req);
          EXPECT_EQ(r.status, parse_status::bad) << length << " " << at << " " << int(c);
        }
        value[at] = '\t';
        if (at == 0 || at + 1 == length) value[at] = 'w';  // an HTAB at an end is trimmed
        std::string in = "GET / HTTP/1.0\r\nX: " + value + "\r\n" + tail;
        guarded_buffer buf(in);
        request req;
        ASSERT_EQ(parse_all(buf.view(), req).status, parse_status::complete) << length << at;
        EXPECT_EQ(req.headers[0].value, value);
      }
    }
  }
}

// A Host value is uri-host[:port]: each visible or non-ASCII byte, at every place of a block,
// in values that end before, at and after a block's end, with few or many bytes after them.
TEST(Parser, HostValueIsCheckedByteByByteAtEveryPlace) {
  auto allowed = [](unsigned char c) {
    return std::isalnum(c) || std::string_view("-._~%!$&'()*+,;=:[]").find(static_cast<char>(c)) !=
                                  std::string_view::npos;
  };
  for (size_t length : {1, 7, 8, 9, 15, 16, 17, 24, 31, 33}) {
    for (size_t at = 0; at < length; ++at) {
      for (int c = 0x21; c <= 0xff; ++c) {
        if (c == 0x7f) continue;
        std::string host(length, 'h');
        host[at] = static_cast<char>(c);
        for (const char* tail : {"\r\n", "X: 0123456789abcdef\r\n\r\n"}) {
          std::string in = "GET / HTTP/1.1\r\nHost: " + host + "\r\n" + tail;
          request req;
          parse_result r = parse_all(in, req);
          ASSERT_EQ(r.status, allowed(static_cast<unsigned char>(c)) ? parse_status::complete
                                                                     : parse_status::bad)
              << length << " " << at << " " << c;
        }
      }
    }
  }
}
