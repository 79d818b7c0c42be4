// Incremental HTTP/1.x response parser for the client side.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace httpbench::loadgen {

/// Parses one HTTP/1.x response at a time from bytes as they arrive, without rescanning and
/// without allocating in the common case (status line and headers in one read: they are parsed
/// in place). Headers split across reads are carried in an internal buffer that is allocated
/// once per connection. Bodies are never stored: identity-encoded body bytes are handed back as
/// a span of the caller's input so they can be verified and dropped.
/// Supports Content-Length, chunked transfer coding and close-delimited bodies. Interim 1xx
/// responses (except 101) are skipped, as RFC 9110 requires; lines may end in CRLF or a bare
/// LF (RFC 9112 §2.2 lets a recipient accept it).
class http_response_parser {
 public:
  enum class outcome { incomplete, complete, bad };

  struct result {
    outcome status = outcome::incomplete;
    /// Bytes of the input that belong to this response; bytes after them start the next one.
    std::size_t consumed = 0;
    /// Identity-encoded body bytes found in this input (a span of it, valid as long as the
    /// input is); null for chunked bodies, whose payload is only counted.
    const char* body = nullptr;
    std::size_t body_length = 0;
  };

  /// Largest status line + headers accepted; beyond it the response is `bad`.
  static constexpr std::size_t max_header_bytes = 64 * 1024;

  /// Prepares for the next response. `head_request` means the response has no body.
  void reset(bool head_request = false);

  /// Feeds the next `length` bytes of the stream. Stops at the end of the current response
  /// (`complete`), so pipelined responses are parsed by calling reset() and feed() again
  /// with the rest. After `bad` the connection's stream is unusable.
  result feed(const char* data, std::size_t length);

  /// The peer closed the stream. Returns `complete` if the body was delimited by close,
  /// `incomplete` if bytes were missing (a short body or a partial header), and `bad` never.
  outcome finish_at_eof();

  /// True once any byte of this response arrived.
  bool started() const { return bytes_received_ > 0; }
  bool headers_done() const { return phase_ != phase::headers; }
  int status_code() const { return status_code_; }
  /// Content-Length header value, or -1 if absent.
  std::int64_t content_length() const { return content_length_; }
  /// Whether the connection may carry another request after this response (HTTP/1.1 default
  /// unless "Connection: close"; HTTP/1.0 only with "Connection: keep-alive"; never for
  /// close-delimited bodies).
  bool keep_alive() const { return keep_alive_; }
  bool chunked() const { return chunked_; }
  /// Body bytes received so far (payload bytes for chunked).
  std::uint64_t body_received() const { return body_received_; }
  /// Wire bytes of this response received so far (status line, headers and body).
  std::uint64_t bytes_received() const { return bytes_received_; }
  /// Value of the Server header of the last response (truncated to 63 bytes).
  std::string_view server_header() const { return {server_, server_length_}; }

 private:
  enum class phase {
    headers,
    body_length,
    body_until_close,
    chunk_size,
    chunk_extension,
    chunk_data,
    chunk_data_end,
    trailer,
    done
  };

  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

  bool parse_headers(const char* data, std::size_t length);
  /// Offset just past the empty line ending a header block in data[0, length), looking for
  /// the line feed before it from `from` on; npos if there is none yet.
  static std::size_t find_header_end(const char* data, std::size_t length, std::size_t from);
  result feed_body(const char* data, std::size_t length, std::size_t offset);
  std::size_t feed_chunked(const char* data, std::size_t length, bool& done, bool& bad);

  phase phase_ = phase::headers;
  bool head_request_ = false;
  bool keep_alive_ = false;
  bool chunked_ = false;
  int status_code_ = 0;
  std::int64_t content_length_ = -1;
  std::uint64_t remaining_ = 0;  // body bytes left (length mode) or chunk bytes left
  std::uint64_t chunk_size_ = 0;
  std::size_t trailer_line_ = 0;
  std::uint64_t body_received_ = 0;
  std::uint64_t bytes_received_ = 0;
  std::string carry_;  // partial status line + headers from earlier reads
  char server_[64] = {};
  std::size_t server_length_ = 0;
};

}  // namespace httpbench::loadgen
