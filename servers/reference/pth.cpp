// ref-pth — the floor of the GNU Pth model: the main Pth thread accepts with pth_accept and
// spawns one Pth thread per connection, which reads and writes a canned reply with pth_read and
// pth_writev. Pth wants blocking descriptors (it switches them to non-blocking around each call
// itself) and waits in a scheduler built on select(), so descriptors beyond FD_SETSIZE (1024)
// cannot be served and are closed.
#include <pth.h>

#include <cstdint>
#include <cstdio>

#include "reference_common.h"

namespace ref = httpbench::reference;

namespace {

const ref::model_info info{
    .name = "ref-pth",
    .reference_for = "pth",
    .model = "user-level threads, M:1 (GNU Pth), reference",
    .summary = "one Pth thread per connection over Pth's select() scheduler",
    .category = "user-thread",
    .default_workers = 0,
    .max_connections = 1000,
};

void* serve(void* arg) {
  int fd = int(reinterpret_cast<intptr_t>(arg));
  ref::serve_blocking([fd](void* buf, size_t n) { return pth_read(fd, buf, n); },
                      [fd](const iovec* iov, int n) { return pth_writev(fd, iov, n); });
  ::close(fd);
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  int listen_fd = ref::start(ref::parse_options(argc, argv, info));
  if (!pth_init()) {
    std::perror("ref-pth: pth_init");
    return 1;
  }
  pth_attr_t attr = pth_attr_new();
  pth_attr_set(attr, PTH_ATTR_JOINABLE, FALSE);
  pth_attr_set(attr, PTH_ATTR_STACK_SIZE, 64 * 1024);  // the pth backend's default --stack-size
  for (;;) {
    int fd = pth_accept(listen_fd, nullptr, nullptr);
    if (fd < 0) continue;
    if (fd >= FD_SETSIZE ||
        pth_spawn(attr, serve, reinterpret_cast<void*>(intptr_t{fd})) == nullptr)
      ::close(fd);
  }
}
