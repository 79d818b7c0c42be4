// reference_common.h — what every reference server shares and none of them is about: the command
// line, the listening socket, the stop, and the canned reply with the scan for a head's end.
//
// A reference server is the floor of its concurrency model: the least work a server of that
// model can do and still answer the benchmark's request with the same bytes as the HTTP core
// (servers/reference/README.md). So this header keeps the per-request work to finding "\r\n\r\n",
// the request's version and a Connection header — no parsing, no routing, no counters, no
// timeouts — and each model's file is only the model: how connections are accepted, scheduled
// and waited on.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "core/default_page.hpp"

namespace httpbench::reference {

/// What `--describe` says about a reference (docs/interfaces.md, "references").
struct model_info {
  const char* name;           ///< "ref-<model>", the binary's name
  const char* reference_for;  ///< the backend this is the floor of
  const char* model;
  const char* summary;
  const char* category;  ///< process | thread | user-thread | event, as backend_info's
  int default_workers;   ///< 0: the model has no pool, and takes no --workers
  int max_connections;   ///< what the model holds on this kind of machine, as the backend's
};

/// The command line a reference understands: the server process contract's options that make
/// sense without an HTTP core.
struct options {
  std::string bind = "127.0.0.1";
  int port = 8080;
  int backlog = 4096;
  int workers = 0;
};

/// Prints the usage (on stderr after `problem` when there is one) and exits: 2 for a problem.
[[noreturn]] inline void usage(const model_info& m, const char* problem = nullptr,
                               std::string_view arg = {}) {
  if (problem) std::fprintf(stderr, "%s: %s: %.*s\n", m.name, problem, int(arg.size()), arg.data());
  std::fprintf(problem ? stderr : stdout,
               "usage: %s [--bind ADDR] [--port N] [--backlog N]%s [--describe] [--help]\n", m.name,
               m.default_workers ? " [--workers N]" : "");
  std::exit(problem ? 2 : 0);
}

/// Parses argv; `--describe` and `--help` print and exit 0, a bad command line exits 2.
inline options parse_options(int argc, char** argv, const model_info& m) {
  options o;
  o.workers = m.default_workers;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--describe") {
      std::printf(
          "{\"name\": \"%s\", \"reference\": true, \"reference_for\": \"%s\", \"model\": \"%s\", "
          "\"summary\": \"%s\", \"category\": \"%s\", \"default_workers\": %d, "
          "\"workers_bound_connections\": %s, \"max_connections\": %d, \"tunables\": []}\n",
          m.name, m.reference_for, m.model, m.summary, m.category,
          m.default_workers ? m.default_workers : 1, m.default_workers ? "true" : "false",
          m.max_connections);
      std::exit(0);
    }
    if (arg == "--help") usage(m);
    bool takes_value = arg == "--bind" || arg == "--port" || arg == "--backlog" ||
                       (arg == "--workers" && m.default_workers);
    if (!takes_value) usage(m, "unknown option", arg);
    if (++i == argc) usage(m, "option needs a value", arg);
    char* end = nullptr;
    long value = std::strtol(argv[i], &end, 10);
    bool number = *argv[i] != '\0' && *end == '\0';
    if (arg == "--bind")
      o.bind = argv[i];
    else if (!number || value < 0 || value > 65535 || (arg != "--port" && value == 0))
      usage(m, "not a valid number", argv[i]);
    else
      (arg == "--port" ? o.port : arg == "--backlog" ? o.backlog : o.workers) = int(value);
  }
  return o;
}

/// SIGTERM and SIGINT end the process at once with status 0: the contract allows dropping
/// in-flight connections, and a handler that only calls _exit() cannot race a blocking call.
/// Children forked later inherit it.
inline void exit_on_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = [](int) { _exit(0); };
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a peer that resets while we write costs an EPIPE, not the process
}

/// Raises the file limit, installs the stop, opens a blocking listening socket and prints
/// `listening on HOST:PORT` once it listens. Exits 1 when the socket cannot be had.
inline int start(const options& o) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  exit_on_stop_signals();
  sockaddr_storage addr{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
  if (inet_pton(AF_INET, o.bind.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(uint16_t(o.port));
  } else if (inet_pton(AF_INET6, o.bind.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(uint16_t(o.port));
  } else {
    std::fprintf(stderr, "--bind %s: not an IPv4 or IPv6 address\n", o.bind.c_str());
    std::exit(1);
  }
  int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
  socklen_t len = sizeof addr;
  if (fd < 0 || ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      ::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd, o.backlog) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len)) {
    std::fprintf(stderr, "listen on %s:%d: %s\n", o.bind.c_str(), o.port, std::strerror(errno));
    std::exit(1);
  }
  bool is_v6 = addr.ss_family == AF_INET6;
  char host[INET6_ADDRSTRLEN];
  inet_ntop(addr.ss_family, is_v6 ? static_cast<void*>(&v6->sin6_addr) : &v4->sin_addr, host,
            sizeof host);
  std::printf(is_v6 ? "listening on [%s]:%d\n" : "listening on %s:%d\n", host,
              ntohs(is_v6 ? v6->sin6_port : v4->sin_port));
  std::fflush(stdout);
  return fd;
}

/// For the epoll models (sped, fiber, coro): makes `listen_fd` non-blocking and returns an epoll
/// instance watching it (level-triggered) with a null data.ptr, which tells the listener's
/// events from a connection's.
inline int epoll_on_listener(int listen_fd) {
  fcntl(listen_fd, F_SETFL, O_NONBLOCK);
  int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  epoll_event listen_ev{EPOLLIN, {.ptr = nullptr}};
  if (epoll_fd < 0 || epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &listen_ev) != 0) {
    std::perror("epoll");
    std::exit(1);
  }
  return epoll_fd;
}

/// The core's answer to `GET /index.html` on its built-in docroot, byte for byte but for the
/// Date value, which is fixed at the same length (29 bytes): one per way a response ends.
/// tests/e2e/test_references.py compares them with what httpd-sped sends.
inline std::string canned(std::string_view connection_header) {
  std::string r =
      "HTTP/1.1 200 OK\r\nServer: httpbench\r\nContent-Type: text/html; charset=utf-8\r\n";
  r += "Content-Length: " + std::to_string(core::default_index_html.size()) + "\r\n";
  r += "Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n";
  r += connection_header;
  r += "\r\n";
  r += core::default_index_html;
  return r;
}
inline const std::string reply_keep_alive = canned("");  ///< HTTP/1.1, kept open
inline const std::string reply_close = canned("Connection: close\r\n");
inline const std::string reply_keep_alive_1_0 = canned("Connection: keep-alive\r\n");

/// Request bytes of one connection, and the canned replies its complete heads get. Looks at
/// nothing but each head's end, its version (HTTP/1.0 closes unless it asks to be kept alive) and
/// a Connection header's first word.
class request_heads {
 public:
  static constexpr int batch = 64;
  /// Replies to send, in order, pointing into the canned strings (never copied).
  struct replies {
    iovec iov[batch];
    int count = 0;
    bool close = false;  ///< after these: a head asked to close, or one does not fit the buffer
  };

  /// Forgets every byte received, for a new connection.
  void clear() { begin_ = end_ = scanned_ = 0; }

  char* space() { return buf_ + end_; }
  size_t room() const { return sizeof buf_ - end_; }
  void received(size_t n) { end_ += n; }

  /// Fills `out` with the replies to the next (up to `batch`) complete heads and forgets them.
  /// Call again while `out.count == batch && !out.close`.
  void take(replies& out) {
    out.count = 0;
    out.close = false;
    while (out.count < batch && !out.close) {
      // Resume where the last scan stopped, less 3 bytes: a CRLFCRLF may straddle two reads.
      size_t from = scanned_ > begin_ + 3 ? scanned_ - 3 : begin_;
      auto* end = static_cast<char*>(memmem(buf_ + from, end_ - from, "\r\n\r\n", 4));
      if (end == nullptr) {
        scanned_ = end_;
        break;
      }
      const std::string& r = reply_for(buf_ + begin_, end + 2);
      out.iov[out.count++] = {const_cast<char*>(r.data()), r.size()};
      out.close = &r == &reply_close;  // what follows a closing head is never answered
      begin_ = scanned_ = size_t(end + 4 - buf_);
    }
    if (begin_ == end_) {
      begin_ = scanned_ = end_ = 0;
    } else if (room() == 0 && !out.close) {
      if (begin_ == 0) {  // a 4 KiB head: more than the benchmark's clients ever send
        out.close = true;
        return;
      }
      std::memmove(buf_, buf_ + begin_, end_ - begin_);
      end_ -= begin_;
      scanned_ -= begin_;
      begin_ = 0;
    }
  }

 private:
  /// `head` runs to just past the last header line's CRLF.
  static const std::string& reply_for(const char* head, const char* end) {
    auto* line_end = static_cast<const char*>(memchr(head, '\n', size_t(end - head)));
    bool http_1_0 = line_end - head >= 9 && std::memcmp(line_end - 9, "HTTP/1.0\r", 9) == 0;
    for (const char* line = line_end + 1; line < end;) {
      auto* next = static_cast<const char*>(memchr(line, '\n', size_t(end - line))) + 1;
      if (next - line > 11 && strncasecmp(line, "connection:", 11) == 0) {
        const char* v = line + 11;
        while (*v == ' ' || *v == '\t') ++v;
        if (strncasecmp(v, "close", 5) == 0) return reply_close;
        if (strncasecmp(v, "keep-alive", 10) == 0)
          return http_1_0 ? reply_keep_alive_1_0 : reply_keep_alive;
      }
      line = next;
    }
    return http_1_0 ? reply_close : reply_keep_alive;
  }

  char buf_[4096];
  size_t begin_ = 0, end_ = 0, scanned_ = 0;
};

/// Writes every byte of `r` with `writev_fn` (a system call or a user-level thread library's
/// wrapper, blocking until it can write); false on an error.
template <class Writev>
bool send_all(request_heads::replies& r, Writev writev_fn) {
  iovec* iov = r.iov;
  for (int left = r.count; left > 0;) {
    ssize_t sent = writev_fn(iov, left);
    if (sent < 0) return false;
    for (; left > 0 && size_t(sent) >= iov->iov_len; --left) sent -= ssize_t((iov++)->iov_len);
    if (left > 0) {
      iov->iov_base = static_cast<char*>(iov->iov_base) + sent;
      iov->iov_len -= size_t(sent);
    }
  }
  return true;
}

/// One connection's life for the models whose reads and writes block the thread of control
/// (processes, kernel threads, user-level threads): read, answer every complete head, until the
/// peer closes, a head asks to close, or an error.
template <class Read, class Writev>
void serve_blocking(Read read_fn, Writev writev_fn) {
  request_heads heads;
  request_heads::replies out;
  for (;;) {
    ssize_t n = read_fn(heads.space(), heads.room());
    if (n <= 0) return;
    heads.received(size_t(n));
    do {
      heads.take(out);
      if (out.count > 0 && !send_all(out, writev_fn)) return;
    } while (out.count == request_heads::batch && !out.close);
    if (out.close) return;
  }
}

}  // namespace httpbench::reference
