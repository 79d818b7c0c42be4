#pragma once
/// Moving bytes between a socket and a connection: the read and write halves every backend
/// runs, and the whole life of a connection on a blocking socket. Templated on the system calls
/// (a "system-call policy") so user-level thread libraries (ST, Pth, fibers) pass their own; the
/// default is plain POSIX. A policy is a struct of static functions:
///
///   read, writev, sendfile   as the POSIX calls; where the call would block, they block (or
///                            wait in the library's scheduler) at most the timeout set_timeout()
///                            last gave for that direction, then fail with errno EAGAIN,
///                            ETIMEDOUT or ETIME (a write: without progress for that long)
///   set_timeout(fd, kind, ms)
///                            the next reads of `fd` (kind request or head) or writes (kind
///                            send) wait at most `ms` milliseconds; serve_blocking() calls it at
///                            the start of a connection and whenever the wait changes
///                            (deadlines.hpp): the policy stores it, it never decides one
///   wait_readable(fd, ms)    called after a read said EAGAIN: waits until `fd` is readable;
///                            false once `ms` milliseconds have passed (lingering close)
///   stopping()               true once the server is stopping (read_idle's rule)
#include <poll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>

#include "connection.hpp"
#include "deadlines.hpp"
#include "hot.hpp"
#include "idle_list.hpp"
#include "stop.hpp"
#include "unique_fd.hpp"

namespace httpbench::core {

enum class io_status {
  ok,      ///< progress was made (read: bytes handled; write: everything sent)
  again,   ///< the socket would block: wait for readiness and call again
  closed,  ///< read: the peer sent EOF
  error,   ///< the connection is broken (reset, timeout on a blocking socket, ...)
  deferred,  ///< write: the file range next in line is held back by the caller's gate
};

/// Plain POSIX system calls, as they are: on the non-blocking sockets of event loops (the
/// default policy of read_into() and write_from()) they never wait, so set_timeout() has
/// nothing to do. Blocking sockets use blocking_io.
struct posix_io {
  static ssize_t read(int fd, void* buf, size_t n) { return ::read(fd, buf, n); }
  static ssize_t writev(int fd, const iovec* iov, int n) { return ::writev(fd, iov, n); }
  static ssize_t sendfile(int out, int in, off_t* off, size_t n) {
    return ::sendfile(out, in, off, n);
  }
  static void set_timeout(int, wait_kind, int) {}
  static bool wait_readable(int fd, int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, timeout_ms) != 0;  // an EINTR counts as ready: the caller looks again
  }
  static bool stopping() { return stop_flag != 0; }
};

/// True for the errno of a wait that ran out (a blocking socket's timeout, a library's).
inline bool is_timeout(int error) {
  return error == EAGAIN || error == EWOULDBLOCK || error == ETIMEDOUT || error == ETIME;
}

/// POSIX system calls on a blocking socket whose waits are bounded by socket timeouts, for a
/// kernel thread or process that serves one connection at a time (serve_socket()). Reads wait
/// SO_RCVTIMEO. Writes cannot simply wait SO_SNDTIMEO: the kernel restarts that timer whenever a
/// blocked call makes a little progress (it takes a few more bytes after each expiry), so one
/// sendfile to a client that never reads blocked 15.3 s at SO_SNDTIMEO 5 s (issue 12). So
/// SO_SNDTIMEO is a slice of --send-timeout (a tenth, 10 to 250 ms), a write that gets no byte
/// out in a slice is tried again until a whole send timeout of slices has passed, and sendfile
/// sends at most max_chunk per call (it runs one kernel send per pipe's worth, each with a fresh
/// timer; a writev is one kernel send, whose timer covers the whole call). A client that stops
/// reading is then abandoned within about the send timeout plus three slices.
struct blocking_io {
  static constexpr size_t max_chunk = 1 << 20;
  static inline thread_local int send_timeout_ms = 30'000;
  static inline thread_local int send_slice_ms = 250;

  static ssize_t read(int fd, void* buf, size_t n) { return ::read(fd, buf, n); }
  static ssize_t writev(int fd, const iovec* iov, int n) {
    return sliced([&] { return ::writev(fd, iov, n); });
  }
  static ssize_t sendfile(int out, int in, off_t* off, size_t n) {
    return sliced([&] { return ::sendfile(out, in, off, std::min(n, max_chunk)); });
  }
  /// The socket serve_socket() serves on this thread (-1: none), and its SO_RCVTIMEO and
  /// SO_SNDTIMEO in ms as inherited from the listener (preset_socket_timeouts()) or last set
  /// (-1: not known): set_timeout() makes no system call for a timeout that socket already has.
  /// Any other socket gets its setsockopt every time.
  static inline thread_local int socket_fd = -1;
  static inline thread_local int socket_receive_ms = -1;
  static inline thread_local int socket_send_ms = -1;

  /// The socket timeout set_timeout(kind, ms) gives the socket: SO_SNDTIMEO for wait_kind::send
  /// (a slice of `ms`), SO_RCVTIMEO for the others; never 0, which would mean none.
  static int socket_timeout_ms(wait_kind kind, int ms) {
    ms = std::max(ms, 1);
    return kind == wait_kind::send ? std::min(ms, slice_of(ms)) : ms;
  }
  static void set_timeout(int fd, wait_kind kind, int ms) {
    int* current = &socket_receive_ms;
    int option = SO_RCVTIMEO;
    if (kind == wait_kind::send) {
      send_timeout_ms = std::max(ms, 1);
      send_slice_ms = slice_of(send_timeout_ms);
      current = &socket_send_ms;
      option = SO_SNDTIMEO;
    }
    ms = socket_timeout_ms(kind, ms);
    if (fd == socket_fd) {  // serve_socket()'s connection: what its socket has is known
      if (*current == ms) return;
      *current = ms;
    }
    set_socket_timeout(fd, option, ms);
  }
  /// setsockopt of SO_RCVTIMEO or SO_SNDTIMEO to `ms` (> 0); false (errno set) if refused.
  static bool set_socket_timeout(int fd, int option, int ms) {
    timeval tv{ms / 1000, (ms % 1000) * 1000};
    return ::setsockopt(fd, SOL_SOCKET, option, &tv, sizeof tv) == 0;
  }
  static bool wait_readable(int fd, int timeout_ms) { return posix_io::wait_readable(fd, timeout_ms); }
  static bool stopping() { return posix_io::stopping(); }

 private:
  static int slice_of(int send_timeout) { return std::clamp(send_timeout / 10, 10, 250); }

  template <class Call>
  static ssize_t sliced(Call call) {
    for (int waited = 0;;) {
      ssize_t n = call();
      if (n >= 0 || errno != EAGAIN || (waited += send_slice_ms) >= send_timeout_ms) return n;
    }
  }
};

/// Reads once into `c` and handles what arrived. `closed` means EOF (peer_closed() was called).
template <class Sys = posix_io>
HTTPBENCH_HOT io_status read_into(int fd, connection& c) {
  for (;;) {
    auto space = c.input_space();
    ssize_t n = Sys::read(fd, space.data(), space.size());
    if (n > 0) {
      c.received(static_cast<size_t>(n));
      return io_status::ok;
    }
    if (n == 0) {
      c.peer_closed();
      return io_status::closed;
    }
    if (errno == EINTR) continue;
    return errno == EAGAIN ? io_status::again : io_status::error;
  }
}

/// write_from()'s default gate: every file range may be sent whole, now.
struct send_whole_file {
  size_t operator()(const file_range& range) const { return range.length; }
};

/// Writes `c`'s pending output until none is left (`ok`) or the socket would block (`again`).
/// Before each sendfile, `gate(range)` says how many bytes of the file range may be sent now
/// (at most range.length); 0 stops the write with `deferred`. An AMPED loop uses it so that a
/// range not in the page cache is read by a helper instead of blocking the loop in sendfile
/// (event_loop_options::gate); memory segments never ask the gate.
template <class Sys = posix_io, class Gate = send_whole_file>
HTTPBENCH_HOT io_status write_from(int fd, connection& c, Gate gate = {}) {
  for (;;) {
    if (!c.wants_write()) return io_status::ok;  // inline: most calls find nothing to send
    pending_output out = c.output();
    ssize_t n;
    if (!out.iov.empty()) {
      n = Sys::writev(fd, out.iov.data(), static_cast<int>(out.iov.size()));
    } else {
      size_t now = gate(out.file);
      if (now == 0) return io_status::deferred;
      off_t offset = out.file.offset;
      n = Sys::sendfile(fd, out.file.fd, &offset, now < out.file.length ? now : out.file.length);
    }
    if (n > 0) {
      c.consumed(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return io_status::again;
    return io_status::error;
  }
}

/// Reads the start of the next request of an idle connection into a small buffer on the stack,
/// then hands it to `c`, which answers a request that arrived whole right there
/// (connection::feed_in_place). A blocking backend waits in this read for as long as the client
/// keeps the connection idle; reading into the connection's pooled 16 KiB buffer instead would
/// pin that buffer to every idle connection (with 10,000 idle keep-alive connections, 160 MiB).
/// Bytes the connection cannot take yet (pipelined requests waiting for output room) are fed
/// after writing what it has queued, so this may write.
///
/// The idle-at-stop rule of every blocking model lives here: once Sys::stopping(), an idle
/// connection reads nothing new. Its reading is shut down, so what the peer already sent is
/// still answered and then EOF ends it. A backend only has to wake the reads that were already
/// waiting when the stop came (they retry on EINTR, or see the EOF of a shutdown).
template <class Sys = posix_io>
HTTPBENCH_HOT io_status read_idle(int fd, connection& c) {
  char first[512];
  ssize_t n;
  do {
    if (Sys::stopping()) [[unlikely]] {
      ::shutdown(fd, SHUT_RD);
      n = ::recv(fd, first, sizeof first, MSG_DONTWAIT);  // buffered bytes, else EOF
    } else {
      n = Sys::read(fd, first, sizeof first);
    }
  } while (n < 0 && errno == EINTR);
  if (n == 0) {
    c.peer_closed();
    return io_status::closed;
  }
  if (n < 0) return errno == EAGAIN ? io_status::again : io_status::error;
  size_t taken = c.feed_in_place({first, static_cast<size_t>(n)});
  while (taken < static_cast<size_t>(n) && c.wants_write()) {
    if (write_from<Sys>(fd, c) != io_status::ok) return io_status::error;
    taken += c.feed_in_place({first + taken, static_cast<size_t>(n) - taken});
  }
  return io_status::ok;
}

/// Makes the close of `fd` a reset (SO_LINGER 0): unsent data is dropped at once instead of
/// staying in the kernel for a peer that does not read.
inline void abort_on_close(int fd) {
  struct ::linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

/// Lingering close, first half: after a rejected request the response is out, but the peer may
/// still be sending, and closing a socket with unread input makes the kernel send RST, which can
/// destroy the response before the client reads it. So stop sending, and keep reading.
inline void start_linger(int fd) { ::shutdown(fd, SHUT_WR); }

/// Lingering close, second half, on readiness: reads and discards what has arrived. True once
/// the peer is done (EOF or an error): close the socket then (or after linger_ms anyway).
inline bool drain_linger(int fd) {
  char sink[512];
  for (;;) {
    ssize_t n = ::recv(fd, sink, sizeof sink, MSG_DONTWAIT);
    if (n > 0) continue;
    return !(n < 0 && (errno == EAGAIN || errno == EINTR));
  }
}

/// The whole lingering close on a blocking socket, waiting with Sys::wait_readable (so a
/// user-level thread lets the others run) for at most linger_ms in all. Does not close `fd`.
template <class Sys = posix_io>
void linger(int fd) {
  start_linger(fd);
  int64_t give_up = idle_list::now_ms() + linger_ms;
  for (;;) {
    if (drain_linger(fd)) return;
    int64_t left = give_up - idle_list::now_ms();
    if (left <= 0 || !Sys::wait_readable(fd, static_cast<int>(left))) return;
  }
}

/// How a connection served on a blocking socket ended.
enum class served {
  clean,      ///< the peer closed, a response closed it, or it was idle at the stop
  lost,       ///< an I/O error, or the peer's EOF inside a request, ended it
  rejected,   ///< a request was rejected: the response went out with a lingering close
  timed_out,  ///< a deadline ended it (an error only inside a request, see deadlines.hpp)
};

/// Serves one connection on a blocking socket until it is done: the whole life of a connection
/// in the thread-, process- and user-thread-per-connection models, except the close() (the
/// caller owns the socket). It holds the connection's deadlines (deadlines.hpp), telling the
/// policy which wait comes next; counts how the connection ended (connection::broken(),
/// timed_out(), cut() — an EOF inside a request at the stop is the stop's own shutdown, so
/// cut); lingers after a rejected request (linger<Sys>()); and resets a connection abandoned
/// by --send-timeout (SO_LINGER 0), so its unsent megabytes do not linger in the kernel.
template <class Sys = posix_io>
HTTPBENCH_HOT served serve_blocking(int fd, connection& c) {
  const connection_limits& limits = c.limits();
  Sys::set_timeout(fd, wait_kind::send, limits.send_timeout_ms);
  Sys::set_timeout(fd, wait_kind::request, limits.idle_timeout_ms);
  wait_kind reading = wait_kind::request;  // the read timeout the policy holds now
  int64_t head_deadline = 0;
  for (;;) {
    if (write_from<Sys>(fd, c) != io_status::ok) break;
    if (c.wants_close()) {
      if (!c.closing_on_error()) return served::clean;
      linger<Sys>(fd);
      return served::rejected;
    }
    if (c.receiving_head()) [[unlikely]] {
      // --header-timeout runs from the first byte of the head and is never extended.
      int64_t now = idle_list::now_ms();
      if (reading != wait_kind::head) head_deadline = now + limits.header_timeout_ms;
      int64_t left = head_deadline - now;
      if (left <= 0) {
        errno = ETIMEDOUT;
        break;
      }
      Sys::set_timeout(fd, wait_kind::head, static_cast<int>(left));
      reading = wait_kind::head;
    } else if (reading != wait_kind::request) [[unlikely]] {
      Sys::set_timeout(fd, wait_kind::request, limits.idle_timeout_ms);
      reading = wait_kind::request;
    }
    io_status read = c.idle() ? read_idle<Sys>(fd, c) : read_into<Sys>(fd, c);
    if (read == io_status::closed && !c.wants_write()) {
      if (c.idle()) return served::clean;
      // EOF inside a request: the peer's, or at the stop our own shutdown of reading.
      if (Sys::stopping()) c.cut();
      else c.broken();
      return served::lost;
    }
    if (read == io_status::again || read == io_status::error) break;
  }
  if (is_timeout(errno)) {
    if (c.wants_write()) abort_on_close(fd);
    c.timed_out();
    return served::timed_out;
  }
  c.broken();
  return served::lost;
}

struct server_context;

/// A connection's whole life on a blocking socket but the close, for the backends that give each
/// connection a kernel thread or process of its own (thread, threadpool, fork, prefork):
/// serve_blocking() with blocking_io, whose socket timeouts hold the deadlines. `fd` must have
/// been accepted from ctx.listener.
served serve_socket(server_context& ctx, int fd);

/// Gives ctx.listener the socket timeouts serve_socket() starts every connection with (the
/// send slice, and --idle-timeout for reads): Linux copies a listening socket's options to each
/// socket accepted from it, so serve_socket() then makes no setsockopt for a connection that
/// keeps to those (two system calls per connection, per request under ab). Call before the
/// first accept and before forking workers. A listener in blocking mode (prefork) then has its
/// accept() return EAGAIN after --idle-timeout without a connection, which the acceptor
/// reports as accept_status::again. False (errno set) if the listener refused an option;
/// serve_socket() then sets both per connection, as without this call.
bool preset_socket_timeouts(server_context& ctx);

}  // namespace httpbench::core
