#include "connection.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "buffer_pool.hpp"
#include "content.hpp"
#include "hot.hpp"
#include "http_date.hpp"
#include "options.hpp"
#include "path.hpp"
#include "stats.hpp"

namespace httpbench::core {

/// Responses waiting to be written, kept in one pooled buffer: a list of segments (memory or
/// file ranges) followed by the bytes that built heads and dynamic bodies live in. Segments
/// point into this buffer or into the content store, so nothing is copied twice.
namespace {
constexpr size_t max_output_segments = 48;
// A segment's `fd` for memory of a status-page response, whose bytes are not counted in
// bytes_sent (see respond_status()); ordinary memory is -1, a file its descriptor.
constexpr int32_t status_segment = -2;
}  // namespace

struct connection::output_queue {
  struct segment {
    const char* data;  ///< memory segment; unused for files
    off_t file_offset;
    uint32_t length;   ///< bytes left to send
    int32_t fd;        ///< >= 0: a file segment
  };
  static constexpr size_t max_segments = max_output_segments;
  // The counter before the segments: with it, the first segments share its cache line (after
  // the segments it was a line of its own, 1,152 bytes further on). Which segments are queued
  // the connection keeps (out_first_, out_count_), so wants_write() reads no pooled buffer.
  uint32_t used = 0;  ///< bytes of `bytes` in use
  segment segs[max_segments];
  static constexpr size_t header_size = sizeof(segs) + 4 * sizeof(uint32_t);
  char bytes[buffer_size - header_size - 16];
};

namespace {

// The longest line we add to a stored head: Date, Connection, final CRLF.
constexpr size_t head_extra = 40 + 26 + 2;
// Every head we send (stored or built) is shorter than this.
constexpr size_t max_head = 320;
constexpr std::string_view hello_prefix = "<h1>Hello ";
constexpr std::string_view hello_suffix = "</h1>";

bool is_method(std::string_view m, std::initializer_list<std::string_view> names) {
  return std::find(names.begin(), names.end(), m) != names.end();
}

// Writes `s` HTML-escaped to `out`, returns the bytes written (at most 6 per input byte).
size_t html_escape(std::string_view s, char* out) {
  char* p = out;
  for (char c : s) {
    std::string_view rep;
    switch (c) {
      case '&': rep = "&amp;"; break;
      case '<': rep = "&lt;"; break;
      case '>': rep = "&gt;"; break;
      case '"': rep = "&quot;"; break;
      case '\'': rep = "&#39;"; break;
      default: *p++ = c; continue;
    }
    std::memcpy(p, rep.data(), rep.size());
    p += rep.size();
  }
  return static_cast<size_t>(p - out);
}

thread_local iovec iov_scratch[max_output_segments];

// How every head ends after its Date line: the Connection line, if any, and the empty line.
constexpr std::string_view head_endings[3] = {"\r\n", "Connection: close\r\n\r\n",
                                              "Connection: keep-alive\r\n\r\n"};

// The one keep-alive rule of a response's head, as an index into head_endings: "close" when the
// connection closes after it, "keep-alive" for an HTTP/1.0 request that asked to stay open (1.1
// keeps connections open without saying so).
uint8_t head_ending(bool close, int version_minor) {
  return close ? 1 : version_minor == 0 ? 2 : 0;
}

}  // namespace

connection_limits limits_from(const server_config& config) {
  connection_limits l;
  l.parser.max_header_bytes = config.max_header_bytes;
  l.parser.max_request_line = config.max_request_line;
  l.status_path = config.status_path;
  l.idle_timeout_ms = config.idle_timeout_s * 1000;
  l.header_timeout_ms = std::min(config.header_timeout_ms, l.idle_timeout_ms);
  l.send_timeout_ms = config.send_timeout_ms;
  return l;
}

connection::connection(const content_store& content, server_stats& stats,
                       connection_limits limits)
    : content_(&content), stats_(&stats), limits_(limits), parser_(limits.parser) {
  static_assert(sizeof(output_queue) <= buffer_size);
  stats_->add(stats_->connections);
  if (limits_.open_in_process != nullptr)
    limits_.open_in_process->fetch_add(1, std::memory_order_relaxed);
}

connection::~connection() {
  // How it ended, if nobody said: after the peer's EOF the peer cut the request short;
  // otherwise the server gave up on it (the stop's grace period ran out).
  if (!end_counted_ && in_request()) count_end(peer_closed_ ? error_kind::lost : error_kind::cut);
  stats_->add(stats_->closed);
  if (limits_.open_in_process != nullptr)
    limits_.open_in_process->fetch_sub(1, std::memory_order_relaxed);
  release_buffer(in_);
  if (out_ != nullptr) {
    give_back_unsent_status_bytes();
    release_buffer(reinterpret_cast<char*>(out_));
  }
}

bool connection::in_request() const {
  if (wants_write() || body_to_skip_ > 0) return true;
  return in_end_ > in_start_ && !closing_;
}

void connection::count_end(error_kind kind) {
  end_counted_ = true;
  stats_->add_error(kind);
}

HTTPBENCH_HOT std::span<char> connection::input_space() {
  if (in_ == nullptr) {
    in_ = acquire_buffer();
    in_start_ = in_end_ = 0;
  } else if (in_end_ == buffer_size && in_start_ > 0) {
    // Move the partial request to the front; the parser's resume point is relative to the
    // request start, so it stays valid.
    std::memmove(in_, in_ + in_start_, in_end_ - in_start_);
    in_end_ -= in_start_;
    in_start_ = 0;
  }
  return {in_ + in_end_, buffer_size - in_end_};
}

HTTPBENCH_HOT void connection::received(size_t n) {
  in_end_ += static_cast<uint32_t>(n);
  bytes_moved_ += n;
  stats_->add(stats_->bytes_received, n);
  process();
  release_idle_buffers();
}

size_t connection::feed(std::string_view bytes) {
  size_t taken = 0;
  while (taken < bytes.size() && wants_read()) {
    auto space = input_space();
    size_t n = std::min(space.size(), bytes.size() - taken);
    std::memcpy(space.data(), bytes.data() + taken, n);
    taken += n;
    received(n);
  }
  return taken;
}

HTTPBENCH_HOT size_t connection::feed_in_place(std::span<char> bytes) {
  // A request already begun continues in its buffer; a connection that takes nothing takes
  // nothing here either; and a span of a whole buffer could pass the full-buffer guard of
  // process() by. Otherwise feed() would take every byte in one copy, and so does this.
  if (in_ != nullptr || !wants_read() || bytes.size() >= buffer_size)
    return feed({bytes.data(), bytes.size()});
  if (bytes.empty()) return 0;
  in_ = bytes.data();
  in_start_ = 0;
  in_end_ = static_cast<uint32_t>(bytes.size());
  bytes_moved_ += bytes.size();
  stats_->add(stats_->bytes_received, bytes.size());
  process();
  // Nothing may point into the caller's bytes once this returns: what is left of them (part
  // of a request, requests waiting for output room, bytes after a closing request) moves to a
  // pooled buffer, where feed() would have put it.
  const char* left = in_ + in_start_;
  uint32_t left_size = in_end_ - in_start_;
  in_ = nullptr;
  in_start_ = in_end_ = 0;
  if (left_size > 0) {
    in_ = acquire_buffer();
    std::memcpy(in_, left, left_size);
    in_end_ = left_size;
  }
  return bytes.size();
}

void connection::peer_closed() {
  peer_closed_ = true;
  release_idle_buffers();
}

void connection::broken() {
  if (!end_counted_ && in_request()) count_end(error_kind::lost);
  end_counted_ = true;
}

void connection::timed_out() {
  if (!end_counted_ && in_request()) count_end(error_kind::timeout);
  end_counted_ = true;
}

void connection::cut() {
  if (!end_counted_ && in_request()) count_end(error_kind::cut);
  end_counted_ = true;
}

HTTPBENCH_HOT std::array<std::string_view, 4> connection::stored_parts() const {
  return {stored_->head, std::string_view(stored_date_, stored_date_length_),
          head_endings[stored_ending_],
          stored_head_only_ ? std::string_view() : std::string_view(stored_->body)};
}

HTTPBENCH_HOT size_t connection::stored_iov(iovec* iov) const {
  size_t skip = stored_sent_, n = 0;
  for (std::string_view part : stored_parts()) {
    if (skip >= part.size()) {
      skip -= part.size();
      continue;
    }
    iov[n++] = {const_cast<char*>(part.data() + skip), part.size() - skip};
    skip = 0;
  }
  return n;
}

HTTPBENCH_HOT pending_output connection::output() {
  if (stored_ != nullptr) return {{iov_scratch, stored_iov(iov_scratch)}, {}};
  if (out_first_ == out_count_) return {};
  const auto& front = out_->segs[out_first_];
  if (front.fd >= 0) return {{}, {front.fd, front.file_offset, front.length}};
  size_t n = 0;
  for (uint32_t i = out_first_; i < out_count_ && out_->segs[i].fd < 0; ++i)
    iov_scratch[n++] = {const_cast<char*>(out_->segs[i].data), out_->segs[i].length};
  return {{iov_scratch, n}, {}};
}

bool connection::closes_after(const pending_output& out) const {
  // Closing after this response, or after the peer's EOF with no request left waiting for room
  // (consumed() would answer it); a rejected request's close lingers instead.
  if (error_close_ || !(closing_ || (peer_closed_ && !stalled_))) return false;
  if (out.file.length != 0) return false;
  if (stored_ != nullptr) {
    iovec left[4];
    return out.iov.size() == stored_iov(left);
  }
  return wants_write() && out_first_ + out.iov.size() == out_count_;
}

HTTPBENCH_HOT void connection::consumed(size_t n) {
  bytes_moved_ += n;
  stats_->add(stats_->bytes_sent, n);
  if (stored_ != nullptr) {
    // output() offered nothing but the stored response while there is one.
    size_t length = 0;
    for (std::string_view part : stored_parts()) length += part.size();
    if (stored_sent_ + n >= length) stored_ = nullptr;
    else stored_sent_ += static_cast<uint32_t>(n);
  } else {
    while (n > 0 && out_first_ < out_count_) {
      auto& s = out_->segs[out_first_];
      size_t take = std::min<size_t>(n, s.length);
      if (s.fd >= 0) s.file_offset += static_cast<off_t>(take);
      else s.data += take;
      s.length -= static_cast<uint32_t>(take);
      n -= take;
      if (s.length == 0) ++out_first_;
    }
  }
  if (!wants_write()) {
    if (out_ != nullptr) {
      release_buffer(reinterpret_cast<char*>(out_));
      out_ = nullptr;
      out_first_ = out_count_ = 0;
    }
    if (stalled_) {
      stalled_ = false;
      process();
      release_idle_buffers();
    }
  }
}

HTTPBENCH_HOT void connection::process() {
  while (!closing_ && in_end_ > in_start_) {
    if (body_to_skip_ > 0) {
      // A body we do not use (e.g. on a GET): skip it so the next pipelined request parses.
      uint64_t take = std::min<uint64_t>(body_to_skip_, in_end_ - in_start_);
      in_start_ += static_cast<uint32_t>(take);
      body_to_skip_ -= take;
      parser_.reset();
      continue;
    }
    request req;
    parse_result r = parser_.parse({in_ + in_start_, in_end_ - in_start_}, req);
    if (r.status == parse_status::incomplete) {
      // The buffer is larger than the header limit, so a full buffer means the parser has
      // already rejected it; this only guards endless blank lines.
      if (in_start_ == 0 && in_end_ == buffer_size) {
        ++requests_;
        stats_->add(stats_->requests);
        respond_error(431, true);
      }
      break;
    }
    if (r.status == parse_status::bad) {
      // A rejected request is still a request: `errors` never exceeds `requests` because of it.
      ++requests_;
      stats_->add(stats_->requests);
      respond_error(r.error_status, true);
      break;
    }
    if (!has_room(max_head + head_extra + limits_.max_name * 6 + 64)) {
      // Wait for the queued responses to drain; the request is parsed again then.
      stalled_ = true;
      parser_.reset();
      break;
    }
    in_start_ += static_cast<uint32_t>(r.consumed);
    parser_.reset();
    handle(req, r.consumed);
  }
}

HTTPBENCH_HOT void connection::handle(const request& req, size_t request_bytes) {
  bool head_only = req.method == "HEAD";
  std::string_view raw_path, query;
  std::string_view path = "/";  // "GET http://host HTTP/1.1" names the root
  path_status where = path_status::ok;
  if (req.target_is_path) {
    path = req.target;  // what splitting and normalising it would give (parser.hpp)
  } else {
    split_target(req.target, raw_path, query);
  }
  // The request's bytes are ours and already consumed: decode the path (and the query below)
  // in place, since decoding never lengthens them. No copy, no scratch buffer.
  if (!raw_path.empty()) {
    char* raw_path_bytes = in_ + (raw_path.data() - in_);
    size_t path_len = 0;
    where = normalize_path(raw_path, {raw_path_bytes, raw_path.size()}, path_len);
    if (where == path_status::ok) path = {raw_path_bytes, path_len};
  }
  // The one comparison the status page costs every request. It is matched before the request
  // is counted, so the requests it reports are exactly the others.
  if (path == limits_.status_path) [[unlikely]] {
    if ((req.method == "GET" || head_only) && !req.has_transfer_encoding && req.content_length == 0)
      return respond_status(req, request_bytes);
  }

  ++requests_;
  stats_->add(stats_->requests);
  if (req.has_transfer_encoding) return respond_error(501, true);  // cannot frame the body
  if (req.content_length > limits_.max_body) return respond_error(413, true, head_only);
  body_to_skip_ = req.content_length;
  bool close = !req.keep_alive;

  if (req.method != "GET" && !head_only) {
    if (is_method(req.method, {"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"}))
      return respond_error(405, close);
    return respond_error(501, true);
  }
  switch (where) {
    case path_status::bad: return respond_error(400, true, head_only);
    case path_status::forbidden: return respond_error(403, close, head_only);
    case path_status::ok: break;
  }

  if (path == "/hello") {
    // Fremlin's dynamic page: <h1>Hello NAME</h1>, NAME from the query, HTML-escaped.
    // No query: its view may be null, and no pointer arithmetic may be done on it.
    char* query_bytes = query.empty() ? nullptr : in_ + (query.data() - in_);
    long name_len = query.empty() ? -1 : query_param(query, "name", {query_bytes, query.size()});
    if (name_len == -2 || name_len > static_cast<long>(limits_.max_name))
      return respond_error(400, close, head_only);
    std::string_view name = name_len < 0 ? std::string_view("world")
                                         : std::string_view(query_bytes, size_t(name_len));
    char* body = reserve_output(limits_.max_name * 6 + hello_prefix.size() + hello_suffix.size());
    size_t len = 0;
    std::memcpy(body, hello_prefix.data(), hello_prefix.size());
    len += hello_prefix.size();
    len += html_escape(name, body + len);
    std::memcpy(body + len, hello_suffix.data(), hello_suffix.size());
    len += hello_suffix.size();
    // The body is written first (it is reserved scratch), then the head after it, so the
    // queued order is head, body.
    char head[160];
    int head_len = std::snprintf(head, sizeof head,
                                 "HTTP/1.1 200 OK\r\nServer: httpbench\r\n"
                                 "Content-Type: text/html; charset=utf-8\r\n"
                                 "Content-Length: %zu\r\n",
                                 len);
    out_->used += static_cast<uint32_t>(len);
    queue_head({head, static_cast<size_t>(head_len)}, close, req.version_minor);
    if (!head_only) queue_memory(body, len);
    return;
  }

  const static_file* file = content_->find(path);
  if (file == nullptr) return respond_error(404, close, head_only);
  respond_stored(*file, close, req.version_minor, head_only);
}

HTTPBENCH_HOT void connection::respond_stored(const static_file& file, bool close,
                                              int version_minor, bool head_only) {
  // Behind other responses (pipelining), a file range for sendfile, or a body too large for
  // stored_sent_: queued.
  if (wants_write() || !file.in_memory() || file.body.size() > (1u << 31)) [[unlikely]] {
    queue_head(file.head, close, version_minor);
    if (head_only) return;
    if (file.in_memory()) queue_memory(file.body.data(), file.body.size());
    else queue_file(file.fd, file.size);
    return;
  }
  std::string_view date = date_line();
  if (date.size() > sizeof stored_date_) std::abort();  // it is 37 bytes
  std::memcpy(stored_date_, date.data(), date.size());
  stored_date_length_ = static_cast<uint8_t>(date.size());
  stored_ending_ = head_ending(close, version_minor);
  stored_ = &file;
  stored_sent_ = 0;
  stored_head_only_ = head_only;
  if (close) closing_ = true;
}

void connection::respond_error(int status, bool close, bool head_only) {
  stats_->add_error(error_kind::status);
  if (close) {
    closing_ = true;
    error_close_ = true;
    // Nothing after a fatal error is read: drop what is buffered.
    in_start_ = in_end_;
    body_to_skip_ = 0;
  }
  respond_stored(content_store::error_page(status), close, 1, head_only);
}

// The counters are read before this response's own bytes are queued; its request's bytes, which
// received() counted, are taken off, and so are its response's, which consumed() will count as
// they are written (or ~connection() gives back if they never are). So between two status
// reads, each answered before the next is sent, every counter moved by exactly the other
// requests. Another thread or process reading meanwhile may find bytes_sent short by the unsent
// part of this response.
void connection::respond_status(const request& req, size_t request_bytes) {
  stats_->add(stats_->status_requests);
  stats_->bytes_received.fetch_sub(request_bytes, std::memory_order_relaxed);
  constexpr size_t body_max = counters_json_max + 64;
  if (!has_room(max_head + head_extra + body_max)) {
    std::fprintf(stderr, "connection: no room for the status page (max_name below 64?)\n");
    std::abort();
  }
  char* body = reserve_output(body_max);
  size_t len = 0;
  body[len++] = '{';
  len += format_counters(*stats_, body + len, body_max - len);
  double uptime_s = static_cast<double>(monotonic_ns() - stats_->started_ns) / 1e9;
  len += static_cast<size_t>(std::snprintf(body + len, body_max - len,
                                           ", \"uptime_s\": %.3f, \"pid\": %d}\n", uptime_s,
                                           stats_->pid));
  out_->used += static_cast<uint32_t>(len);
  char head[160];
  int head_len = std::snprintf(head, sizeof head,
                               "HTTP/1.1 200 OK\r\nServer: httpbench\r\n"
                               "Content-Type: application/json\r\nCache-Control: no-store\r\n"
                               "Content-Length: %zu\r\n",
                               len);
  bool head_only = req.method == "HEAD";
  size_t queued = queue_head({head, static_cast<size_t>(head_len)}, !req.keep_alive,
                             req.version_minor, status_segment);
  if (!head_only) {
    queue_memory(body, len, status_segment);
    queued += len;
  }
  stats_->bytes_sent.fetch_sub(queued, std::memory_order_relaxed);
}

void connection::give_back_unsent_status_bytes() {
  for (uint32_t i = out_first_; i < out_count_; ++i)
    if (out_->segs[i].fd == status_segment) stats_->add(stats_->bytes_sent, out_->segs[i].length);
}

HTTPBENCH_HOT bool connection::has_room(size_t bytes) const {
  if (out_ == nullptr) return true;  // a stored response moved into a new queue takes 4 segments
  return size_t{out_count_} + 4 <= output_queue::max_segments &&
         out_->used + bytes <= sizeof(out_->bytes);
}

HTTPBENCH_HOT char* connection::reserve_output(size_t bytes) {
  // Default-initialised, not value-initialised (`output_queue()`): that zeroed all 16 KiB of
  // the buffer for every response, ~6 % of uring's CPU on new connections, where a buffer
  // stays out of the pool until its send completes and comes back cold.
  ensure_queue();
  (void)bytes;  // process() checked has_room() for the largest response before handle()
  return out_->bytes + out_->used;
}

void connection::ensure_queue() {
  if (stored_ != nullptr) {
    // Its iovecs point into the content store, constants and stored_date_, which stays put
    // until it is sent: no new stored response starts while anything waits (respond_stored()).
    iovec left[4];
    size_t n = stored_iov(left);
    stored_ = nullptr;
    for (size_t i = 0; i < n; ++i)
      queue_memory(static_cast<const char*>(left[i].iov_base), left[i].iov_len);
  }
  if (out_ == nullptr) out_ = new (acquire_buffer()) output_queue;
}

HTTPBENCH_HOT size_t connection::queue_head(std::string_view head, bool close, int version_minor,
                                            int32_t kind) {
  if (head.size() > max_head) std::abort();  // content_store builds every head; they are short
  char* p = reserve_output(head.size() + head_extra);
  char* start = p;
  std::memcpy(p, head.data(), head.size());
  p += head.size();
  std::string_view date = date_line();
  std::memcpy(p, date.data(), date.size());
  p += date.size();
  std::string_view ending = head_endings[head_ending(close, version_minor)];
  std::memcpy(p, ending.data(), ending.size());
  p += ending.size();
  size_t length = static_cast<size_t>(p - start);
  out_->used += static_cast<uint32_t>(length);
  if (close) closing_ = true;
  queue_memory(start, length, kind);
  return length;
}

HTTPBENCH_HOT void connection::queue_memory(const char* data, size_t length, int32_t kind) {
  if (length == 0) return;
  ensure_queue();
  if (out_count_ > out_first_) {
    // Heads of consecutive responses built in our own buffer are adjacent: one iovec.
    auto& last = out_->segs[out_count_ - 1];
    if (last.fd == kind && last.data + last.length == data) {
      last.length += static_cast<uint32_t>(length);
      return;
    }
  }
  out_->segs[out_count_++] = {data, 0, static_cast<uint32_t>(length), kind};
}

void connection::queue_file(int fd, uint64_t length) {
  ensure_queue();
  // Segments hold 32-bit lengths: a file over 1 GiB takes several; has_room() keeps four
  // free, so files up to 3 GiB are served whole.
  constexpr uint64_t chunk = 1u << 30;
  off_t offset = 0;
  while (length > 0 && out_count_ < output_queue::max_segments) {
    uint32_t n = static_cast<uint32_t>(std::min(length, chunk));
    out_->segs[out_count_++] = {nullptr, offset, n, fd};
    offset += n;
    length -= n;
  }
}

HTTPBENCH_HOT void connection::release_idle_buffers() {
  if (in_ != nullptr && in_start_ == in_end_) {
    release_buffer(in_);
    in_ = nullptr;
    in_start_ = in_end_ = 0;
  }
}

}  // namespace httpbench::core
