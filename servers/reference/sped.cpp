// ref-sped — the floor of the single-process event-driven model (SPED): one process, one
// thread, non-blocking sockets, one level-triggered epoll loop. A readable connection costs one
// read and one writev of canned bytes; the listening socket is drained with accept4 until
// EAGAIN. epoll_ctl runs once per connection (add; the close removes it) and twice more only
// when a reply does not fit the socket's send buffer (wait for EPOLLOUT, then back to EPOLLIN).
// A connection's state is kept by fd and reused by the next connection on that fd: a new
// connection costs no allocation, no zeroing and no page fault.
#include <fcntl.h>
#include <sys/epoll.h>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "reference_common.h"

namespace ref = httpbench::reference;

namespace {

const ref::model_info info{
    .name = "ref-sped",
    .reference_for = "sped",
    .model = "event-driven, single process (SPED), reference",
    .summary = "one epoll loop, one read and one writev of a canned reply per request",
    .category = "event",
    .default_workers = 0,
    .max_connections = 10000,
};

struct connection {
  int fd;
  ref::request_heads heads;
  std::string unsent;  ///< reply bytes the send buffer had no room for
  bool close_after_unsent = false;
};

int epoll_fd;
std::vector<std::unique_ptr<connection>> connections;  ///< by fd

connection* open_connection(int fd) {
  if (size_t(fd) >= connections.size()) connections.resize(size_t(fd) + 1);
  auto& c = connections[size_t(fd)];
  if (!c) c = std::make_unique_for_overwrite<connection>();  // the read buffer stays unwritten
  c->fd = fd;
  c->heads.clear();
  c->unsent.clear();
  c->close_after_unsent = false;
  return c.get();
}

void watch(connection* c, uint32_t events) {
  epoll_event ev{events, {.ptr = c}};
  epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c->fd, &ev);
}

/// Answers every complete head received; false when the connection is done.
bool answer(connection* c) {
  ref::request_heads::replies out;
  do {
    c->heads.take(out);
    if (out.count == 0) break;
    ssize_t sent = ::writev(c->fd, out.iov, out.count);
    if (sent < 0 && errno != EAGAIN) return false;
    size_t done = sent < 0 ? 0 : size_t(sent);
    for (int i = 0; i < out.count; ++i) {  // a short write: keep the rest for EPOLLOUT
      if (done >= out.iov[i].iov_len) {
        done -= out.iov[i].iov_len;
        continue;
      }
      c->unsent.append(static_cast<char*>(out.iov[i].iov_base) + done, out.iov[i].iov_len - done);
      done = 0;
    }
    if (!c->unsent.empty()) {
      c->close_after_unsent = out.close;
      watch(c, EPOLLOUT);
      return true;
    }
  } while (out.count == ref::request_heads::batch && !out.close);
  return !out.close;
}

bool on_readable(connection* c) {
  ssize_t n = ::read(c->fd, c->heads.space(), c->heads.room());
  if (n < 0 && errno == EAGAIN) return true;
  if (n <= 0) return false;
  c->heads.received(size_t(n));
  return answer(c);
}

bool on_writable(connection* c) {
  ssize_t sent = ::write(c->fd, c->unsent.data(), c->unsent.size());
  if (sent < 0) return errno == EAGAIN;
  c->unsent.erase(0, size_t(sent));
  if (!c->unsent.empty()) return true;
  if (c->close_after_unsent) return false;
  watch(c, EPOLLIN);
  return answer(c);  // heads that arrived with the ones just answered
}

void accept_all(int listen_fd) {
  for (;;) {
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or out of descriptors: the rest wait in the backlog
    epoll_event ev{EPOLLIN, {.ptr = open_connection(fd)}};
    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int listen_fd = ref::start(ref::parse_options(argc, argv, info));
  epoll_fd = ref::epoll_on_listener(listen_fd);
  epoll_event events[256];
  for (;;) {
    int n = epoll_wait(epoll_fd, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      auto* c = static_cast<connection*>(events[i].data.ptr);
      if (c == nullptr) {
        accept_all(listen_fd);
      } else if (!(c->unsent.empty() ? on_readable(c) : on_writable(c))) {
        ::close(c->fd);
      }
    }
  }
}
