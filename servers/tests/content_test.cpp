#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/content.hpp"
#include "core/default_page.hpp"

using namespace httpbench::core;
namespace fs = std::filesystem;

namespace {

class temp_docroot {
 public:
  temp_docroot() {
    char tmpl[] = "/tmp/httpbench-content-XXXXXX";
    base_ = mkdtemp(tmpl);
    root_ = base_ / "root";
    fs::create_directories(root_ / "sub");
    write(root_ / "index.html", "<p>root</p>");
    write(root_ / "sub" / "index.html", "<p>sub</p>");
    write(root_ / "big.bin", std::string(100000, 'x'));
    write(root_ / "style.CSS", "a{}");
    write(base_ / "secret.txt", "SECRET");
    fs::create_symlink(base_ / "secret.txt", root_ / "escape.txt");
    fs::create_symlink(root_ / "index.html", root_ / "alias.html");
  }
  ~temp_docroot() { fs::remove_all(base_); }
  std::string root() const { return root_.string(); }

 private:
  static void write(const fs::path& p, const std::string& s) { std::ofstream(p) << s; }
  fs::path base_, root_;
};

}  // namespace

TEST(Content, BuiltinDocrootServesThe305BytePage) {
  content_store store = content_store::builtin();
  for (const char* p : {"/", "/index.html"}) {
    const static_file* f = store.find(p);
    ASSERT_NE(f, nullptr) << p;
    EXPECT_EQ(f->size, 305u);
    EXPECT_EQ(f->body, default_index_html);
    EXPECT_NE(f->head.find("Content-Length: 305\r\n"), std::string::npos);
    EXPECT_NE(f->head.find("Content-Type: text/html"), std::string::npos);
  }
  EXPECT_EQ(store.find("/missing"), nullptr);
}

TEST(Content, DirectoriesMapToTheirIndex) {
  temp_docroot d;
  content_store store = content_store::from_directory(d.root(), 65536);
  EXPECT_EQ(store.find("/")->body, "<p>root</p>");
  EXPECT_EQ(store.find("/sub/")->body, "<p>sub</p>");
  EXPECT_EQ(store.find("/sub")->body, "<p>sub</p>");
}

TEST(Content, LargeFilesAreSentFromTheirFileSmallOnesFromMemory) {
  temp_docroot d;
  content_store store = content_store::from_directory(d.root(), 65536);
  const static_file* big = store.find("/big.bin");
  ASSERT_NE(big, nullptr);
  EXPECT_FALSE(big->in_memory());
  EXPECT_GE(big->fd, 0);
  EXPECT_EQ(big->size, 100000u);
  EXPECT_TRUE(store.find("/index.html")->in_memory());
  content_store all_in_memory = content_store::from_directory(d.root(), 1 << 20);
  EXPECT_TRUE(all_in_memory.find("/big.bin")->in_memory());
}

TEST(Content, SymlinksLeavingTheDocrootAreNeverLoaded) {
  temp_docroot d;
  content_store store = content_store::from_directory(d.root(), 65536);
  EXPECT_EQ(store.find("/escape.txt"), nullptr);
  ASSERT_NE(store.find("/alias.html"), nullptr);  // a link that stays inside is fine
}

TEST(Content, MimeTypesFollowTheExtensionCaseInsensitively) {
  EXPECT_EQ(mime_type("/a/b.html"), "text/html");
  EXPECT_EQ(mime_type("/style.CSS"), "text/css");
  EXPECT_EQ(mime_type("/x.PNG"), "image/png");
  EXPECT_EQ(mime_type("/noext"), "application/octet-stream");
  EXPECT_EQ(mime_type("/dir.d/noext"), "application/octet-stream");
}

TEST(Content, MissingDocrootIsAReadableError) {
  try {
    content_store::from_directory("/nonexistent/httpbench", 65536);
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/httpbench"), std::string::npos);
  }
}

TEST(Content, ErrorPagesCarryTheirStatusAndLength) {
  for (int code : {400, 403, 404, 405, 413, 414, 431, 501, 505}) {
    const static_file& page = content_store::error_page(code);
    EXPECT_TRUE(page.head.starts_with("HTTP/1.1 " + std::to_string(code) + " ")) << code;
    EXPECT_NE(page.head.find("Content-Length: " + std::to_string(page.body.size()) + "\r\n"),
              std::string::npos);
  }
  EXPECT_NE(content_store::error_page(405).head.find("Allow: GET, HEAD\r\n"), std::string::npos);
}

// The path table grows as files are added and is moved with the store: every file of a large
// docroot whose paths differ only inside (as in a SPECweb-like file set) is found under its own
// path, and no near miss (a byte changed, one byte more, a prefix) finds anything.
TEST(Content, EveryPathOfALargeDocrootFindsItsOwnFileAndNoNearMissFindsAny) {
  char tmpl[] = "/tmp/httpbench-content-XXXXXX";
  fs::path root = mkdtemp(tmpl);
  struct remove_at_exit {
    fs::path dir;
    ~remove_at_exit() { fs::remove_all(dir); }  // also when an ASSERT returns early
  } cleanup{root};
  std::vector<std::string> paths;
  for (int dir = 0; dir < 20; ++dir) {
    for (int file = 0; file < 50; ++file) {
      std::string rel = "dir" + std::to_string(1000 + dir) + "/class1_" + std::to_string(file);
      fs::create_directories(root / ("dir" + std::to_string(1000 + dir)));
      std::ofstream(root / rel) << rel;
      paths.push_back("/" + rel);
    }
  }
  content_store loaded = content_store::from_directory(root.string(), 65536);
  content_store store = std::move(loaded);
  EXPECT_EQ(store.file_count(), paths.size());
  for (const std::string& p : paths) {
    const static_file* f = store.find(p);
    ASSERT_NE(f, nullptr) << p;
    EXPECT_EQ("/" + f->body, p);
    std::string changed = p;
    changed[5] = 'x';
    EXPECT_EQ(store.find(changed), nullptr) << changed;
    EXPECT_EQ(store.find(p + "z"), nullptr);
    EXPECT_EQ(store.find(p.substr(0, p.size() - 1) + "z"), nullptr);
    EXPECT_EQ(store.find(p.substr(0, 9)), nullptr);  // "/dir1000/"
    EXPECT_EQ(store.find(std::string_view(p).substr(0, 7)), nullptr);
  }
  EXPECT_EQ(store.find(""), nullptr);
}

TEST(Content, PathsAroundTheLengthASlotHoldsItselfFindOnlyTheirOwnFile) {
  // Up to 36 bytes a path is compared in its slot; longer ones in the store's string. Paths that
  // differ only in their last byte, on both sides of that length, and one beyond it.
  char tmpl[] = "/tmp/httpbench-content-XXXXXX";
  fs::path root = mkdtemp(tmpl);
  struct remove_at_exit {
    fs::path dir;
    ~remove_at_exit() { fs::remove_all(dir); }
  } cleanup{root};
  std::vector<std::string> paths;
  for (size_t length : {35, 36, 37, 38, 70}) {
    for (char last : {'1', '2'}) {
      std::string name = std::string(length - 2, 'a') + last;  // "/" + name is `length` bytes
      std::ofstream(root / name) << name;
      paths.push_back("/" + name);
    }
  }
  content_store store = content_store::from_directory(root.string(), 65536);
  for (const std::string& p : paths) {
    const static_file* f = store.find(p);
    ASSERT_NE(f, nullptr) << p.size();
    EXPECT_EQ("/" + f->body, p);
    EXPECT_EQ(store.find(p.substr(0, p.size() - 1) + "3"), nullptr) << p.size();
    EXPECT_EQ(store.find(p.substr(0, p.size() - 1)), nullptr) << p.size();
    std::string early = p;
    early[20] = 'b';  // inside what a slot holds, for every length here
    EXPECT_EQ(store.find(early), nullptr) << p.size();
  }
}
