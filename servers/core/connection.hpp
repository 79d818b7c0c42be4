#pragma once
/// The I/O-agnostic HTTP connection state machine that every backend drives the same way.
///
///   read into input_space() ──► received(n) ──► output() ──► write it ──► consumed(n)
///        ▲                                                                    │
///        └──────────── while wants_read() ◄── until !wants_write() ◄──────────┘
///   and close the socket once wants_close().
///
/// A blocking backend loops read → received → write; an event backend does the same on
/// readiness. The connection parses, routes and builds responses; it never touches a socket.
/// Pipelined requests are answered in order; responses to several of them go out in one write.
#include <sys/types.h>
#include <sys/uio.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "parser.hpp"

namespace httpbench::core {

class content_store;
struct static_file;
struct server_stats;
struct server_config;
enum class error_kind;

/// A byte range of an open file, to be sent with sendfile.
struct file_range {
  int fd = -1;
  off_t offset = 0;
  size_t length = 0;
};

/// What to write next: either memory (iov, possibly several responses) or one file range.
struct pending_output {
  std::span<const iovec> iov;  ///< valid until the next call of output() on this thread
  file_range file;             ///< used when iov is empty and file.length > 0
  bool empty() const { return iov.empty() && file.length == 0; }
};

/// Limits and options a connection needs, taken from the server configuration.
struct connection_limits {
  parser_limits parser;
  uint64_t max_body = 1 << 20;  ///< request bodies (skipped) larger than this get 413
  /// Longest decoded name accepted by /hello. Every request is parsed only once the output
  /// queue has room for a /hello page this long, which also covers the status page: >= 86.
  size_t max_name = 1024;
  /// The status page (a GET or HEAD of this normalised path, any query) is answered with the
  /// counters as JSON and counted in status_requests, not in requests or bytes; empty: none.
  /// The bytes must outlive the connection (server_config::status_path does).
  std::string_view status_path = "/server-status";
  /// The deadlines of docs/interfaces.md ("Deadlines"), in milliseconds: --idle-timeout,
  /// --header-timeout (already capped at the idle timeout) and --send-timeout. The connection
  /// only carries them, for the code that waits: serve_blocking() and the event loops.
  int idle_timeout_ms = 30'000;
  int header_timeout_ms = 10'000;
  int send_timeout_ms = 30'000;
  /// When set, the connections this process holds open (a MAP_SHARED cell of the supervisor,
  /// for a worker process: the connections lost if it dies); +1 while a connection lives.
  std::atomic<int64_t>* open_in_process = nullptr;
};

connection_limits limits_from(const server_config& config);

class connection {
 public:
  /// `content` and `stats` must outlive the connection. Counts it in `connections`.
  connection(const content_store& content, server_stats& stats, connection_limits limits = {});
  /// Counts the connection as closed and, if it ends inside a request (a request partly
  /// received, a body being skipped, or a response not completely sent) and no reason was
  /// given (broken(), timed_out(), cut()), as an error: errors_lost after the peer's EOF,
  /// errors_cut otherwise (the server gave up on it). docs/interfaces.md, "The counters".
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  /// Where to put the next bytes read from the socket. Non-empty whenever wants_read().
  /// The span is valid until the next call of any other member.
  std::span<char> input_space();

  /// `n` bytes (n > 0) were placed at the start of input_space(); handles every complete
  /// request they finish.
  void received(size_t n);

  /// Copies `bytes` in and handles them, as repeated input_space()/received() would: for bytes
  /// read elsewhere (core::read_idle's stack buffer), tests and fuzzing. Stops early when the
  /// connection stops reading (output queue full, or closing); returns the bytes taken.
  size_t feed(std::string_view bytes);

  /// As feed(), but handles the bytes where they lie: a request that arrived whole in the
  /// caller's buffer (core::read_idle's, on the stack) is parsed, decoded in place and answered
  /// there, without borrowing, filling and giving back a pooled input buffer — per request on
  /// a keep-alive connection, its cache lines and the pool's. `bytes` must be writable and
  /// untouched by anyone else until the call returns; what is left of them then (part of a
  /// request, requests waiting for output room) has been copied into a pooled buffer, so
  /// nothing points into them afterwards. Returns the bytes taken, as feed() does.
  size_t feed_in_place(std::span<char> bytes);

  /// The peer sent EOF: requests already received are answered, then wants_close().
  void peer_closed();

  /// The socket failed (an I/O error, a reset, EOF in the middle of a request) and will be
  /// closed: counts errors_lost when inside a request. Only the first of broken(),
  /// timed_out() and cut() counts.
  void broken();
  /// A deadline ended the connection (--header-timeout, --send-timeout, --idle-timeout while a
  /// body arrives): counts errors_timeout when inside a request (an idle keep-alive connection
  /// that times out is no error).
  void timed_out();
  /// The server ends the connection itself (at the stop): counts errors_cut when inside a
  /// request.
  void cut();

  /// The next bytes to send; empty() when there is nothing to write.
  pending_output output();

  /// `n` bytes of output() were sent. May handle more pipelined requests that were waiting
  /// for room in the output queue.
  void consumed(size_t n);

  /// True when `out` (what output() just returned) is everything left to send and, once it is
  /// all sent, wants_close() holds and no lingering close is due: a completion-based backend
  /// may then queue the socket's close right behind the send.
  bool closes_after(const pending_output& out) const;

  /// True while more input can be accepted (not closing, and not waiting for output to drain).
  bool wants_read() const { return !closing_ && !peer_closed_ && !stalled_; }
  /// True while output() is not empty.
  bool wants_write() const { return stored_ != nullptr || out_first_ < out_count_; }
  /// True once the socket should be closed: after a response marked "close" (or the peer's EOF)
  /// has been completely sent.
  bool wants_close() const { return (closing_ || peer_closed_) && !wants_write(); }
  /// True when no request is partly received and nothing is left to send.
  bool idle() const { return in_end_ == in_start_ && body_to_skip_ == 0 && !wants_write(); }
  /// True while bytes of a request head are buffered and the head is not complete: what
  /// --header-timeout bounds (from the moment this became true).
  bool receiving_head() const {
    return in_end_ > in_start_ && body_to_skip_ == 0 && !closing_ && !stalled_;
  }
  /// Bytes moved so far (received plus sent): a loop compares two readings to see progress.
  uint64_t bytes_moved() const { return bytes_moved_; }
  /// The limits and deadlines the connection was made with.
  const connection_limits& limits() const { return limits_; }

  /// True when the connection is closing because a request was rejected (400, 413, 414, 431,
  /// 501, 505): the peer may still be sending, so close it with lingering_close().
  bool closing_on_error() const { return error_close_; }

  /// Requests answered on this connection so far.
  uint64_t requests() const { return requests_; }

 private:
  struct output_queue;

  void process();
  void handle(const request& req, size_t request_bytes);
  void respond_status(const request& req, size_t request_bytes);
  void give_back_unsent_status_bytes();
  void respond_error(int status, bool close, bool head_only = false);
  /// `kind` of the segments queued: -1 ordinary memory, -2 a status response (not counted in
  /// bytes_sent). queue_head() returns the bytes it queued.
  size_t queue_head(std::string_view head, bool close, int version_minor, int32_t kind = -1);
  void queue_memory(const char* data, size_t length, int32_t kind = -1);
  void queue_file(int fd, uint64_t length);
  /// Answers with a stored response (a file's or an error page's prebuilt head and body):
  /// straight from the content store when nothing else waits to be sent, else queued.
  void respond_stored(const static_file& file, bool close, int version_minor, bool head_only);
  /// The stored response's four parts, whole: its head, its Date line, its Connection line and
  /// empty line, its body (empty for a HEAD).
  std::array<std::string_view, 4> stored_parts() const;
  /// The stored response being sent, as up to four iovecs (what is left of its head, its Date
  /// line, its Connection line and empty line, its body) written to `iov`; returns how many.
  size_t stored_iov(iovec* iov) const;
  /// Makes out_ the place to queue output: borrows it from the pool if needed, and first moves
  /// a stored response still being sent into it, so that what is queued next goes out after.
  void ensure_queue();
  bool has_room(size_t bytes) const;
  char* reserve_output(size_t bytes);
  void release_idle_buffers();
  /// Inside a request: a request partly received, a body being skipped, or output unsent
  /// (bytes pipelined after a "Connection: close" request are not a request).
  bool in_request() const;
  void count_end(error_kind kind);

  const content_store* content_;
  server_stats* stats_;
  connection_limits limits_;
  request_parser parser_;

  /// Borrowed from the buffer pool while there is input; inside feed_in_place(), the caller's.
  char* in_ = nullptr;
  uint32_t in_start_ = 0, in_end_ = 0;
  uint64_t body_to_skip_ = 0;
  output_queue* out_ = nullptr;  ///< borrowed from the buffer pool while there is output
  uint16_t out_first_ = 0;  ///< out_'s next segment to send
  uint16_t out_count_ = 0;  ///< out_'s segments queued
  /// Bytes of the stored response sent so far (respond_stored() keeps it below 4 GiB).
  uint32_t stored_sent_ = 0;
  /// The one response being sent, when it is a stored one and nothing was queued before it
  /// (most responses): its head and body go out from the content store itself, its Date line
  /// from stored_date_ and its Connection line and empty line from constants — no pooled buffer
  /// borrowed and no head copied for the response of a keep-alive request, for 56 bytes more per
  /// connection (192 -> 248).
  const static_file* stored_ = nullptr;
  uint64_t requests_ = 0;
  uint64_t bytes_moved_ = 0;
  bool closing_ = false;      ///< a response with "Connection: close" was queued
  bool peer_closed_ = false;  ///< EOF from the peer
  bool stalled_ = false;      ///< complete input waits for room in the output queue
  bool error_close_ = false;  ///< closing_ because a request was rejected
  bool end_counted_ = false;  ///< broken(), timed_out() or cut() has decided how it ended
  bool stored_head_only_ = false;  ///< the stored response answers a HEAD: no body
  uint8_t stored_ending_ = 0;      ///< which Connection line and empty line end its head
  uint8_t stored_date_length_ = 0;
  char stored_date_[40];  ///< the stored response's Date line (37 bytes)
};

}  // namespace httpbench::core
