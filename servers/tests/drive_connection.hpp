#pragma once
// Test helper: drives a core::connection exactly as a backend does, with no sockets, and splits
// what it writes into responses. Shared by the connection and status-page tests.
#include <unistd.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "core/connection.hpp"

namespace httpbench::core::test_support {

struct response {
  std::string head;
  std::string body;
  int status() const { return std::stoi(head.substr(9, 3)); }
  bool has(const std::string& line) const { return head.find(line + "\r\n") != std::string::npos; }
};

/// Everything the connection wants written, reading file ranges with pread.
inline std::string drain(connection& c) {
  std::string out;
  for (pending_output o = c.output(); !o.empty(); o = c.output()) {
    size_t n = 0;
    if (!o.iov.empty()) {
      for (const iovec& v : o.iov) out.append(static_cast<const char*>(v.iov_base), v.iov_len);
      for (const iovec& v : o.iov) n += v.iov_len;
    } else {
      std::string buf(o.file.length, '\0');
      n = static_cast<size_t>(pread(o.file.fd, buf.data(), buf.size(), o.file.offset));
      out.append(buf, 0, n);
    }
    c.consumed(n);
  }
  return out;
}

/// Feeds everything (draining whenever the connection stops reading) and returns the output.
inline std::string serve_bytes(connection& c, std::string_view in) {
  std::string out;
  while (!in.empty()) {
    size_t taken = c.feed(in);
    in.remove_prefix(taken);
    out += drain(c);
    if (taken == 0 && !c.wants_read()) break;
  }
  return out + drain(c);
}

/// Serves `in` as a backend reading at most `chunk` bytes at a time does: each read is copied
/// into one scratch buffer, handed to feed() or, with `in_place`, to feed_in_place() (as
/// core::read_idle does) until taken, draining after each call, and overwritten before the next
/// read, so that nothing may still point into it. Returns the output with every Date value
/// blanked, so that two runs that straddle a second compare equal.
inline std::string serve_in_reads(connection& c, std::string_view in, size_t chunk, bool in_place) {
  std::string out;
  std::vector<char> scratch(chunk);
  while (!in.empty() && c.wants_read()) {
    size_t n = std::min(chunk, in.size()), taken = 0;
    std::copy_n(in.data(), n, scratch.data());
    while (taken < n) {
      size_t t = in_place ? c.feed_in_place({scratch.data() + taken, n - taken})
                          : c.feed({scratch.data() + taken, n - taken});
      std::fill(scratch.begin(), scratch.begin() + static_cast<long>(taken + t), '#');
      taken += t;
      out += drain(c);
      if (t == 0 && !c.wants_read()) break;
    }
    in.remove_prefix(n);
    if (taken < n) break;
  }
  out += drain(c);
  for (size_t at = out.find("\r\nDate: "); at != std::string::npos;
       at = out.find("\r\nDate: ", at + 1))
    if (out.size() >= at + 8 + 29) out.replace(at + 8, 29, 29, 'x');
  return out;
}

inline std::vector<response> split_responses(std::string_view raw, bool head_only = false) {
  std::vector<response> out;
  while (!raw.empty()) {
    size_t end = raw.find("\r\n\r\n");
    if (end == std::string_view::npos) break;
    response r;
    r.head = std::string(raw.substr(0, end + 2));
    raw.remove_prefix(end + 4);
    size_t cl = r.head.find("Content-Length: ");
    size_t len = cl == std::string::npos ? 0 : std::stoul(r.head.substr(cl + 16));
    if (head_only) len = 0;
    r.body = std::string(raw.substr(0, len));
    raw.remove_prefix(std::min(len, raw.size()));
    out.push_back(r);
  }
  return out;
}

}  // namespace httpbench::core::test_support
