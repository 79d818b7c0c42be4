// httperf's --wsesslog format and the think-time distributions.
#include "wsesslog.hpp"

#include <gtest/gtest.h>

#include <random>

#include "think_time.hpp"

using namespace httpbench::loadgen;

namespace {
// The example of httperf's manual page.
constexpr const char* manual_example = R"(# Comment lines start with a ``#'' as the first
# character.  Lines with only whitespace delimit
# sessions (multiple blank lines do not generate
# ``null'' sessions).

# session 1 definition (this is a comment)

/foo.html think=2.0
	/pict1.gif
	/pict2.gif
/foo2.html method=POST contents='Post data'
	/pict3.gif
	/pict4.gif

# session 2 definition

/foo3.html method=POST contents="Post data"
/foo4.html think=1.5 method=POST contents='Post data'
)";
}  // namespace

TEST(Wsesslog, ParsesTheHttperfManualExample) {
  std::string error;
  const auto sessions = parse_wsesslog(manual_example, error);
  ASSERT_TRUE(sessions) << error;
  ASSERT_EQ(sessions->size(), 2u);
  const auto& s1 = (*sessions)[0];
  ASSERT_EQ(s1.bursts.size(), 2u);
  EXPECT_EQ(s1.bursts[0].think_s, 2.0);
  ASSERT_EQ(s1.bursts[0].requests.size(), 3u);
  EXPECT_EQ(s1.bursts[0].requests[0].path, "/foo.html");
  EXPECT_EQ(s1.bursts[0].requests[2].path, "/pict2.gif");
  EXPECT_EQ(s1.bursts[1].requests[0].method, "POST");
  EXPECT_EQ(s1.bursts[1].requests[0].contents, "Post data");
  EXPECT_LT(s1.bursts[1].think_s, 0);
  const auto& s2 = (*sessions)[1];
  ASSERT_EQ(s2.bursts.size(), 2u);
  EXPECT_EQ(s2.bursts[0].requests[0].contents, "Post data");
  EXPECT_EQ(s2.bursts[1].think_s, 1.5);
  EXPECT_EQ(s2.bursts[1].requests.size(), 1u);
}

TEST(Wsesslog, SeveralBlankLinesMakeNoEmptySession) {
  std::string error;
  const auto sessions = parse_wsesslog("/a\n\n\n   \n/b\n", error);
  ASSERT_TRUE(sessions) << error;
  EXPECT_EQ(sessions->size(), 2u);
}

TEST(Wsesslog, CrLfLinesAreAccepted) {
  std::string error;
  const auto sessions = parse_wsesslog("/a think=1\r\n\t/b\r\n\r\n/c\r\n", error);
  ASSERT_TRUE(sessions) << error;
  ASSERT_EQ(sessions->size(), 2u);
  EXPECT_EQ((*sessions)[0].bursts[0].requests[1].path, "/b");
}

TEST(Wsesslog, RejectsBadInputNamingTheLine) {
  const char* bad[] = {
      "\t/orphan\n",          // burst member without a burst
      "/a method=PUT\n",      // unsupported method
      "/a think=x\n",         // bad number
      "/a colour=blue\n",     // unknown attribute
      "/a contents='open\n",  // unterminated quote
      "foo.html\n",           // not a path
      "/a\n\t/b think=1\n",   // think on a member line
      "# only comments\n\n",  // nothing
  };
  for (const char* text : bad) {
    std::string error;
    EXPECT_FALSE(parse_wsesslog(text, error)) << text;
    EXPECT_FALSE(error.empty()) << text;
  }
  std::string error;
  parse_wsesslog("/ok\n/a method=PUT\n", error);
  EXPECT_NE(error.find("line 2"), std::string::npos) << error;
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
