#include <gtest/gtest.h>

#include <cctype>
#include <string>
#include <vector>

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

// normalize_path's contract written the plain way, for the differential test below: decode every
// escape, then resolve the segments with a stack.
outcome normalize_by_definition(const std::string& raw) {
  if (raw.empty() || raw[0] != '/') return {path_status::bad, ""};
  std::string decoded;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '%') {
      decoded += raw[i];
      continue;
    }
    if (i + 2 >= raw.size() || !std::isxdigit(static_cast<unsigned char>(raw[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(raw[i + 2])))
      return {path_status::bad, ""};
    decoded += static_cast<char>(std::stoi(raw.substr(i + 1, 2), nullptr, 16));
    i += 2;
  }
  if (decoded.find('\0') != std::string::npos) return {path_status::bad, ""};
  std::vector<std::string> kept;
  std::string segment;
  bool trailing_slash = false;
  for (size_t i = 1; i <= decoded.size(); ++i) {
    if (i < decoded.size() && decoded[i] != '/') {
      segment += decoded[i];
      continue;
    }
    trailing_slash = i < decoded.size() || segment.empty() || segment == "." || segment == "..";
    if (segment == "..") {
      if (kept.empty()) return {path_status::forbidden, ""};
      kept.pop_back();
    } else if (!segment.empty() && segment != ".") {
      kept.push_back(segment);
    }
    segment.clear();
  }
  std::string out;
  for (const std::string& s : kept) out += "/" + s;
  if (out.empty() || trailing_slash) out += '/';
  return {path_status::ok, out};
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

TEST(Path, EveryPathOfUpToFivePiecesNormalizesAsTheDefinitionSays) {
  // Every sequence of these pieces, in place and into a separate buffer: the quick check for an
  // already-normal path must never change an answer of the general decoder and resolver.
  const std::vector<std::string> pieces = {"/",   ".", "a",   "%2e",
                                           "%2F", "%", "%41", std::string(1, '\0')};
  std::vector<std::string> paths = {""};
  size_t checked = 0;
  for (int length = 1; length <= 5; ++length) {
    std::vector<std::string> longer;
    for (const std::string& p : paths)
      for (const std::string& piece : pieces) longer.push_back(p + piece);
    paths = std::move(longer);
    for (const std::string& raw : paths) {
      outcome expected = normalize_by_definition(raw);
      outcome got = normalize(raw), in_place = normalize(raw, true);
      ASSERT_EQ(got.status, expected.status) << raw;
      ASSERT_EQ(got.path, expected.path) << raw;
      ASSERT_EQ(in_place.status, expected.status) << raw << " (in place)";
      ASSERT_EQ(in_place.path, expected.path) << raw << " (in place)";
      ++checked;
    }
  }
  EXPECT_EQ(checked, 8u + 64 + 512 + 4096 + 32768);
}

TEST(Path, APathLongerThanTheOutputIsBadEvenWhenAlreadyNormal) {
  char out[4];
  size_t n = 0;
  EXPECT_EQ(normalize_path("/abcde", out, n), path_status::bad);
  EXPECT_EQ(normalize_path("/abc", out, n), path_status::ok);
  EXPECT_EQ(std::string_view(out, n), "/abc");
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
