#include "parser.hpp"

#include <array>
#include <bit>
#include <cstring>

#include "hot.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace httpbench::core {
namespace {

// RFC 9110 tchar.
constexpr std::array<bool, 256> make_token_table() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
constexpr auto token_char = make_token_table();

constexpr parse_result bad_request{parse_status::bad, 0, 400};

inline bool is_target_char(unsigned char c) { return c > 0x20 && c != 0x7f; }
inline bool is_value_char(unsigned char c) { return c >= 0x20 ? c != 0x7f : c == '\t'; }

// RFC 3986 host (reg-name, IPv4address, IP-literal) and port characters: unreserved,
// pct-encoded, sub-delims, ':' and the brackets of an IP literal. No '/', '\\', '@', space.
constexpr std::array<bool, 256> make_host_table() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("-._~%!$&'()*+,;=:[]")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
constexpr auto host_char = make_host_table();

// True when the field name `name`, already checked to be token characters, is `lowercase`
// (lowercase letters and '-') in any case. OR-ing 0x20 folds an uppercase letter onto its lowercase
// one and leaves '-' and every other token character off the letters and '-', so one OR per byte is
// exact here, where iequals folds both sides.
inline bool name_is(std::string_view name, std::string_view lowercase) {
  if (name.size() != lowercase.size()) return false;
  for (size_t i = 0; i < name.size(); ++i)
    if ((name[i] | 0x20) != lowercase[i]) return false;
  return true;
}

inline char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The scans that took most of a request's parsing (about 60 % of parse_head for wrk's
// "GET /index.html" with its Host line, per callgrind) look at 16 bytes at a time where 16
// bytes of the input are left, then at 8 where 8 are, then byte by byte; machines without SSE2
// go byte by byte. Every way gives the same answers (parser_test.cpp puts each case at every
// place of a block, with more and with fewer bytes after it).

#if defined(__SSE2__)
// The next 16 bytes from s[i], or the next 8 (the rest zero bytes, which no scan takes) when
// fewer than 16 are left; `width` says which. Nothing past s[n - 1] is read.
inline __m128i load_block(const unsigned char* s, size_t i, size_t n, unsigned& width) {
  width = i + 16 <= n ? 16 : 8;
  const auto* p = reinterpret_cast<const __m128i*>(s + i);
  return width == 16 ? _mm_loadu_si128(p) : _mm_loadl_epi64(p);
}

inline unsigned mask(__m128i bytes) { return static_cast<unsigned>(_mm_movemask_epi8(bytes)); }
inline __m128i equal(__m128i x, char c) { return _mm_cmpeq_epi8(x, _mm_set1_epi8(c)); }
// Bytes of x within [low, high], unsigned.
inline __m128i within(__m128i x, unsigned char low, unsigned char high) {
  __m128i shifted = _mm_sub_epi8(x, _mm_set1_epi8(static_cast<char>(low)));
  return _mm_cmpeq_epi8(_mm_min_epu8(shifted, _mm_set1_epi8(static_cast<char>(high - low))),
                        shifted);
}
// The offset of the first byte a scan stops at, given the mask of the bytes it takes; `width`
// when it takes them all.
inline unsigned first_stop(unsigned taken, unsigned width) {
  return static_cast<unsigned>(std::countr_zero(~taken | (1u << width)));
}
#endif

// A target byte that matters to the path: percent escapes, the query and the fragment, and the
// '/' and '.' of "//", "/." and "/..", which normalize_path would have to resolve.
inline bool is_path_special(unsigned char c) { return c == '%' || c == '?' || c == '#'; }

// Scans the request target that starts at s[i] up to the first byte that cannot be in one (a
// control, a space or DEL; the line's LF is one, so the scan never leaves its line) and returns
// that byte's offset. Clears `plain` when the target holds '%', '?' or '#', or a '/' followed
// by '/' or '.': then splitting and normalising it may change it.
HTTPBENCH_HOT size_t scan_target(const unsigned char* s, size_t i, size_t n, bool& plain) {
  bool after_slash = false;  // the byte before s[i] was a '/' of the target
#if defined(__SSE2__)
  while (i + 8 <= n) {
    unsigned width;
    __m128i x = load_block(s, i, n, width);
    unsigned taken = mask(_mm_andnot_si128(equal(x, 0x7f), within(x, 0x21, 0xff)));
    unsigned slashes = mask(equal(x, '/'));
    unsigned slash_or_dot = slashes | mask(equal(x, '.'));
    unsigned special = mask(_mm_or_si128(_mm_or_si128(equal(x, '%'), equal(x, '?')), equal(x, '#')));
    // Bit k: byte k is '/' or '.' and the byte before it (in this block or the last one) is '/'.
    unsigned resolvable = ((slashes << 1) | (after_slash ? 1u : 0u)) & slash_or_dot;
    unsigned stop = first_stop(taken, width);
    if ((special | resolvable) & ((1u << stop) - 1)) plain = false;
    if (stop < width) return i + stop;
    after_slash = (slashes >> (width - 1)) & 1u;
    i += width;
  }
#endif
  for (; i < n && is_target_char(s[i]); ++i) {
    unsigned char c = s[i];
    if (is_path_special(c) || (after_slash && (c == '/' || c == '.'))) plain = false;
    after_slash = c == '/';
  }
  return i;
}

// Scans a field value from s[p] up to the first byte that cannot be in one (a control other
// than HTAB, or DEL; CR and LF are such bytes) and returns that byte's offset, or n.
HTTPBENCH_HOT size_t scan_value(const unsigned char* s, size_t p, size_t n) {
#if defined(__SSE2__)
  while (p + 8 <= n) {
    unsigned width;
    __m128i x = load_block(s, p, n, width);
    unsigned taken = mask(_mm_or_si128(_mm_andnot_si128(equal(x, 0x7f), within(x, 0x20, 0xff)),
                                       equal(x, '\t')));
    unsigned stop = first_stop(taken, width);
    if (stop < width) return p + stop;
    p += width;
  }
#endif
  while (p < n && is_value_char(s[p])) ++p;
  return p;
}

// True when s[from, to) is a valid Host field value (RFC 9112 §3.2, RFC 9110 §7.2): uri-host
// [ ":" port ] in host_char's characters; empty is valid (a target URI without an authority).
// s[to, n) may be read too.
HTTPBENCH_HOT bool valid_host(const unsigned char* s, size_t from, size_t to, size_t n) {
#if defined(__SSE2__)
  while (from + 8 <= n && from < to) {
    unsigned width;
    __m128i x = load_block(s, from, n, width);
    // host_char as ranges: '!'..'z' and '~', but '"' '#', '/', '<', '>' '?' '@', '\\', '^', '`'.
    __m128i excluded = _mm_or_si128(
        _mm_or_si128(within(x, '"', '#'), within(x, '>', '@')),
        _mm_or_si128(_mm_or_si128(equal(x, '/'), equal(x, '<')),
                     _mm_or_si128(_mm_or_si128(equal(x, '\\'), equal(x, '^')), equal(x, '`'))));
    __m128i allowed = _mm_andnot_si128(excluded, _mm_or_si128(within(x, '!', 'z'), equal(x, '~')));
    unsigned in_value = to - from >= width ? (1u << width) - 1 : (1u << (to - from)) - 1;
    if (~mask(allowed) & in_value) return false;
    from += width;
  }
#endif
  for (; from < to; ++from)
    if (!host_char[s[from]]) return false;
  return true;
}

// Finds the end of the header block ("\r\n\r\n" or a bare "\n\n"), searching from `from`.
// Returns the offset just past it, or 0 when not yet present.
size_t find_block_end(std::string_view in, size_t from) {
  const char* base = in.data();
  size_t pos = from;
  while (pos < in.size()) {
    const void* nl = std::memchr(base + pos, '\n', in.size() - pos);
    if (nl == nullptr) return 0;
    size_t i = static_cast<size_t>(static_cast<const char*>(nl) - base);
    // The line that ended at i is empty if the previous char is '\n', or "\r" preceded by '\n'.
    if (i >= 1 && base[i - 1] == '\n') return i + 1;
    if (i >= 2 && base[i - 1] == '\r' && base[i - 2] == '\n') return i + 1;
    pos = i + 1;
  }
  return 0;
}

// Parses a Connection header's comma-separated tokens.
void apply_connection_header(std::string_view value, request& out) {
  while (!value.empty()) {
    size_t comma = value.find(',');
    std::string_view token = trim(value.substr(0, comma));
    if (iequals(token, "close")) out.keep_alive = false;
    else if (iequals(token, "keep-alive") && out.version_minor == 0) out.keep_alive = true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

HTTPBENCH_HOT parse_result request_parser::parse(std::string_view input, request& out) {
  // Everything below looks only at bytes not seen by an earlier call (plus 3 bytes of overlap
  // for a terminator split across reads): a slow client cannot make us rescan.
  if (!start_known_) {
    // Empty lines before a request are ignored (RFC 9112 §2.2); they count as consumed.
    while (skip_ < input.size() && (input[skip_] == '\r' || input[skip_] == '\n')) ++skip_;
    scanned_ = skip_;
    if (skip_ == input.size()) return {parse_status::incomplete, 0, 0};
    start_known_ = true;
  }
  if (line_end_ == 0) {
    const void* nl = std::memchr(input.data() + scanned_, '\n', input.size() - scanned_);
    if (nl != nullptr) line_end_ = static_cast<size_t>(static_cast<const char*>(nl) - input.data());
  }
  size_t line_length = (line_end_ == 0 ? input.size() : line_end_) - skip_;
  if (line_length > limits_.max_request_line + (line_end_ == 0 ? 0 : 1))
    return {parse_status::bad, 0, 414};

  if (scanned_ == skip_ && line_end_ != 0) {
    // The first look at this request, with its request line whole: most often the whole head
    // is here too (one read), and parsing it straight away finds its end as it goes — the
    // search for the end below would be a second pass over the same lines. Only a complete
    // head is taken from this pass; anything else (more to come, or something wrong, whose
    // answer depends on the limits and on where the head ends) is decided below, as it would
    // have been without the pass, which looks at these bytes once more at most.
    parse_result r = parse_head(input.substr(skip_), line_end_ - skip_, out);
    if (r.status == parse_status::complete) {
      if (r.consumed > limits_.max_header_bytes + 4) return {parse_status::bad, 0, 431};
      return {parse_status::complete, skip_ + r.consumed, 0};
    }
  }
  size_t from = scanned_ >= skip_ + 3 ? scanned_ - 3 : skip_;
  size_t end = find_block_end(input, from);
  scanned_ = input.size();
  if (end == 0) {
    if (input.size() - skip_ > limits_.max_header_bytes) return {parse_status::bad, 0, 431};
    return {parse_status::incomplete, 0, 0};
  }
  if (end - skip_ > limits_.max_header_bytes + 4) return {parse_status::bad, 0, 431};
  parse_result r = parse_head(input.substr(skip_, end - skip_), line_end_ - skip_, out);
  // A whole head that ends the way it must cannot run out; should it, it is malformed.
  if (r.status != parse_status::complete) return r.status == parse_status::bad ? r : bad_request;
  return {parse_status::complete, end, 0};
}

HTTPBENCH_HOT parse_result request_parser::parse_head(std::string_view in, size_t line_end,
                                                      request& out) const {
  // One pass over the bytes: every byte is checked against the class of the place it is in
  // (token, target or field-value characters, or the exact "HTTP/d.d"), none of which holds CR
  // or LF, so each scan stops at its line's end by itself and no line is searched for it first.
  // A line ends in LF or CRLF; a CR anywhere else stops a scan where only LF may follow: 400.
  const auto* s = reinterpret_cast<const unsigned char*>(in.data());
  const size_t n = in.size();
  const parse_result more{parse_status::incomplete, 0, 0};

  // Request line: method SP target SP HTTP/1.x, up to its LF (at `line_end`, already found).
  size_t i = 0;
  // GET, the method of nearly every request, in one 4-byte comparison; any other byte by byte.
  if (line_end > 4 && std::memcmp(s, "GET ", 4) == 0) i = 3;
  else while (i < line_end && token_char[s[i]]) ++i;
  if (i == 0 || s[i] != ' ') return bad_request;
  out.method = in.substr(0, i);
  size_t t = ++i;
  bool plain = true;
  i = scan_target(s, i, n, plain);  // stops at the LF at line_end, if not before
  if (i == t || s[i] != ' ') return bad_request;
  out.target = in.substr(t, i - t);
  out.target_is_path = plain && s[t] == '/';
  std::string_view version = in.substr(i + 1, line_end - i - 1);
  if (!version.empty() && version.back() == '\r') version.remove_suffix(1);
  if (version.size() != 8 || !version.starts_with("HTTP/") || version[6] != '.' ||
      version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9')
    return bad_request;
  if (version[5] != '1') return {parse_status::bad, 0, 505};
  // HTTP/1.2 to 1.9 are processed as HTTP/1.1, the highest minor version we implement
  // (RFC 9110 §2.5), with 1.1's keep-alive default and Host rule, as nginx does.
  out.version_minor = version[7] == '0' ? 0 : 1;
  out.keep_alive = out.version_minor >= 1;
  out.header_count = 0;
  out.content_length = 0;
  out.has_transfer_encoding = false;

  bool seen_length = false;
  int hosts = 0;
  for (size_t p = line_end + 1;;) {
    if (p >= n) return more;
    if (s[p] == '\n' || s[p] == '\r') {
      // The empty line (LF or CRLF) ends the head. A CR not followed by LF is a line that does
      // not begin with a field name.
      if (s[p] == '\r' && p + 1 >= n) return more;
      if (s[p] == '\r' && s[p + 1] != '\n') return bad_request;
      // RFC 9112 §3.2: 400 for an HTTP/1.1 request without Host, and for any request with
      // more than one (HTTP/1.0 may omit it).
      if (hosts > 1 || (hosts == 0 && out.version_minor >= 1)) return bad_request;
      return {parse_status::complete, p + (s[p] == '\r' ? 2 : 1), 0};
    }
    // Obsolete line folding and whitespace before the colon are rejected (RFC 9112 §5).
    size_t name = p;
    while (p < n && token_char[s[p]]) ++p;
    if (p >= n) return more;
    if (p == name || s[p] != ':') return bad_request;
    size_t value = ++p;
    p = scan_value(s, p, n);
    if (p >= n || (s[p] == '\r' && p + 1 >= n)) return more;
    size_t value_end = p;
    if (s[p] == '\r' && s[p + 1] == '\n') p += 2;
    else if (s[p] == '\n') p += 1;
    else return bad_request;
    if (out.header_count == max_header_fields) return {parse_status::bad, 0, 431};
    header_field& h = out.headers[out.header_count++];
    h.name = in.substr(name, value - 1 - name);
    h.value = trim(in.substr(value, value_end - value));
    if (name_is(h.name, "connection")) {
      apply_connection_header(h.value, out);
    } else if (name_is(h.name, "content-length")) {
      uint64_t length = 0;
      if (h.value.empty() || h.value.size() > 18) return bad_request;
      for (char c : h.value) {
        if (c < '0' || c > '9') return bad_request;
        length = length * 10 + static_cast<uint64_t>(c - '0');
      }
      if (seen_length && length != out.content_length) return bad_request;  // smuggling guard
      seen_length = true;
      out.content_length = length;
    } else if (name_is(h.name, "transfer-encoding")) {
      out.has_transfer_encoding = true;
    } else if (name_is(h.name, "host")) {
      size_t host = static_cast<size_t>(h.value.data() - in.data());
      if (!valid_host(s, host, host + h.value.size(), n)) return bad_request;
      ++hosts;
    }
  }
}

}  // namespace httpbench::core
