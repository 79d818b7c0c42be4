// URL parsing and resolution.
#include "url.hpp"

#include <gtest/gtest.h>

using namespace httpbench::loadgen;

TEST(Url, ParsesHostPortAndPath) {
  std::string error;
  auto u = parse_url("http://127.0.0.1:8080/index.html?x=1", error);
  ASSERT_TRUE(u) << error;
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 8080);
  EXPECT_EQ(u->path, "/index.html?x=1");
  EXPECT_EQ(u->host_header, "127.0.0.1:8080");
}

TEST(Url, DefaultsPortAndPath) {
  std::string error;
  auto u = parse_url("http://localhost", error);
  ASSERT_TRUE(u) << error;
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->path, "/");
}

TEST(Url, Ipv6Literal) {
  std::string error;
  auto u = parse_url("http://[::1]:9000/", error);
  ASSERT_TRUE(u) << error;
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 9000);
  EXPECT_EQ(u->host_header, "[::1]:9000");
}

TEST(Url, RejectsBadUrlsWithAReason) {
  for (const char* text :
       {"127.0.0.1:80/", "https://x/", "http://", "http://:80/", "http://h:0/", "http://h:99999/",
        "http://h:8x/", "http://[::1/", "http://h/a b", "http://u@h/", "http://h:/"}) {
    std::string error;
    EXPECT_FALSE(parse_url(text, error)) << text;
    EXPECT_NE(error.find("bad URL"), std::string::npos) << text << ": " << error;
  }
}

TEST(Url, ResolvesLoopback) {
  std::string error;
  auto u = parse_url("http://127.0.0.1:1/", error);
  auto a = resolve(*u, error);
  ASSERT_TRUE(a) << error;
  EXPECT_TRUE(a->loopback);
  EXPECT_EQ(a->text, "127.0.0.1");
  u = parse_url("http://localhost:1/", error);
  a = resolve(*u, error);
  ASSERT_TRUE(a) << error;
  EXPECT_TRUE(a->loopback);
}

TEST(Url, NonLoopbackIsFlagged) {
  std::string error;
  auto u = parse_url("http://192.0.2.1/", error);
  auto a = resolve(*u, error);
  ASSERT_TRUE(a) << error;
  EXPECT_FALSE(a->loopback);
}

TEST(Url, UnresolvableHostGivesOneLine) {
  std::string error;
  auto u = parse_url("http://no-such-host.invalid/", error);
  EXPECT_FALSE(resolve(*u, error));
  EXPECT_NE(error.find("cannot resolve host 'no-such-host.invalid'"), std::string::npos) << error;
}
