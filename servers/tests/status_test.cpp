// The status page (GET /server-status): the core answers it with the shared counters as JSON,
// and counts it apart, so that two status reads bracket exactly the requests between them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "core/connection.hpp"
#include "core/content.hpp"
#include "core/stats.hpp"
#include "drive_connection.hpp"

using namespace httpbench::core;
using namespace httpbench::core::test_support;

namespace {

constexpr std::string_view status_request = "GET /server-status HTTP/1.1\r\nHost: x\r\n\r\n";
constexpr std::string_view page_request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

// The number after `"name": ` in a flat JSON object; fails the test when absent.
double number_field(const std::string& json, const std::string& name) {
  size_t at = json.find("\"" + name + "\": ");
  EXPECT_NE(at, std::string::npos) << name << " missing from " << json;
  if (at == std::string::npos) return -1;
  return std::stod(json.substr(at + name.size() + 4));
}

class StatusPage : public ::testing::Test {
 protected:
  void SetUp() override {
    stats_.pid = 4242;
    stats_.started_ns = monotonic_ns() - 2'000'000'000;  // started 2 s ago
  }
  content_store content_ = content_store::builtin();
  server_stats stats_;
};

TEST_F(StatusPage, AnswersJsonWithEveryCounterUptimeAndPid) {
  stats_.requests = 7;
  stats_.connections = 3;
  stats_.bytes_sent = 1000;
  stats_.bytes_received = 500;
  stats_.errors = 15;
  stats_.errors_status = 1;
  stats_.errors_lost = 2;
  stats_.errors_timeout = 3;
  stats_.errors_cut = 4;
  stats_.errors_refused = 5;
  stats_.user_switches = 11;
  connection c(content_, stats_);  // counted: the status request's own connection
  auto rs = split_responses(serve_bytes(c, status_request));
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].status(), 200);
  EXPECT_TRUE(rs[0].has("Content-Type: application/json"));
  EXPECT_TRUE(rs[0].has("Cache-Control: no-store"));
  EXPECT_TRUE(rs[0].has("Content-Length: " + std::to_string(rs[0].body.size())));
  const std::string& body = rs[0].body;
  EXPECT_EQ(body.front(), '{');
  EXPECT_EQ(body.substr(body.size() - 2), "}\n");
  EXPECT_EQ(number_field(body, "requests"), 7);
  EXPECT_EQ(number_field(body, "connections"), 4);
  EXPECT_EQ(number_field(body, "bytes_sent"), 1000);
  EXPECT_EQ(number_field(body, "bytes_received"), 500);
  EXPECT_EQ(number_field(body, "errors"), 15);
  EXPECT_EQ(number_field(body, "errors_status"), 1);
  EXPECT_EQ(number_field(body, "errors_lost"), 2);
  EXPECT_EQ(number_field(body, "errors_timeout"), 3);
  EXPECT_EQ(number_field(body, "errors_cut"), 4);
  EXPECT_EQ(number_field(body, "errors_refused"), 5);
  EXPECT_EQ(number_field(body, "user_switches"), 11);
  EXPECT_EQ(number_field(body, "status_requests"), 1);  // this one
  EXPECT_EQ(number_field(body, "pid"), 4242);
  double uptime = number_field(body, "uptime_s");
  EXPECT_GE(uptime, 2.0);
  EXPECT_LT(uptime, 60.0);
  EXPECT_FALSE(c.wants_close());  // keep-alive as any HTTP/1.1 response
}

TEST_F(StatusPage, StatusRequestsAreNotCountedAsRequestsOrBytes) {
  connection c(content_, stats_);
  std::string ordinary;
  for (int i = 0; i < 3; ++i) ordinary += serve_bytes(c, page_request);
  uint64_t requests = stats_.requests, sent = stats_.bytes_sent, received = stats_.bytes_received;
  ASSERT_EQ(requests, 3u);
  ASSERT_EQ(sent, ordinary.size());
  ASSERT_EQ(received, 3 * page_request.size());

  auto rs = split_responses(serve_bytes(c, status_request));
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(number_field(rs[0].body, "requests"), 3);
  EXPECT_EQ(number_field(rs[0].body, "bytes_sent"), static_cast<double>(ordinary.size()));
  EXPECT_EQ(number_field(rs[0].body, "bytes_received"), 3.0 * page_request.size());
  // After the status response is written, nothing but status_requests moved.
  EXPECT_EQ(stats_.requests, requests);
  EXPECT_EQ(stats_.bytes_sent, sent);
  EXPECT_EQ(stats_.bytes_received, received);
  EXPECT_EQ(stats_.errors, 0u);
  EXPECT_EQ(stats_.status_requests, 1u);
}

TEST_F(StatusPage, PipelinedBetweenOrdinaryRequestsCountsOnlyThem) {
  connection c(content_, stats_);
  std::string in = std::string(page_request) + std::string(status_request) +
                   std::string(page_request);
  std::string out = serve_bytes(c, in);
  auto rs = split_responses(out);
  ASSERT_EQ(rs.size(), 3u);
  EXPECT_EQ(rs[0].body.size(), 305u);
  EXPECT_EQ(number_field(rs[1].body, "requests"), 1);  // the one before it
  EXPECT_EQ(rs[2].body.size(), 305u);
  size_t status_bytes = rs[1].head.size() + 2 + rs[1].body.size();
  EXPECT_EQ(stats_.requests, 2u);
  EXPECT_EQ(stats_.bytes_sent, out.size() - status_bytes);
  EXPECT_EQ(stats_.bytes_received, 2 * page_request.size());
}

TEST_F(StatusPage, QueryStringIsIgnored) {
  connection c(content_, stats_);
  auto rs = split_responses(serve_bytes(c, "GET /server-status?auto&x=1 HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].status(), 200);
  EXPECT_TRUE(rs[0].has("Content-Type: application/json"));
  EXPECT_EQ(stats_.status_requests, 1u);
  EXPECT_EQ(stats_.requests, 0u);
}

TEST_F(StatusPage, HeadGetsTheHeadersWithoutBody) {
  connection c(content_, stats_);
  std::string out = serve_bytes(c, "HEAD /server-status HTTP/1.1\r\nHost: x\r\n\r\n" + std::string(page_request));
  auto rs = split_responses(out, /*head_only=*/true);
  ASSERT_GE(rs.size(), 1u);
  EXPECT_EQ(rs[0].status(), 200);
  EXPECT_TRUE(rs[0].has("Content-Type: application/json"));
  EXPECT_TRUE(rs[0].body.empty());
  // The GET after it starts right after the HEAD's head: no body was sent.
  size_t second = out.find("HTTP/1.1", 1);
  ASSERT_NE(second, std::string::npos);
  EXPECT_EQ(out.substr(second).size(), stats_.bytes_sent);
  EXPECT_EQ(stats_.requests, 1u);
  EXPECT_EQ(stats_.status_requests, 1u);
}

TEST_F(StatusPage, Http10StatusRequestClosesLikeAnyOther) {
  connection c(content_, stats_);
  auto rs = split_responses(serve_bytes(c, "GET /server-status HTTP/1.0\r\n\r\n"));
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_TRUE(rs[0].has("Connection: close"));
  EXPECT_TRUE(c.wants_close());
  EXPECT_FALSE(c.closing_on_error());
}

TEST_F(StatusPage, WithoutStatusPageThePathIsAnOrdinaryMissingFile) {
  connection_limits limits;
  limits.status_path = {};  // --no-status
  connection c(content_, stats_, limits);
  auto rs = split_responses(serve_bytes(c, status_request));
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].status(), 404);
  EXPECT_EQ(stats_.requests, 1u);
  EXPECT_EQ(stats_.errors, 1u);
  EXPECT_EQ(stats_.status_requests, 0u);
}

TEST_F(StatusPage, ConfiguredPathIsAnsweredAndTheDefaultOneIsNot) {
  connection_limits limits;
  limits.status_path = "/stats";
  connection c(content_, stats_, limits);
  auto rs = split_responses(serve_bytes(c, "GET /stats HTTP/1.1\r\nHost: x\r\n\r\n" + std::string(status_request)));
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[0].status(), 200);
  EXPECT_TRUE(rs[0].has("Content-Type: application/json"));
  EXPECT_EQ(rs[1].status(), 404);
  EXPECT_EQ(stats_.status_requests, 1u);
}

TEST_F(StatusPage, OtherMethodsAndRequestsWithBodiesAreOrdinaryRequests) {
  connection c(content_, stats_);
  auto rs = split_responses(serve_bytes(c, "POST /server-status HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab"
                                           "GET /server-status HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nz"));
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[0].status(), 405);
  EXPECT_EQ(rs[1].status(), 404);  // a body: not the status page, and not in the docroot
  EXPECT_EQ(stats_.status_requests, 0u);
  EXPECT_EQ(stats_.requests, 2u);
}

TEST_F(StatusPage, ResponseNeverWrittenLeavesBytesSentAsItWas) {
  stats_.bytes_sent = 5000;
  {
    connection c(content_, stats_);
    EXPECT_EQ(c.feed(status_request), status_request.size());
    ASSERT_TRUE(c.wants_write());
    // Written in part, then the connection is lost.
    pending_output o = c.output();
    ASSERT_FALSE(o.iov.empty());
    c.consumed(10);
  }
  EXPECT_EQ(stats_.bytes_sent, 5000u);
  EXPECT_EQ(stats_.bytes_received, 0u);
}

}  // namespace
