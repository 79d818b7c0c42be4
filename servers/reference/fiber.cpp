// ref-fiber — the floor of the M:1 user-level thread model on Boost.Context: one fiber per
// connection over one epoll loop. A fiber reads and writes a canned reply with non-blocking
// system calls; on EAGAIN it parks (one switch to the scheduler, ~11 ns here) until epoll
// reports its socket ready, and the scheduler resumes it. A socket is registered with epoll
// (edge-triggered) only at its first wait, and for writability only once a write would block,
// so a keep-alive request that finds its bytes waiting costs one read, one writev and no
// epoll_ctl. Stacks are 64 KiB (the fiber backend's default --stack-size) from a pool that
// keeps those of ended fibers, so a new connection costs no allocation and no page fault.
#include <fcntl.h>
#include <sys/epoll.h>

#include <boost/context/fiber.hpp>
#include <boost/context/pooled_fixedsize_stack.hpp>
#include <cerrno>

#include "reference_common.h"

namespace ref = httpbench::reference;
namespace bctx = boost::context;

namespace {

const ref::model_info info{
    .name = "ref-fiber",
    .reference_for = "fiber",
    .model = "user-level threads, M:1 (Boost.Context fibers), reference",
    .summary = "one fiber per connection over one epoll loop",
    .category = "user-thread",
    .default_workers = 0,
    .max_connections = 10000,
};

int epoll_fd;
bctx::pooled_fixedsize_stack stacks(64 * 1024);  // copies share one pool

/// A connection's fiber, as epoll knows it. Lives on the fiber's own stack.
struct task {
  int fd;
  uint32_t watching = 0;  ///< the events registered with epoll so far (none until a first wait)
  bctx::fiber parked;     ///< where the scheduler resumes the fiber
};

/// Runs `call` until it does not say EAGAIN, parking the fiber until `events` between tries.
template <class Call>
ssize_t until_ready(task& t, bctx::fiber& scheduler, uint32_t events, Call call) {
  for (;;) {
    ssize_t r = call();
    if (r >= 0 || errno != EAGAIN) return r;
    if ((t.watching | events) != t.watching) {
      epoll_event ev{t.watching | events | EPOLLET, {.ptr = &t}};
      epoll_ctl(epoll_fd, t.watching ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, t.fd, &ev);
      t.watching |= events;
    }
    // Back to the scheduler, which keeps this fiber's continuation in the task.
    scheduler = std::move(scheduler).resume_with([&t](bctx::fiber&& self) {
      t.parked = std::move(self);
      return bctx::fiber{};
    });
  }
}

void start_fiber(int fd) {
  bctx::fiber fiber{
      std::allocator_arg, stacks, [fd](bctx::fiber&& scheduler) {
        task t{fd, 0, {}};
        ref::serve_blocking(
            [&](void* buf, size_t n) {
              return until_ready(t, scheduler, EPOLLIN, [&] { return ::read(fd, buf, n); });
            },
            [&](const iovec* iov, int n) {
              return until_ready(t, scheduler, EPOLLOUT, [&] { return ::writev(fd, iov, n); });
            });
        ::close(fd);  // which also takes it out of epoll
        return std::move(scheduler);
      }};
  std::move(fiber).resume();  // runs until its first wait, or to its end
}

}  // namespace

int main(int argc, char** argv) {
  int listen_fd = ref::start(ref::parse_options(argc, argv, info));
  epoll_fd = ref::epoll_on_listener(listen_fd);
  epoll_event events[256];
  for (;;) {
    int n = epoll_wait(epoll_fd, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      if (auto* t = static_cast<task*>(events[i].data.ptr)) {
        std::move(t->parked).resume();
        continue;
      }
      for (int fd;
           (fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;)
        start_fiber(fd);
    }
  }
}
