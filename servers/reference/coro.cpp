// ref-coro — the floor of the coroutine model (CPC, Kerneis & Chroboczek 2009): one C++20
// stackless coroutine per connection over one epoll loop, written as a thread would be (read,
// answer, read…), every `co_await` a point where the compiler cuts it into an event handler.
// There is no stack per connection and no context switch: the coroutine frame (the socket's
// wait state, the request buffer, the replies) is the only per-connection state, and resuming a
// connection is an indirect call from the loop. A socket is registered with epoll once, at its
// first wait, edge-triggered for both directions, with a ready flag per direction; a short read
// clears the read flag, so after its reply a keep-alive connection suspends without a read that
// says EAGAIN: one read, one writev and one resumption per request, and no epoll_ctl.
// Frames are pooled (as ref-fiber's stacks, and ref-sped's state kept by fd): an ended
// connection's frame is kept for the next one, so a new connection costs no malloc and no page
// fault. httpd-coro allocates its frames with plain operator new; what that costs it shows as
// the core's part, not the model's.
#include <fcntl.h>
#include <sys/epoll.h>

#include <cerrno>
#include <coroutine>
#include <exception>
#include <new>

#include "reference_common.h"

namespace ref = httpbench::reference;

namespace {

const ref::model_info info{
    .name = "ref-coro",
    .reference_for = "coro",
    .model = "event-driven, written as threads (C++20 stackless coroutines, as CPC), reference",
    .summary = "one coroutine per connection, co_await on readiness from one epoll loop",
    .category = "event",
    .default_workers = 0,
    .max_connections = 10000,
};

int epoll_fd;

/// A connection as epoll knows it. Lives in the coroutine's frame.
struct waiter {
  int fd;
  uint32_t ready = EPOLLIN | EPOLLOUT;  ///< directions not known to say EAGAIN (edge-triggered)
  uint32_t waiting = 0;                 ///< the direction the coroutine is suspended on
  bool registered = false;              ///< with epoll, from the first wait on
  std::coroutine_handle<> suspended{};
};

/// `co_await readiness{w, EPOLLIN}`: goes on at once while the direction is ready, else
/// suspends until epoll reports an edge for it.
struct readiness {
  waiter& w;
  uint32_t direction;
  bool await_ready() const noexcept { return w.ready & direction; }
  void await_suspend(std::coroutine_handle<> h) noexcept {
    if (!w.registered) {  // EPOLL_CTL_ADD reports the readiness already there
      epoll_event ev{EPOLLIN | EPOLLOUT | EPOLLET, {.ptr = &w}};
      epoll_ctl(epoll_fd, EPOLL_CTL_ADD, w.fd, &ev);
      w.registered = true;
    }
    w.waiting = direction;
    w.suspended = h;
  }
  void await_resume() const noexcept {}
};

struct free_frame {
  free_frame* next;
};
free_frame* free_frames = nullptr;

/// A connection's coroutine: starts at once, runs to its first wait, and frees (pools) its own
/// frame at its end; nobody awaits it, the loop only resumes it.
struct detached {
  struct promise_type {
    detached get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
    // serve() is this promise's only coroutine: every frame has the same size.
    static void* operator new(size_t n) {
      if (free_frame* f = free_frames) {
        free_frames = f->next;
        return f;
      }
      return ::operator new(n);
    }
    static void operator delete(void* p) noexcept { free_frames = new (p) free_frame{free_frames}; }
  };
};

detached serve(int fd) {
  waiter w{fd};
  ref::request_heads heads;  // a plain member array: the frame's buffer is never zeroed
  ref::request_heads::replies out;
  for (;;) {
    co_await readiness{w, EPOLLIN};
    ssize_t n = ::read(fd, heads.space(), heads.room());
    if (n < 0 && errno == EAGAIN) {
      w.ready &= ~uint32_t(EPOLLIN);
      continue;
    }
    if (n <= 0) break;
    if (size_t(n) < heads.room()) w.ready &= ~uint32_t(EPOLLIN);  // emptied: wait for an edge
    heads.received(size_t(n));
    bool failed = false;
    do {
      heads.take(out);
      iovec* iov = out.iov;
      for (int left = out.count; left > 0 && !failed;) {  // send_all, suspending on a full socket
        co_await readiness{w, EPOLLOUT};
        ssize_t sent = ::writev(fd, iov, left);
        if (sent < 0) {
          if (errno == EAGAIN)
            w.ready &= ~uint32_t(EPOLLOUT);
          else
            failed = true;
          continue;
        }
        for (; left > 0 && size_t(sent) >= iov->iov_len; --left) sent -= ssize_t((iov++)->iov_len);
        if (left > 0) {
          iov->iov_base = static_cast<char*>(iov->iov_base) + sent;
          iov->iov_len -= size_t(sent);
        }
      }
    } while (!failed && out.count == ref::request_heads::batch && !out.close);
    if (failed || out.close) break;
  }
  ::close(fd);  // which also takes it out of epoll
}

}  // namespace

int main(int argc, char** argv) {
  int listen_fd = ref::start(ref::parse_options(argc, argv, info));
  epoll_fd = ref::epoll_on_listener(listen_fd);
  epoll_event events[256];
  for (;;) {
    int n = epoll_wait(epoll_fd, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      if (auto* w = static_cast<waiter*>(events[i].data.ptr)) {
        uint32_t e = events[i].events;
        if (e & (EPOLLHUP | EPOLLERR)) e |= EPOLLIN | EPOLLOUT;  // the next call will say so
        w->ready |= e & (EPOLLIN | EPOLLOUT);
        if (w->ready & w->waiting) {
          w->waiting = 0;
          w->suspended.resume();  // to its next wait, or its end (which frees w)
        }
        continue;
      }
      for (int fd;
           (fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;)
        serve(fd);
    }
  }
}
