#include "content.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>

#include "default_page.hpp"
#include "hot.hpp"

namespace httpbench::core {
namespace fs = std::filesystem;

namespace {

// Keeping every body in memory is the point of the cache, but a huge docroot must not exhaust
// memory: beyond this budget bodies are sent from their files whatever their size.
constexpr uint64_t memory_budget = 1ull << 30;

bool inside(const fs::path& root, const fs::path& p) {
  auto r = root.begin(), q = p.begin();
  for (; r != root.end(); ++r, ++q)
    if (q == p.end() || *r != *q) return false;
  return true;
}

std::string read_whole_file(int fd, uint64_t size, const std::string& name) {
  std::string body(size, '\0');
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(fd, body.data() + done, size - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error("cannot read " + name + ": " + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  return body;
}

}  // namespace

std::string_view reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

std::string_view mime_type(std::string_view filename) {
  static constexpr std::pair<std::string_view, std::string_view> table[] = {
      {".html", "text/html"},         {".htm", "text/html"},
      {".txt", "text/plain"},         {".css", "text/css"},
      {".js", "text/javascript"},     {".json", "application/json"},
      {".xml", "application/xml"},    {".png", "image/png"},
      {".jpg", "image/jpeg"},         {".jpeg", "image/jpeg"},
      {".gif", "image/gif"},          {".svg", "image/svg+xml"},
      {".ico", "image/x-icon"},       {".webp", "image/webp"},
      {".pdf", "application/pdf"},    {".wasm", "application/wasm"},
      {".mp4", "video/mp4"},          {".csv", "text/csv"},
  };
  size_t slash = filename.rfind('/');
  size_t dot = filename.rfind('.');
  if (dot != std::string_view::npos && (slash == std::string_view::npos || dot > slash)) {
    std::string_view ext = filename.substr(dot);
    for (auto [e, type] : table)
      if (ext.size() == e.size() &&
          std::equal(ext.begin(), ext.end(), e.begin(),
                     [](char a, char b) { return (a | 0x20) == b || a == b; }))
        return type;
  }
  return "application/octet-stream";
}

std::string build_head(int status, std::string_view content_type, uint64_t content_length,
                       std::string_view extra_headers) {
  std::string head = "HTTP/1.1 " + std::to_string(status) + " ";
  head += reason_phrase(status);
  head += "\r\nServer: httpbench\r\nContent-Type: ";
  head += content_type;
  if (content_type.starts_with("text/")) head += "; charset=utf-8";
  head += "\r\nContent-Length: " + std::to_string(content_length) + "\r\n";
  head += extra_headers;
  return head;
}

HTTPBENCH_HOT uint64_t content_store::hash_path(std::string_view path) {
  // Each word is multiplied in, and the product's high half folded down: a multiplication only
  // carries differences upwards, so without the fold, differences in the high bytes of two
  // words (the digits of "/dir1003/class1_7") cancel (80 of 1,000 such paths collided).
  constexpr uint64_t k = 0x9e3779b97f4a7c15ull;  // 2^64 / golden ratio, odd
  auto mix = [](uint64_t h, uint64_t word) {
    h = (h ^ word) * k;
    return h ^ (h >> 32);
  };
  const char* p = path.data();
  size_t n = path.size();
  uint64_t h = (n + 1) * k;
  uint64_t word = 0;
  if (n >= 8) {
    for (size_t i = 0; i + 8 < n; i += 8) {
      std::memcpy(&word, p + i, 8);
      h = mix(h, word);
    }
    std::memcpy(&word, p + n - 8, 8);  // the last 8 bytes, overlapping the word before
  } else {
    for (size_t i = 0; i < n; ++i) word |= uint64_t(static_cast<unsigned char>(p[i])) << (8 * i);
  }
  return mix(h, word) * k;  // the slot is taken from the top bits, a product's best mixed
}

// inline: only this file calls it, and find() with its probe in one piece is 19 instructions a
// request shorter (footprint.py) than with a call.
inline size_t content_store::slot_of(std::string_view path, uint64_t hash) const {
  size_t mask = slots_.size() - 1;
  size_t i = hash >> (64 - slot_bits_);
  while (slots_[i].file != nullptr && !slots_[i].holds(path, hash))
    i = (i + 1) & mask;  // the table is never full, so an empty slot ends every probe
  return i;
}

content_store::slot content_store::make_slot(std::string_view path, uint64_t hash, const static_file* file) {
  slot s;
  s.hash = hash;
  s.file = file;
  s.path = path.data();
  s.length = static_cast<uint32_t>(path.size());
  if (path.size() <= inline_path) std::memcpy(s.prefix, path.data(), path.size());
  return s;
}

void content_store::add(std::string path, std::shared_ptr<static_file> file) {
  if (path.empty()) return;
  uint64_t hash = hash_path(path);
  if (!slots_.empty() && slots_[slot_of(path, hash)].file != nullptr) return;  // the first file stays
  files_.emplace_back(std::move(path), std::move(file));
  if (2 * files_.size() > slots_.size()) {  // at most half full: grow, and place every path again
    slot_bits_ = std::max(4u, slot_bits_ + 1);
    slots_.assign(size_t{1} << slot_bits_, slot{});
    for (const auto& [p, f] : files_) {
      uint64_t h = hash_path(p);
      slots_[slot_of(p, h)] = make_slot(p, h, f.get());
    }
  } else {
    const auto& [p, f] = files_.back();
    slots_[slot_of(p, hash)] = make_slot(p, hash, f.get());
  }
}

content_store content_store::builtin() {
  content_store store;
  auto index = std::make_shared<static_file>();
  index->body = default_index_html;
  index->size = index->body.size();
  index->head = build_head(200, "text/html", index->size);
  store.bytes_in_memory_ = index->size;
  store.add("/", index);
  store.add("/index.html", index);
  return store;
}

content_store content_store::from_directory(const std::string& docroot,
                                            size_t sendfile_threshold) {
  std::error_code ec;
  fs::path root = fs::canonical(docroot, ec);
  if (ec) throw std::runtime_error("docroot " + docroot + ": " + ec.message());
  if (!fs::is_directory(root)) throw std::runtime_error("docroot " + docroot + " is not a directory");

  content_store store;
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec);
  if (ec) throw std::runtime_error("docroot " + docroot + ": " + ec.message());
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) throw std::runtime_error("walking " + docroot + ": " + ec.message());
    const fs::path& p = it->path();
    // Resolve symlinks and refuse anything whose real location is outside the root.
    fs::path real = fs::canonical(p, ec);
    if (ec || !inside(root, real) || !fs::is_regular_file(real, ec)) {
      ec.clear();
      continue;
    }
    std::string name = p.string();
    unique_fd fd(::open(real.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) continue;  // unreadable files are simply not served
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) continue;
    auto file = std::make_shared<static_file>();
    file->size = static_cast<uint64_t>(st.st_size);
    file->head = build_head(200, mime_type(name), file->size);
    if (file->size < sendfile_threshold && store.bytes_in_memory_ + file->size <= memory_budget) {
      file->body = read_whole_file(fd.get(), file->size, name);
      store.bytes_in_memory_ += file->size;
    } else {
      file->fd = fd.get();
      store.open_files_.push_back(std::move(fd));
    }
    std::string rel = "/";
    rel += p.lexically_relative(root).generic_string();
    if (p.filename() == "index.html") {
      std::string dir = rel.substr(0, rel.size() - std::string_view("index.html").size());
      store.add(dir, file);  // "/dir/"
      if (dir.size() > 1) store.add(dir.substr(0, dir.size() - 1), file);  // "/dir"
    }
    store.add(std::move(rel), std::move(file));
  }
  return store;
}

HTTPBENCH_HOT const static_file* content_store::find(std::string_view path) const {
  if (slots_.empty()) return nullptr;
  return slots_[slot_of(path, hash_path(path))].file;
}

const static_file& content_store::error_page(int status) {
  static const auto pages = [] {
    constexpr std::array<int, 11> codes = {400, 403, 404, 405, 413, 414, 431, 500, 501, 503, 505};
    std::array<std::pair<int, static_file>, codes.size()> out{};
    for (size_t i = 0; i < codes.size(); ++i) {
      int code = codes[i];
      std::string reason(reason_phrase(code));
      static_file f;
      f.body = "<html><head><title>" + std::to_string(code) + " " + reason +
               "</title></head><body><h1>" + std::to_string(code) + " " + reason +
               "</h1></body></html>\n";
      f.size = f.body.size();
      f.head = build_head(code, "text/html", f.size, code == 405 ? "Allow: GET, HEAD\r\n" : "");
      out[i] = {code, std::move(f)};
    }
    return out;
  }();
  for (const auto& [code, page] : pages)
    if (code == status) return page;
  return error_page(500);
}

}  // namespace httpbench::core
