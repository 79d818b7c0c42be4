// httperf's --wsesslog format and the think-time distributions.
#include "wsesslog.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "think_time.hpp"

using namespace httpbench::loadgen;

namespace {

std::string read_data(const char* name) {
  std::ifstream in(std::string(LOADGEN_TEST_DATA) + "/" + name, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<session_definition> parse_ok(std::string_view text) {
  std::string error;
  auto sessions = parse_wsesslog(text, error);
  EXPECT_TRUE(sessions) << error;
  return sessions ? *sessions : std::vector<session_definition>{};
}

}  // namespace

TEST(Wsesslog, ParsesTheHttperfManualExample) {
  // man httperf, --wsesslog, verbatim (data/httperf-manual.wsesslog).
  const std::string text = read_data("httperf-manual.wsesslog");
  ASSERT_NE(text.find("contents=\"Multiline\\ndata\""), std::string::npos);
  const auto sessions = parse_ok(text);
  ASSERT_EQ(sessions.size(), 2u);
  const auto& s1 = sessions[0];
  ASSERT_EQ(s1.bursts.size(), 2u);
  EXPECT_EQ(s1.bursts[0].think_s, 2.0);
  ASSERT_EQ(s1.bursts[0].requests.size(), 3u);
  EXPECT_EQ(s1.bursts[0].requests[0].path, "/foo.html");
  EXPECT_EQ(s1.bursts[0].requests[1].path, "/pict1.gif");
  EXPECT_EQ(s1.bursts[0].requests[2].path, "/pict2.gif");
  ASSERT_EQ(s1.bursts[1].requests.size(), 3u);
  EXPECT_EQ(s1.bursts[1].requests[0].method, "POST");
  EXPECT_EQ(s1.bursts[1].requests[0].contents, "Post data");
  EXPECT_EQ(s1.bursts[1].requests[2].path, "/pict4.gif");
  EXPECT_LT(s1.bursts[1].think_s, 0);
  const auto& s2 = sessions[1];
  ASSERT_EQ(s2.bursts.size(), 2u);
  EXPECT_EQ(s2.bursts[0].requests[0].method, "POST");
  EXPECT_EQ(s2.bursts[0].requests[0].contents, "Multiline\ndata");
  EXPECT_EQ(s2.bursts[1].requests[0].path, "/foo4.html");
  EXPECT_EQ(s2.bursts[1].requests[0].method, "HEAD");
  EXPECT_LT(s2.bursts[1].think_s, 0);
}

TEST(Wsesslog, ParsesEveryConstructTheManualAndTheParserKnow) {
  const auto sessions = parse_ok(read_data("every-construct.wsesslog"));
  ASSERT_EQ(sessions.size(), 3u);
  const auto& s1 = sessions[0];
  ASSERT_EQ(s1.bursts.size(), 2u);
  ASSERT_EQ(s1.bursts[0].requests.size(), 3u);
  EXPECT_EQ(s1.bursts[0].requests[2].path, "/logo.png");  // space-indented member
  EXPECT_EQ(s1.bursts[0].think_s, 0.05);
  EXPECT_EQ(s1.bursts[1].requests[0].contents, "name=a b&x=1");
  EXPECT_EQ(s1.bursts[1].think_s, 0.02);  // think= on an embedded object's line
  const auto& s2 = sessions[1];
  ASSERT_EQ(s2.bursts.size(), 3u);
  EXPECT_EQ(s2.bursts[0].requests[0].contents, "Multiline\ndata");
  EXPECT_EQ(s2.bursts[1].requests[0].method, "PUT");
  EXPECT_EQ(s2.bursts[1].requests[0].contents, "line one\nline two");  // backslash-newline
  EXPECT_EQ(s2.bursts[1].think_s, 0.01);  // on the continuation line
  ASSERT_EQ(s2.bursts[2].requests.size(), 4u);
  EXPECT_EQ(s2.bursts[2].requests[0].method, "HEAD");
  EXPECT_EQ(s2.bursts[2].requests[1].method, "DELETE");
  EXPECT_EQ(s2.bursts[2].requests[2].method, "OPTIONS");
  EXPECT_EQ(s2.bursts[2].requests[3].method, "TRACE");
  const auto& s3 = sessions[2];
  ASSERT_EQ(s3.bursts.size(), 1u);  // an indented first line starts the session's burst
  ASSERT_EQ(s3.bursts[0].requests.size(), 2u);
  EXPECT_EQ(s3.bursts[0].requests[0].path, "/first-line-indented");
  EXPECT_EQ(s3.bursts[0].requests[1].contents, "its\t'");
  EXPECT_EQ(s3.bursts[0].requests[1].method, "POST");
}

TEST(Wsesslog, ReadsAttributesAsHttperfsParserDoes) {
  // Words are whitespace-separated; the URI is sent as written; method= takes the first
  // known method it starts with; contents= without quotes ends at whitespace, escapes
  // included; an unterminated quote runs to the end of the line, its newline included.
  const auto sessions =
      parse_ok("foo.html method=POSTAL contents=a\\ b\\\"c\n\t#frag think=3\n"
               "/x contents='open\n\n/y contents=\"a'b\" method=GET\r\n");
  ASSERT_EQ(sessions.size(), 2u);
  const auto& b = sessions[0].bursts;
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0].requests[0].path, "foo.html");
  EXPECT_EQ(b[0].requests[0].method, "POST");
  EXPECT_EQ(b[0].requests[0].contents, "a b\"c");
  EXPECT_EQ(b[0].requests[1].path, "#frag");  // '#' not first on the line: a URI
  EXPECT_EQ(b[0].think_s, 3.0);
  EXPECT_EQ(b[1].requests[0].contents, "open\n");
  EXPECT_EQ(sessions[1].bursts[0].requests[0].contents, "a'b");
  EXPECT_EQ(sessions[1].bursts[0].requests[0].method, "GET");
}

TEST(Wsesslog, SeveralBlankLinesMakeNoEmptySession) {
  const auto sessions = parse_ok("/a\n\n\n   \n\t\n/b\n");
  EXPECT_EQ(sessions.size(), 2u);
}

TEST(Wsesslog, CrLfLinesAreAccepted) {
  const auto sessions = parse_ok("/a think=1\r\n\t/b\r\n\r\n/c\r\n");
  ASSERT_EQ(sessions.size(), 2u);
  EXPECT_EQ(sessions[0].bursts[0].requests[1].path, "/b");
  EXPECT_EQ(sessions[0].bursts[0].think_s, 1.0);
}

TEST(Wsesslog, RejectsWhatHttperfRejectsNamingTheLine) {
  const char* bad[] = {
      "/a method=PATCH\n",                 // unknown method
      "/a think=x\n",                      // not a number
      "/a colour=blue\n",                  // unknown attribute
      "/a contents=\n",                    // an empty attribute is not recognised
      "/a method=POST contents='x\\\n",    // backslash-newline at the end of the file
      "# only comments\n\n",               // nothing
      "/a think=-1\n",                     // negative think time
  };
  for (const char* text : bad) {
    std::string error;
    EXPECT_FALSE(parse_wsesslog(text, error)) << text;
    EXPECT_FALSE(error.empty()) << text;
  }
  std::string error;
  parse_wsesslog("/ok\n/a method=PATCH\n", error);
  EXPECT_NE(error.find("line 2"), std::string::npos) << error;
  EXPECT_FALSE(parse_wsesslog("/a" + std::string(10000, 'x') + "\n", error));
}

TEST(ThinkTime, ParetoHasTheRequestedMeanAndScale) {
  pareto_think_time d(3.0, 1.5);  // Barford & Crovella: scale 1 s
  std::mt19937_64 rng(3);
  double min = 1e9;
  for (int i = 0; i < 1000; ++i) min = std::min(min, d(rng));
  EXPECT_GE(min, 1.0);
  EXPECT_LT(min, 1.01);
  EXPECT_DOUBLE_EQ(d.mean(), 3.0);
  // Heavy tail: the median of Pareto(1, 1.5) is 2^(1/1.5) = 1.587.
  std::vector<double> xs;
  for (int i = 0; i < 100001; ++i) xs.push_back(d(rng));
  std::nth_element(xs.begin(), xs.begin() + 50000, xs.end());
  EXPECT_NEAR(xs[50000], std::pow(2.0, 1 / 1.5), 0.03);
}

TEST(ThinkTime, WeibullHasTheRequestedMean) {
  weibull_think_time d(0.343, 0.382);
  EXPECT_NEAR(d.mean(), 0.343, 1e-9);
  std::mt19937_64 rng(11);
  double sum = 0;
  const int n = 400000;
  for (int i = 0; i < n; ++i) sum += d(rng);
  EXPECT_NEAR(sum / n, 0.343, 0.343 * 0.05);
}
