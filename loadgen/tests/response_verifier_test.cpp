// Verification rules: status, length (Content-Length, manifest, first response), body.
#include "response_verifier.hpp"

#include <gtest/gtest.h>

#include <string>

#include "request_table.hpp"

using namespace httpbench::loadgen;

namespace {

/// Parses `wire` completely and returns the verdict, capturing the body like the worker does.
std::optional<error_kind> verify(response_verifier& v, std::size_t target,
                                 const std::string& wire) {
  http_response_parser p;
  p.reset();
  const auto r = p.feed(wire.data(), wire.size());
  EXPECT_EQ(r.status, http_response_parser::outcome::complete) << wire;
  std::string captured;
  bool mismatch = false;
  const bool capturing = v.needs_capture(target);
  if (r.body != nullptr) {
    if (capturing)
      captured.assign(r.body, r.body_length);
    else
      mismatch = !v.body_matches(target, 0, r.body, r.body_length);
  }
  return v.check(target, p, mismatch, capturing ? &captured : nullptr);
}

std::string ok(const std::string& body, int status = 200) {
  return "HTTP/1.1 " + std::to_string(status) +
         " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

}  // namespace

TEST(ResponseVerifier, FirstGoodResponseBecomesTheReference) {
  request_table targets("h", true, 1);
  targets.add("GET", "/");
  response_verifier v(targets, true);
  EXPECT_TRUE(v.needs_capture(0));
  EXPECT_EQ(verify(v, 0, ok("hello")), std::nullopt);
  EXPECT_FALSE(v.needs_capture(0));
  EXPECT_EQ(v.reference_length(0), 5);
  EXPECT_EQ(verify(v, 0, ok("hello")), std::nullopt);
  EXPECT_EQ(verify(v, 0, ok("jello")), error_kind::wrong_body);
  EXPECT_EQ(verify(v, 0, ok("hello!")), error_kind::wrong_length);
}

TEST(ResponseVerifier, NonSuccessStatusIsBadStatusAndNeverAReference) {
  request_table targets("h", true, 1);
  targets.add("GET", "/");
  response_verifier v(targets, true);
  EXPECT_EQ(verify(v, 0, ok("missing", 404)), error_kind::bad_status);
  EXPECT_EQ(verify(v, 0, ok("oops", 500)), error_kind::bad_status);
  EXPECT_TRUE(v.needs_capture(0));
  EXPECT_EQ(verify(v, 0, ok("real")), std::nullopt);
  EXPECT_EQ(v.reference_length(0), 4);
}

TEST(ResponseVerifier, ManifestSizeIsEnforcedFromTheFirstResponse) {
  request_table targets("h", true, 1);
  targets.add("GET", "/a");
  std::string error;
  ASSERT_TRUE(targets.apply_manifest("# sizes\n/a 3\nhttp://h/b 7\n", error)) << error;
  ASSERT_EQ(targets.size(), 2u);
  EXPECT_EQ(targets[1].path, "/b");
  EXPECT_EQ(targets[1].expected_size, 7);
  response_verifier v(targets, true);
  EXPECT_EQ(verify(v, 0, ok("four")), error_kind::wrong_length);
  EXPECT_EQ(verify(v, 0, ok("abc")), std::nullopt);
}

TEST(ResponseVerifier, BodyChecksCanBeTurnedOff) {
  request_table targets("h", true, 1);
  targets.add("GET", "/");
  response_verifier v(targets, false);
  EXPECT_FALSE(v.needs_capture(0));
  EXPECT_EQ(verify(v, 0, ok("aaaa")), std::nullopt);
  EXPECT_EQ(verify(v, 0, ok("bbbb")), std::nullopt);
  EXPECT_EQ(verify(v, 0, ok("ccccc")), error_kind::wrong_length);  // lengths still checked
}

TEST(ResponseVerifier, PerUrlCountsSeparateTimeouts) {
  request_table targets("h", true, 1);
  targets.add("GET", "/");
  response_verifier v(targets, true);
  v.count_ok(0, 10);
  v.count_error(0, error_kind::read_timeout);
  v.count_error(0, error_kind::bad_status);
  EXPECT_EQ(v.counts()[0].ok, 1u);
  EXPECT_EQ(v.counts()[0].errors, 2u);
  EXPECT_EQ(v.counts()[0].timeouts, 1u);
  EXPECT_EQ(v.counts()[0].body_bytes, 10u);
}

TEST(RequestTable, BuildsAbStyleAndKeepAliveRequests) {
  request_table close_mode("127.0.0.1:8080", false, 1);
  close_mode.add("GET", "/x");
  EXPECT_EQ(close_mode[0].wire,
            "GET /x HTTP/1.0\r\nHost: 127.0.0.1:8080\r\nUser-Agent: httpbench-loadgen\r\n"
            "Accept: */*\r\n\r\n");
  request_table keep("h", true, 3);
  keep.add("GET", "/");
  EXPECT_NE(keep[0].wire.find(" HTTP/1.1\r\n"), std::string::npos);
  EXPECT_EQ(keep[0].batch, keep[0].wire + keep[0].wire + keep[0].wire);
  EXPECT_EQ(keep.add("GET", "/"), 0u);  // deduplicated
  const auto post = keep.add("POST", "/f", "a=1");
  EXPECT_NE(keep[post].wire.find("Content-Length: 3\r\n\r\na=1"), std::string::npos);
}
