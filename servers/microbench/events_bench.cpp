// Event notification against the number of idle descriptors (von Leitner 2003's select/poll/
// epoll graph): N idle connections (Unix stream sockets whose peers are held open by a helper
// process, so they never become readable) plus one that becomes readable each iteration. One
// iteration = write one byte to the active connection's peer, one wait that reports the active
// descriptor, read the byte back. The write and the read are the same for every mechanism; the
// wait is what differs:
//  - select: copy the interest set (select overwrites it), select(), find the ready bit (O(N)).
//  - poll: poll() over all N+1 entries, find the entry with revents (O(N)).
//  - epoll: epoll_wait() returns the ready descriptor alone (the kernel keeps a ready list).
//  - io_uring: a poll request per descriptor; one-shot requests re-armed through the same
//    io_uring_enter() that waits (as many system calls as epoll), and multishot requests that
//    stay armed, where the completion is often already in the ring when we look (no system call
//    for the wait). Skipped with a message when io_uring is unavailable.
#include <benchmark/benchmark.h>
#include <liburing.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "bench_support.hpp"

namespace {

using namespace httpbench::microbench;

/// N idle descriptors and one active pair (watched end, writer end); the idle ones' peers live
/// in a keeper process for as long as this object does. The active descriptor sits in the middle
/// of the watched ones, the expected place of a random ready connection: poll() and select()
/// queue a wait entry on every descriptor they scan before the first ready one (and none after
/// it), so its place changes their cost.
struct idle_set {
  std::vector<unique_fd> idle;
  unique_fd active, writer;
  std::vector<int> watched;  ///< every watched descriptor, the active one at position N/2
  int max_fd = -1;
  fd_keeper keeper;

  /// False (with `error`) when the descriptors cannot be had.
  bool open(size_t n, std::string& error) {
    raise_fd_limit();
    std::vector<int> peers;
    auto hand_over = [&] {
      keeper.keep(peers);
      for (int fd : peers) close(fd);
      peers.clear();
    };
    for (size_t i = 0; i <= n; ++i) {
      int sv[2];
      if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        error = "socketpair after " + std::to_string(i) + " descriptors: " + std::strerror(errno);
        hand_over();
        return false;
      }
      watched.push_back(sv[0]);
      max_fd = std::max(max_fd, sv[0]);
      if (i == n / 2) {
        active.reset(sv[0]);
        writer.reset(sv[1]);
        continue;
      }
      idle.emplace_back(sv[0]);
      peers.push_back(sv[1]);
      // Small batches keep the peers' numbers low: with 1,000 idle, select() needs every
      // watched descriptor below FD_SETSIZE (1024).
      if (peers.size() == 8) hand_over();
    }
    hand_over();
    return true;
  }

  /// One byte in, as a client's request would arrive.
  bool poke() {
    char byte = 'x';
    return write(writer.get(), &byte, 1) == 1;
  }
  /// The byte out again, so the descriptor is idle for the next iteration.
  bool drain() {
    char byte;
    return read(active.get(), &byte, 1) == 1;
  }
};

/// Opens the set for state.range(0) idle descriptors; false after SkipWithError on failure.
bool open_or_skip(benchmark::State& state, idle_set& set) {
  std::string error;
  if (set.open(static_cast<size_t>(state.range(0)), error)) return true;
  state.SkipWithError(error.c_str());
  return false;
}

void finish(benchmark::State& state, bool ok, const char* what) {
  if (!ok) state.SkipWithError(what);
  state.SetItemsProcessed(state.iterations());
}

void events_select(benchmark::State& state) {
  idle_set set;
  if (!open_or_skip(state, set)) return;
  if (set.max_fd >= FD_SETSIZE) {
    state.SkipWithError("descriptors beyond FD_SETSIZE: select() cannot watch them");
    return;
  }
  fd_set interest;
  FD_ZERO(&interest);
  for (int fd : set.watched) FD_SET(fd, &interest);
  bool ok = true;
  for (auto _ : state) {
    if (!set.poke()) { ok = false; break; }
    fd_set ready = interest;
    int n = select(set.max_fd + 1, &ready, nullptr, nullptr, nullptr);
    int found = -1;
    for (int fd = 0; n > 0 && fd <= set.max_fd; ++fd)
      if (FD_ISSET(fd, &ready)) { found = fd; break; }
    if (found != set.active.get() || !set.drain()) { ok = false; break; }
  }
  finish(state, ok, "select did not report the active descriptor");
}

void events_poll(benchmark::State& state) {
  idle_set set;
  if (!open_or_skip(state, set)) return;
  std::vector<pollfd> fds;
  for (int fd : set.watched) fds.push_back({fd, POLLIN, 0});
  bool ok = true;
  for (auto _ : state) {
    if (!set.poke()) { ok = false; break; }
    int n = poll(fds.data(), fds.size(), -1);
    int found = -1;
    for (size_t i = 0; n > 0 && i < fds.size(); ++i)
      if (fds[i].revents != 0) { found = fds[i].fd; break; }
    if (found != set.active.get() || !set.drain()) { ok = false; break; }
  }
  finish(state, ok, "poll did not report the active descriptor");
}

void events_epoll(benchmark::State& state) {
  idle_set set;
  if (!open_or_skip(state, set)) return;
  unique_fd ep(epoll_create1(EPOLL_CLOEXEC));
  if (!ep) die("epoll_create1");
  auto watch = [&](int fd) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl");
  };
  for (int fd : set.watched) watch(fd);
  epoll_event events[64];
  bool ok = true;
  for (auto _ : state) {
    if (!set.poke()) { ok = false; break; }
    int n = epoll_wait(ep.get(), events, 64, -1);
    if (n != 1 || events[0].data.fd != set.active.get() || !set.drain()) { ok = false; break; }
  }
  finish(state, ok, "epoll did not report the active descriptor");
}

/// A ring with a poll request on every descriptor of the set.
struct poll_ring {
  io_uring ring{};
  bool ready = false;
  ~poll_ring() {
    if (ready) io_uring_queue_exit(&ring);  // cancels every armed poll
  }
  /// Returns 0 or a negative errno.
  int open() {
    int rc = io_uring_queue_init(4096, &ring, 0);
    ready = rc == 0;
    return rc;
  }
  /// Queues a poll for `fd` (submitting the queue first when it is full).
  void arm(int fd, bool multishot) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    if (sqe == nullptr) {
      if (io_uring_submit(&ring) < 0) die("io_uring_submit");
      sqe = io_uring_get_sqe(&ring);
    }
    if (multishot)
      io_uring_prep_poll_multishot(sqe, fd, POLLIN);
    else
      io_uring_prep_poll_add(sqe, fd, POLLIN);
    io_uring_sqe_set_data64(sqe, static_cast<uint64_t>(fd));
  }
};

template <bool multishot>
void events_io_uring(benchmark::State& state) {
  poll_ring r;
  if (int rc = r.open(); rc < 0) {
    state.SkipWithError(("io_uring unavailable (io_uring_queue_init: " +
                         std::string(std::strerror(-rc)) + "): skipped")
                            .c_str());
    return;
  }
  idle_set set;
  if (!open_or_skip(state, set)) return;
  for (int fd : set.watched) r.arm(fd, multishot);
  if (io_uring_submit(&r.ring) < 0) die("io_uring_submit");
  const uint64_t active = static_cast<uint64_t>(set.active.get());
  bool ok = true;
  for (auto _ : state) {
    if (!set.poke()) { ok = false; break; }
    io_uring_cqe* cqe = nullptr;
    // One-shot: the re-arm queued last iteration goes in with the wait, in one system call.
    int rc = multishot ? io_uring_wait_cqe(&r.ring, &cqe)
                       : io_uring_submit_and_wait(&r.ring, 1);
    if (!multishot && rc >= 0) rc = io_uring_peek_cqe(&r.ring, &cqe);
    if (rc < 0 || cqe == nullptr || cqe->user_data != active || cqe->res < 0) { ok = false; break; }
    bool rearm = !multishot || !(cqe->flags & IORING_CQE_F_MORE);
    io_uring_cqe_seen(&r.ring, cqe);
    if (!set.drain()) { ok = false; break; }
    if (rearm) {
      r.arm(set.active.get(), multishot);
      if (multishot && io_uring_submit(&r.ring) < 0) { ok = false; break; }
    }
  }
  finish(state, ok, "io_uring did not report the active descriptor");
}

/// Idle counts: 1 to 10,000 in roughly half-decade steps; select stops below FD_SETSIZE.
constexpr int64_t idle_counts[] = {1, 10, 100, 300, 1000, 3000, 10000};

void register_all() {
  struct mechanism {
    const char* name;
    void (*fn)(benchmark::State&);
    int64_t max_idle;
  };
  const mechanism mechanisms[] = {
      {"events/select", events_select, 1000},
      {"events/poll", events_poll, 10000},
      {"events/epoll", events_epoll, 10000},
      {"events/io_uring_poll", events_io_uring<false>, 10000},
      {"events/io_uring_poll_multishot", events_io_uring<true>, 10000},
  };
  for (const mechanism& m : mechanisms)
    for (int64_t n : idle_counts)
      if (n <= m.max_idle)
        benchmark::RegisterBenchmark(m.name, m.fn)->Arg(n)->ArgName("idle")->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  return run_benchmarks(argc, argv);
}
