#include "http_response_parser.hpp"

#include <algorithm>
#include <cstring>

namespace httpbench::loadgen {

namespace {

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

bool name_is(std::string_view name, std::string_view lower_expected) {
  if (name.size() != lower_expected.size()) return false;
  for (std::size_t i = 0; i < name.size(); ++i)
    if (lower(name[i]) != lower_expected[i]) return false;
  return true;
}

bool contains_token(std::string_view value, std::string_view lower_token) {
  if (value.size() < lower_token.size()) return false;
  for (std::size_t i = 0; i + lower_token.size() <= value.size(); ++i)
    if (name_is(value.substr(i, lower_token.size()), lower_token)) return true;
  return false;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = lower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

void http_response_parser::reset(bool head_request) {
  phase_ = phase::headers;
  head_request_ = head_request;
  keep_alive_ = false;
  chunked_ = false;
  status_code_ = 0;
  content_length_ = -1;
  remaining_ = 0;
  chunk_size_ = 0;
  trailer_line_ = 0;
  body_received_ = 0;
  bytes_received_ = 0;
  carry_.clear();
}

bool http_response_parser::parse_headers(const char* data, std::size_t length) {
  // Status line: "HTTP/1.x SSS reason\r\n".
  std::string_view text(data, length);
  if (text.size() < 12 || text.substr(0, 7) != "HTTP/1." || text[8] != ' ') return false;
  const char minor = text[7];
  if (minor != '0' && minor != '1') return false;
  int code = 0;
  for (int i = 9; i < 12; ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
    code = code * 10 + (text[i] - '0');
  }
  status_code_ = code;
  keep_alive_ = minor == '1';
  server_length_ = 0;
  content_length_ = -1;  // per header block: an interim response's fields do not carry over
  chunked_ = false;
  std::size_t line_end = text.find('\n');
  bool connection_close = false, connection_keep_alive = false;
  while (line_end != std::string_view::npos && line_end + 1 < text.size()) {
    const std::size_t start = line_end + 1;
    line_end = text.find('\n', start);
    if (line_end == std::string_view::npos) break;
    std::string_view line = text.substr(start, line_end - start);
    if (line.empty() || line == "\r") break;  // end of headers
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim(line.substr(colon + 1));
    if (name_is(name, "content-length")) {
      std::int64_t n = 0;
      if (value.empty() || value.size() > 18) return false;
      for (char c : value) {
        if (c < '0' || c > '9') return false;
        n = n * 10 + (c - '0');
      }
      if (content_length_ >= 0 && content_length_ != n) return false;  // conflicting lengths
      content_length_ = n;
    } else if (name_is(name, "connection")) {
      connection_close = connection_close || contains_token(value, "close");
      connection_keep_alive = connection_keep_alive || contains_token(value, "keep-alive");
    } else if (name_is(name, "transfer-encoding")) {
      chunked_ = contains_token(value, "chunked");
    } else if (name_is(name, "server")) {
      server_length_ = std::min(value.size(), sizeof server_ - 1);
      std::memcpy(server_, value.data(), server_length_);
    }
  }
  if (connection_close) keep_alive_ = false;
  if (connection_keep_alive && minor == '0') keep_alive_ = true;

  if (code >= 100 && code < 200 && code != 101) {
    // Interim response (100 Continue, 102, 103 Early Hints): RFC 9110 §15.2 says a client
    // skips it and reads on for the final response. It has no body.
    phase_ = phase::headers;
  } else if (code == 101) {
    // Switching Protocols is final, and after it the stream is no longer HTTP/1.x.
    keep_alive_ = false;
    phase_ = phase::done;
  } else if (head_request_ || code == 204 || code == 304) {
    phase_ = phase::done;
  } else if (chunked_) {
    phase_ = phase::chunk_size;
    chunk_size_ = 0;
  } else if (content_length_ >= 0) {
    remaining_ = static_cast<std::uint64_t>(content_length_);
    phase_ = remaining_ == 0 ? phase::done : phase::body_length;
  } else {
    keep_alive_ = false;  // the body ends only when the server closes
    phase_ = phase::body_until_close;
  }
  return true;
}

http_response_parser::result http_response_parser::feed(const char* data, std::size_t length) {
  std::size_t offset = 0;
  // A loop because interim (1xx) responses precede the final one: each is skipped whole.
  while (phase_ == phase::headers) {
    std::size_t header_end;  // in `data`, just past this header block
    if (carry_.empty()) {
      // Common case: the whole header is in this read; parse it in place.
      const std::size_t end = find_header_end(data + offset, length - offset, 0);
      if (end == npos) {
        const std::size_t rest = length - offset;
        if (rest > max_header_bytes) return {outcome::bad, length};
        if (carry_.capacity() < 4096) carry_.reserve(4096);
        carry_.assign(data + offset, rest);
        bytes_received_ += rest;
        return {outcome::incomplete, length};
      }
      if (!parse_headers(data + offset, end)) return {outcome::bad, offset + end};
      header_end = offset + end;
    } else {
      const std::size_t old = carry_.size();
      const std::size_t take =
          std::min(length - offset, max_header_bytes + 3 - std::min(old, max_header_bytes));
      carry_.append(data + offset, take);
      // The terminator (at most 3 bytes) may straddle the old and the new bytes.
      const std::size_t end = find_header_end(carry_.data(), carry_.size(), old >= 2 ? old - 2 : 0);
      if (end == npos) {
        if (carry_.size() > max_header_bytes) return {outcome::bad, offset + take};
        bytes_received_ += take;
        return {outcome::incomplete, offset + take};
      }
      if (!parse_headers(carry_.data(), end)) return {outcome::bad, offset + take};
      header_end = offset + (end - old);
      carry_.clear();
    }
    bytes_received_ += header_end - offset;
    offset = header_end;
  }
  return feed_body(data, length, offset);
}

std::size_t http_response_parser::find_header_end(const char* data, std::size_t length,
                                                  std::size_t from) {
  // The header block ends with an empty line: a line feed followed by "\n" or "\r\n". A bare
  // LF is accepted as a line terminator, as RFC 9112 §2.2 allows a recipient to (and curl and
  // browsers do).
  while (from < length) {
    const void* hit = std::memchr(data + from, '\n', length - from);
    if (hit == nullptr) return npos;
    const std::size_t lf = static_cast<std::size_t>(static_cast<const char*>(hit) - data);
    if (lf + 1 < length && data[lf + 1] == '\n') return lf + 2;
    if (lf + 2 < length && data[lf + 1] == '\r' && data[lf + 2] == '\n') return lf + 3;
    from = lf + 1;
  }
  return npos;
}

http_response_parser::result http_response_parser::feed_body(const char* data, std::size_t length,
                                                             std::size_t offset) {
  result r;
  const std::size_t available = length - offset;
  switch (phase_) {
    case phase::done:
      r.status = outcome::complete;
      r.consumed = offset;
      return r;
    case phase::body_length: {
      const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, available));
      r.body = data + offset;
      r.body_length = take;
      remaining_ -= take;
      body_received_ += take;
      bytes_received_ += take;
      r.consumed = offset + take;
      if (remaining_ == 0) {
        phase_ = phase::done;
        r.status = outcome::complete;
      }
      return r;
    }
    case phase::body_until_close:
      r.body = data + offset;
      r.body_length = available;
      body_received_ += available;
      bytes_received_ += available;
      r.consumed = length;
      return r;
    case phase::headers:
      r.consumed = offset;
      return r;
    default: {
      bool done = false, bad = false;
      const std::size_t used = feed_chunked(data + offset, available, done, bad);
      bytes_received_ += used;
      r.consumed = offset + used;
      if (bad) r.status = outcome::bad;
      if (done) {
        phase_ = phase::done;
        r.status = outcome::complete;
      }
      return r;
    }
  }
}

std::size_t http_response_parser::feed_chunked(const char* data, std::size_t length, bool& done,
                                               bool& bad) {
  std::size_t i = 0;
  while (i < length) {
    const char c = data[i];
    switch (phase_) {
      case phase::chunk_size:
        if (const int h = hex_value(c); h >= 0) {
          if (chunk_size_ > (std::uint64_t{1} << 56)) {
            bad = true;
            return i;
          }
          chunk_size_ = chunk_size_ * 16 + static_cast<std::uint64_t>(h);
        } else if (c == ';' || c == ' ' || c == '\t') {
          phase_ = phase::chunk_extension;
        } else if (c == '\n') {
          phase_ = chunk_size_ == 0 ? phase::trailer : phase::chunk_data;
          remaining_ = chunk_size_;
          trailer_line_ = 0;
        } else if (c != '\r') {
          bad = true;
          return i;
        }
        ++i;
        break;
      case phase::chunk_extension:
        if (c == '\n') {
          phase_ = chunk_size_ == 0 ? phase::trailer : phase::chunk_data;
          remaining_ = chunk_size_;
          trailer_line_ = 0;
        }
        ++i;
        break;
      case phase::chunk_data: {
        const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, length - i));
        remaining_ -= take;
        body_received_ += take;
        i += take;
        if (remaining_ == 0) phase_ = phase::chunk_data_end;
        break;
      }
      case phase::chunk_data_end:
        if (c == '\n') {
          phase_ = phase::chunk_size;
          chunk_size_ = 0;
        } else if (c != '\r') {
          bad = true;
          return i;
        }
        ++i;
        break;
      case phase::trailer:
        ++i;
        if (c == '\n') {
          if (trailer_line_ == 0) {
            done = true;
            return i;
          }
          trailer_line_ = 0;
        } else if (c != '\r') {
          ++trailer_line_;
        }
        break;
      default:
        return i;
    }
  }
  return i;
}

http_response_parser::outcome http_response_parser::finish_at_eof() {
  if (phase_ == phase::body_until_close || phase_ == phase::done) {
    phase_ = phase::done;
    return outcome::complete;
  }
  return outcome::incomplete;
}

}  // namespace httpbench::loadgen
