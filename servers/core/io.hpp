#pragma once
/// Moving bytes between a socket and a connection: the read and write halves every backend
/// runs. Templated on the system calls so user-level thread libraries (ST, Pth) can pass their
/// own wrappers; the default is plain POSIX.
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>

#include "connection.hpp"

namespace httpbench::core {

enum class io_status {
  ok,      ///< progress was made (read: bytes handled; write: everything sent)
  again,   ///< the socket would block: wait for readiness and call again
  closed,  ///< read: the peer sent EOF
  error,   ///< the connection is broken (reset, timeout on a blocking socket, ...)
};

/// Plain POSIX system calls.
struct posix_io {
  static ssize_t read(int fd, void* buf, size_t n) { return ::read(fd, buf, n); }
  static ssize_t writev(int fd, const iovec* iov, int n) { return ::writev(fd, iov, n); }
  static ssize_t sendfile(int out, int in, off_t* off, size_t n) {
    return ::sendfile(out, in, off, n);
  }
};

/// Reads once into `c` and handles what arrived. `closed` means EOF (peer_closed() was called).
template <class Sys = posix_io>
io_status read_into(int fd, connection& c) {
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

/// Writes `c`'s pending output until none is left (`ok`) or the socket would block (`again`).
template <class Sys = posix_io>
io_status write_from(int fd, connection& c) {
  for (;;) {
    pending_output out = c.output();
    if (out.empty()) return io_status::ok;
    ssize_t n;
    if (!out.iov.empty()) {
      n = Sys::writev(fd, out.iov.data(), static_cast<int>(out.iov.size()));
    } else {
      off_t offset = out.file.offset;
      n = Sys::sendfile(fd, out.file.fd, &offset, out.file.length);
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
/// then hands it to `c`. A blocking backend waits in this read for as long as the client keeps
/// the connection idle; reading into the connection's pooled 16 KiB buffer instead would pin
/// that buffer to every idle connection (with 10,000 idle keep-alive connections, 160 MiB).
/// Bytes the connection cannot take yet (pipelined requests waiting for output room) are fed
/// after writing what it has queued, so this may write.
template <class Sys = posix_io>
io_status read_idle(int fd, connection& c) {
  char first[512];
  ssize_t n;
  while ((n = Sys::read(fd, first, sizeof first)) < 0 && errno == EINTR) {
  }
  if (n == 0) {
    c.peer_closed();
    return io_status::closed;
  }
  if (n < 0) return errno == EAGAIN ? io_status::again : io_status::error;
  size_t taken = c.feed({first, static_cast<size_t>(n)});
  while (taken < static_cast<size_t>(n) && c.wants_write()) {
    if (write_from<Sys>(fd, c) != io_status::ok) return io_status::error;
    taken += c.feed({first + taken, static_cast<size_t>(n) - taken});
  }
  return io_status::ok;
}

/// Serves one connection on a blocking socket until it is done: the whole life of a
/// connection in the thread-, process- and user-thread-per-connection models. Returns false
/// when the connection ended on an I/O error or a timeout rather than cleanly.
template <class Sys = posix_io>
bool serve_blocking(int fd, connection& c) {
  for (;;) {
    if (write_from<Sys>(fd, c) != io_status::ok) return false;
    if (c.wants_close()) return true;
    switch (c.idle() ? read_idle<Sys>(fd, c) : read_into<Sys>(fd, c)) {
      case io_status::ok: break;
      case io_status::closed: if (!c.wants_write()) return c.idle(); break;
      case io_status::again: case io_status::error: return false;
    }
  }
}

struct server_context;

/// A connection's whole life on a blocking socket, for the backends that give each connection a
/// thread or process of its own (thread, threadpool, fork, prefork): reads and writes time out
/// after --idle-timeout like an idle timer, and a connection lost mid-request counts as an
/// error. Does not close `fd`: returns true when the caller should close it with
/// lingering_close() (a request was rejected), false for a plain close. See close_served().
bool serve_blocking_socket(server_context& ctx, int fd);

/// Closes a socket after serve_blocking_socket(): lingering when `rejected`.
void close_served(int fd, bool rejected);

/// Half-closes and discards what the peer still sends (briefly), then closes: closing a socket
/// with unread input makes the kernel send RST, which can destroy the error response we just
/// sent before the client reads it. Bounded to `max_wait_ms` in total.
void lingering_close(int fd, int max_wait_ms = 500);

}  // namespace httpbench::core
