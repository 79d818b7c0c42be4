#include <gtest/gtest.h>

#include <string>

#include "core/path.hpp"

using namespace httpbench::core;

namespace {

struct outcome {
  path_status status;
  std::string path;
};

outcome normalize(std::string raw, bool in_place = false) {
  std::string out(raw.size() + 1, '\0');
  size_t n = 0;
  path_status s = in_place ? normalize_path(raw, {raw.data(), raw.size()}, n)
                           : normalize_path(raw, {out.data(), out.size()}, n);
  return {s, s == path_status::ok ? (in_place ? raw : out).substr(0, n) : std::string()};
}

}  // namespace

TEST(Path, NormalPathsAreUnchanged) {
  for (const char* p : {"/", "/index.html", "/a/b/c.txt", "/dir/"}) {
    auto r = normalize(p);
    EXPECT_EQ(r.status, path_status::ok) << p;
    EXPECT_EQ(r.path, p);
  }
}

TEST(Path, DotSegmentsAndRepeatedSlashesAreResolved) {
  struct { const char* in; const char* out; } cases[] = {
      {"//a///b", "/a/b"}, {"/./a/./b", "/a/b"}, {"/a/../b", "/b"},
      {"/a/b/..", "/a/"},  {"/a/.", "/a/"},      {"/a/b/../../c", "/c"},
      {"/..a/b..", "/..a/b.."}, {"/a%20b", "/a b"}, {"/%41", "/A"},
  };
  for (auto c : cases) {
    auto r = normalize(c.in);
    EXPECT_EQ(r.status, path_status::ok) << c.in;
    EXPECT_EQ(r.path, c.out) << c.in;
  }
}

TEST(Path, EveryEncodingOfDotDotAboveTheRootIsForbidden) {
  for (const char* p : {"/..", "/../", "/../etc/passwd", "/%2e%2e/x", "/%2E%2E%2Fx", "/..%2fx",
                        "/a/../../x", "/./../x", "/.%2e/x", "/a/%2e%2e/%2e%2e/x"}) {
    EXPECT_EQ(normalize(p).status, path_status::forbidden) << p;
    EXPECT_EQ(normalize(p, true).status, path_status::forbidden) << p << " (in place)";
  }
}

TEST(Path, DoubleEncodingIsDecodedOnlyOnce) {
  // "%252e" is the three characters "%2e", a plain file name, not "..".
  auto r = normalize("/%252e%252e/x");
  EXPECT_EQ(r.status, path_status::ok);
  EXPECT_EQ(r.path, "/%2e%2e/x");
}

TEST(Path, MalformedEscapesNulAndRelativeTargetsAreBad) {
  for (const char* p : {"/%", "/%2", "/%zz", "/a%0", "x/y", "", "*"})
    EXPECT_EQ(normalize(p).status, path_status::bad) << p;
  EXPECT_EQ(normalize(std::string("/a%00b")).status, path_status::bad);
}

TEST(Path, InPlaceDecodingGivesTheSameResult) {
  for (const char* p : {"/a%2Fb/../c", "//x/./y/", "/%41%42%43", "/a/b/c/../../d"}) {
    EXPECT_EQ(normalize(p, true).path, normalize(p).path) << p;
  }
}

TEST(Path, SplitTargetSeparatesPathQueryAndAbsoluteForm) {
  std::string_view path, query;
  split_target("/hello?name=x", path, query);
  EXPECT_EQ(path, "/hello");
  EXPECT_EQ(query, "name=x");
  split_target("http://example.org/a/b?q#frag", path, query);
  EXPECT_EQ(path, "/a/b");
  EXPECT_EQ(query, "q");
  split_target("http://example.org", path, query);
  EXPECT_EQ(path, "");  // the root, as an empty view inside the target
  split_target("/plain", path, query);
  EXPECT_EQ(query, "");
}

TEST(Path, QueryParamDecodesPlusAndEscapes) {
  char buf[64];
  EXPECT_EQ(query_param("a=1&name=J+D%26", "name", buf), 4);
  EXPECT_EQ(std::string_view(buf, 4), "J D&");
  EXPECT_EQ(query_param("a=1", "name", buf), -1);
  EXPECT_EQ(query_param("name=%zz", "name", buf), -2);
  EXPECT_EQ(query_param("name", "name", buf), 0);
  char tiny[2];
  EXPECT_EQ(query_param("name=abc", "name", tiny), -2);
}
