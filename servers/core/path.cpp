#include "path.hpp"

#include <cstring>

#include "hot.hpp"

namespace httpbench::core {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes `in` into `out`; `plus_is_space` for query strings. Returns the length or -1.
long percent_decode(std::string_view in, std::span<char> out, bool plus_is_space) {
  size_t n = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    if (n == out.size()) return -1;
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return -1;
      int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) return -1;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    out[n++] = c;
  }
  return static_cast<long>(n);
}

// True when `raw` has no escape, no NUL, and no '/' followed by '/' or '.': then every segment
// is a plain name and normalize_path's general algorithm gives it back unchanged. Almost every
// request's path is such a one; checking takes one pass, decoding and resolving took two plus a
// copy (about 330 instructions for "/index.html", scripts/footprint.py).
bool already_normal(std::string_view raw) {
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '%' || c == '\0') return false;
    if (c == '/' && i + 1 < raw.size() && (raw[i + 1] == '/' || raw[i + 1] == '.')) return false;
  }
  return true;
}

}  // namespace

// Not in .text.hot: a target the parser found plain (request::target_is_path, most requests)
// never comes here, and hot code it does not run would spread the request path over more pages.
void split_target(std::string_view target, std::string_view& path, std::string_view& query) {
  bool absolute_form =
      !target.starts_with('/') && (target.starts_with("http://") || target.starts_with("https://"));
  if (absolute_form) {
    size_t authority = target.find("//") + 2;
    size_t slash = target.find_first_of("/?", authority);
    // Views stay inside the request's bytes (callers decode them in place): no path is an
    // empty view at the end of the authority.
    target = target.substr(slash == std::string_view::npos ? target.size() : slash);
  }
  size_t q = target.find('?');
  path = target.substr(0, q);
  query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
  if (size_t hash = query.find('#'); hash != std::string_view::npos) query = query.substr(0, hash);
  if (size_t hash = path.find('#'); hash != std::string_view::npos) path = path.substr(0, hash);
}

path_status normalize_path(std::string_view raw, std::span<char> out, size_t& out_len) {
  if (raw.empty() || raw.front() != '/' || out.empty()) return path_status::bad;
  if (already_normal(raw)) {
    if (raw.size() > out.size()) return path_status::bad;  // as the decoder says when out is full
    if (out.data() != raw.data()) std::memmove(out.data(), raw.data(), raw.size());
    out_len = raw.size();
    return path_status::ok;
  }
  // Decode first, then resolve segments: "%2e%2e%2f" is treated exactly like "../".
  long decoded_len = percent_decode(raw, out, false);
  if (decoded_len < 0) return path_status::bad;
  std::string_view decoded(out.data(), static_cast<size_t>(decoded_len));
  if (decoded.find('\0') != std::string_view::npos) return path_status::bad;

  // Resolve in place: the output never grows past the input, so writing behind the read
  // position is safe.
  size_t w = 0;  // write position; out[0..w) is the resolved path so far
  size_t r = 0;
  bool trailing_slash = false;
  while (r < decoded.size()) {
    while (r < decoded.size() && decoded[r] == '/') ++r;
    size_t start = r;
    while (r < decoded.size() && decoded[r] != '/') ++r;
    std::string_view segment = decoded.substr(start, r - start);
    trailing_slash = r < decoded.size() || segment.empty() || segment == "." || segment == "..";
    if (segment.empty() || segment == ".") continue;
    if (segment == "..") {
      if (w == 0) return path_status::forbidden;
      while (w > 0 && out[w - 1] != '/') --w;
      --w;  // drop the '/' too
      continue;
    }
    out[w++] = '/';
    for (char c : segment) out[w++] = c;  // w <= start, so this never overtakes the reader
  }
  if (w == 0 || trailing_slash) {
    if (w == out.size()) return path_status::bad;
    out[w++] = '/';
  }
  out_len = w;
  return path_status::ok;
}

long query_param(std::string_view query, std::string_view key, std::span<char> out) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    size_t eq = pair.find('=');
    if (pair.substr(0, eq) == key) {
      long n = percent_decode(
          eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1), out, true);
      return n < 0 ? -2 : n;
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return -1;
}

}  // namespace httpbench::core
