// ref-st — the floor of the State Threads model: the primordial ST thread accepts with
// st_accept and creates one ST thread per connection, which reads and writes a canned reply with
// st_read and st_writev (the system call first; on EAGAIN the thread waits in ST's scheduler).
// Debian's libst has no epoll: the scheduler polls every waiting descriptor with poll() on each
// pass, and with the default select() st_init would lower the file limit to 1024.
#include <st.h>

#include <cstdio>

#include "reference_common.h"

namespace ref = httpbench::reference;

namespace {

const ref::model_info info{
    .name = "ref-st",
    .reference_for = "st",
    .model = "user-level threads, M:1 (State Threads), reference",
    .summary = "one ST thread per connection over ST's poll() scheduler",
    .category = "user-thread",
    .default_workers = 0,
    .max_connections = 10000,
};

void* serve(void* arg) {
  auto* conn = static_cast<st_netfd_t>(arg);
  ref::serve_blocking(
      [conn](void* buf, size_t n) { return st_read(conn, buf, n, ST_UTIME_NO_TIMEOUT); },
      [conn](const iovec* iov, int n) { return st_writev(conn, iov, n, ST_UTIME_NO_TIMEOUT); });
  st_netfd_close(conn);
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  int listen_fd = ref::start(ref::parse_options(argc, argv, info));
  if (st_set_eventsys(ST_EVENTSYS_POLL) < 0 || st_init() < 0) {
    std::perror("ref-st: st_init");
    return 1;
  }
  st_netfd_t listener = st_netfd_open_socket(listen_fd);
  for (;;) {
    st_netfd_t conn = st_accept(listener, nullptr, nullptr, ST_UTIME_NO_TIMEOUT);
    if (conn == nullptr) continue;
    // 64 KiB stacks, the st backend's default --stack-size; ST reuses the stacks of ended threads.
    if (st_thread_create(serve, conn, 0, 64 * 1024) == nullptr) st_netfd_close(conn);
  }
}
