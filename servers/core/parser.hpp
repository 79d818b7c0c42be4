#pragma once
/// Incremental, zero-copy HTTP/1.x request parser (in the style of picohttpparser).
///
/// The parser never allocates and never copies: every string_view in a `request` points into the
/// caller's buffer. It resumes where it stopped: bytes already searched for the end of the header
/// block are not searched again, so a client sending one byte at a time costs O(n), not O(n^2).
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace httpbench::core {

struct header_field {
  std::string_view name;
  std::string_view value;  ///< leading and trailing whitespace removed
};

/// Limits enforced while parsing; a request over a limit is rejected with the status named.
struct parser_limits {
  size_t max_request_line = 8 * 1024;  ///< 414 URI Too Long beyond this
  size_t max_header_bytes = 8 * 1024;  ///< request line + headers; 431 beyond this
};

inline constexpr size_t max_header_fields = 64;  ///< more is answered with 431

/// Room for a request's header fields, left uninitialised: the parser writes fields
/// [0, header_count) before anything may read them. A `request` lives on the stack of every
/// request's handling, and 64 string_view pairs constructed each time were 2 KiB of stores per
/// request — on a thread-per-connection server, to a stack that is cold after every switch (a
/// reference server touching 16 KiB more per request ran at 0.85× its plain self).
class header_fields {
 public:
  header_fields() {}  // NOLINT: deliberately leaves the fields uninitialised
  header_field& operator[](size_t i) { return fields_[i]; }
  const header_field& operator[](size_t i) const { return fields_[i]; }
  static constexpr size_t capacity() { return max_header_fields; }

 private:
  union {
    header_field fields_[max_header_fields];
  };
};

/// A parsed request. Every view points into the buffer given to request_parser::parse() and
/// stays valid as long as those bytes are neither moved nor overwritten.
struct request {
  std::string_view method;
  std::string_view target;  ///< as sent, still percent-encoded
  /// True when the target is a path that split_target() and normalize_path() (path.hpp) give
  /// back unchanged: it starts with '/' and holds no '%', '?', '#', "//" or "/." — most
  /// requests' targets. The parser finds this in the pass it makes over the target anyway, so
  /// the connection need not look at the target's bytes again.
  bool target_is_path = false;
  /// 0 for HTTP/1.0, 1 for HTTP/1.1 to 1.9 (a higher minor version is processed as the highest
  /// we implement, RFC 9110 §2.5).
  int version_minor = 1;
  // Every scalar before the fields: a request lives on the stack, and these then share the
  // cache lines of the views above instead of lying 2 KiB further on.
  size_t header_count = 0;
  bool keep_alive = true;        ///< after the version default and the Connection header
  bool has_transfer_encoding = false;  ///< a body whose length we cannot frame
  uint64_t content_length = 0;   ///< body bytes that follow the header block
  header_fields headers;  ///< [0, header_count) are set
};

enum class parse_status { complete, incomplete, bad };

struct parse_result {
  parse_status status = parse_status::incomplete;
  size_t consumed = 0;  ///< bytes of the request line and headers (complete only)
  int error_status = 0; ///< HTTP status to answer with (bad only): 400, 414, 431 or 505
};

/// Request syntax (RFC 9112): the request line is `method SP target SP HTTP/1.d`; another
/// major version is 505. Lines end in CRLF or a bare LF (§2.2 lets a recipient accept it, and
/// nginx does); a bare CR anywhere is 400. An HTTP/1.1 request without a Host field, any
/// request with two, or a Host value that is not a uri-host[:port], is 400 (§3.2).
///
/// Parses one request at a time. Call parse() with all bytes received so far for the current
/// request (starting at its first byte); on `incomplete`, call again with more bytes appended.
/// After `complete` or `bad`, call reset() before the next request.
class request_parser {
 public:
  explicit request_parser(parser_limits limits = {}) : limits_(limits) {}

  /// Parses `input`, which begins at the first byte of the request.
  parse_result parse(std::string_view input, request& out);

  /// Forgets the resume position; the next parse() starts a new request.
  void reset() {
    scanned_ = skip_ = line_end_ = 0;
    start_known_ = false;
  }

 private:
  /// Parses the head at the start of `in`, whose request line ends with the LF at `line_end`:
  /// complete (`consumed` = the head's length, its empty line included), bad (the first thing
  /// wrong in it), or incomplete (`in` ended before the empty line with nothing wrong so far).
  parse_result parse_head(std::string_view in, size_t line_end, request& out) const;

  parser_limits limits_;
  size_t scanned_ = 0;    ///< bytes of the input already searched
  size_t skip_ = 0;       ///< empty lines before the request line
  size_t line_end_ = 0;   ///< offset of the request line's '\n', 0 while not yet seen
  bool start_known_ = false;  ///< skip_ is final (a request byte has been seen)
};

/// Case-insensitive ASCII comparison.
bool iequals(std::string_view a, std::string_view b);

}  // namespace httpbench::core
