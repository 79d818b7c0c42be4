#pragma once
/// The document root, loaded once at start: every file's response head is built in advance;
/// small bodies are kept in memory (sent with writev), large ones as open files (sent with
/// sendfile). Nothing outside the document root is ever loaded, so nothing outside it can be
/// served.
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "unique_fd.hpp"

namespace httpbench::core {

/// A complete response except for the Date and Connection lines.
struct static_file {
  std::string head;   ///< status line and headers up to (not including) Date/Connection/CRLF
  std::string body;   ///< the body, when kept in memory
  int fd = -1;        ///< open file to sendfile from, when not in memory (owned by the store)
  uint64_t size = 0;  ///< body size
  bool in_memory() const { return fd < 0; }
};

/// Builds the head of a response: "HTTP/1.1 <status> <reason>\r\nServer: ...\r\n" plus
/// Content-Type, Content-Length and `extra_headers` (each ending in CRLF).
std::string build_head(int status, std::string_view content_type, uint64_t content_length,
                       std::string_view extra_headers = {});

/// The reason phrase of a status code.
std::string_view reason_phrase(int status);

/// The MIME type for a file name, by extension.
std::string_view mime_type(std::string_view filename);

class content_store {
 public:
  /// Loads every regular file below `docroot` (symlinks are followed only when their target
  /// stays inside `docroot`). Throws std::runtime_error with a readable message at start-up.
  static content_store from_directory(const std::string& docroot, size_t sendfile_threshold);

  /// The built-in document root: "/" and "/index.html" are the 305-byte page.
  static content_store builtin();

  /// The file for a normalised path ("/", "/dir/" and "/dir" map to the directory's
  /// index.html), or nullptr. The pointer stays valid for the store's lifetime.
  const static_file* find(std::string_view path) const;

  /// The stock response for an error status (400, 403, 404, 405, 413, 414, 431, 500, 501, 505).
  static const static_file& error_page(int status);

  size_t file_count() const { return files_.size(); }
  uint64_t bytes_in_memory() const { return bytes_in_memory_; }

  content_store(content_store&&) noexcept = default;
  content_store& operator=(content_store&&) noexcept = default;

 private:
  content_store() = default;
  void add(std::string path, std::shared_ptr<static_file> file);

  /// Hashes a path 8 bytes at a time (the last word overlapping the one before it), in the
  /// core's hot text: std::hash's murmur lives in libstdc++ — one more code page that every
  /// forked child faults in and that a process or thread woken among a hundred others finds
  /// cold (docs/methodology.md, fork's page faults).
  static uint64_t hash_path(std::string_view path);
  /// The slot that holds `path` (whose hash is `hash`), or the empty one where it would go.
  /// slots_ must not be empty.
  size_t slot_of(std::string_view path, uint64_t hash) const;
  struct slot;
  static slot make_slot(std::string_view path, uint64_t hash, const static_file* file);

  /// One slot of the open-addressed table (linear probing, at most half full): find() hashes
  /// the path, takes the slot its hash's top bits name and compares one or two slots; no
  /// division, no call (std::unordered_map's find took 130 instructions for "/index.html").
  /// A slot is one cache line and holds a path of up to inline_path bytes itself, so a lookup
  /// reads the store's first line and one slot's, not also the line of the path's string: in a
  /// worker woken among a hundred others each of those lines is a miss.
  static constexpr size_t inline_path = 36;
  struct alignas(64) slot {
    uint64_t hash = 0;
    const static_file* file = nullptr;  ///< nullptr: a free slot
    const char* path = nullptr;         ///< into files_
    uint32_t length = 0;
    char prefix[inline_path] = {};      ///< the path, when it is no longer than inline_path
    bool holds(std::string_view p, uint64_t h) const {
      return hash == h && length == p.size() &&
             std::memcmp(length <= inline_path ? prefix : path, p.data(), p.size()) == 0;
    }
  };
  /// Read by every lookup, so first: one line with the object's start.
  std::vector<slot> slots_;
  unsigned slot_bits_ = 0;  ///< slots_.size() == 1 << slot_bits_
  /// The files by path, first added wins. A deque: its strings never move, so the slots'
  /// pointers stay valid as it grows and when the store is moved.
  std::deque<std::pair<std::string, std::shared_ptr<static_file>>> files_;
  std::vector<unique_fd> open_files_;  ///< files kept open for sendfile
  uint64_t bytes_in_memory_ = 0;
};

}  // namespace httpbench::core
