#pragma once
/// What several microbenchmark programs share: an owned descriptor, the open-file limit, a
/// child process that keeps descriptors open for us, loopback TCP pairs and a monotonic clock
/// for manually timed iterations. Set-up code: it may print and abort, the measured loops never.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <utility>

#include <benchmark/benchmark.h>

namespace httpbench::microbench {

/// Prints `what` with strerror(errno) and aborts: a broken set-up, not a measurement.
[[noreturn]] inline void die(const char* what) {
  std::fprintf(stderr, "microbench: %s: %s\n", what, std::strerror(errno));
  std::abort();
}

/// Owns one descriptor; closes it when destroyed or reset.
class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) : fd_(fd) {}
  unique_fd(unique_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& other) noexcept {
    reset(std::exchange(other.fd_, -1));
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  /// Gives up ownership without closing.
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.
inline rlim_t raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) die("getrlimit");
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) die("setrlimit");
  return rl.rlim_cur;
}

/// CLOCK_MONOTONIC in nanoseconds (vDSO: ~20 ns, no system call).
inline int64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

/// Closes a TCP socket with a reset rather than a FIN, so that thousands of benchmark
/// connections leave no TIME_WAIT entries behind to exhaust the ephemeral ports.
inline void close_with_reset(int fd) {
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd);
}

/// A listening TCP socket on 127.0.0.1 with an ephemeral port.
inline unique_fd loopback_listener(int backlog = 4096) {
  unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) die("socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("bind 127.0.0.1:0");
  if (::listen(fd.get(), backlog) != 0) die("listen");
  return fd;
}

/// The address a socket is bound to.
inline sockaddr_in local_address(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) die("getsockname");
  return a;
}

/// A child process that keeps the descriptors it is sent open until this object is destroyed.
/// It lets a benchmark hold N idle connections at a cost of N descriptors here instead of 2N
/// (the peers live in the keeper), so 10,000 of them fit the 20,000 hard limit. The child dies
/// with us (PR_SET_PDEATHSIG) and is reaped by the destructor.
class fd_keeper {
 public:
  fd_keeper() {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) die("socketpair");
    pid_ = fork();
    if (pid_ < 0) die("fork (fd keeper)");
    if (pid_ == 0) {
      // Keep only stdio and the channel: an inherited descriptor (another keeper's channel, a
      // listener, a client end) would stay open in here for as long as we run.
      int channel = sv[1];
      if (channel > 3) close_range(3, static_cast<unsigned>(channel) - 1, 0);
      close_range(static_cast<unsigned>(channel) + 1, ~0U, 0);
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      raise_fd_limit();
      serve(channel);
    }
    ::close(sv[1]);
    channel_.reset(sv[0]);
  }
  fd_keeper(const fd_keeper&) = delete;
  fd_keeper& operator=(const fd_keeper&) = delete;
  ~fd_keeper() {
    channel_.reset();  // EOF: the keeper exits, closing everything it holds
    int status;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }

  /// Hands `fds` to the keeper (up to 250 per message); the caller still owns and closes its
  /// copies. Returns once the keeper has them, so the caller's copies may be closed at once.
  void keep(std::span<const int> fds) {
    while (!fds.empty()) {
      size_t n = std::min<size_t>(fds.size(), max_per_message);
      char byte = 'k';
      iovec iov{&byte, 1};
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_per_message)];
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE(sizeof(int) * n);
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * n);
      std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * n);
      if (sendmsg(channel_.get(), &msg, 0) != 1) die("sendmsg (fd keeper)");
      if (read(channel_.get(), &byte, 1) != 1) die("fd keeper did not answer");
      kept_ += n;
      fds = fds.subspan(n);
    }
  }
  /// Descriptors handed over so far.
  size_t kept() const { return kept_; }

 private:
  static constexpr size_t max_per_message = 250;  // the kernel's SCM_MAX_FD is 253

  [[noreturn]] static void serve(int channel) {
    for (;;) {
      char byte;
      iovec iov{&byte, 1};
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_per_message)];
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      ssize_t n = recvmsg(channel, &msg, MSG_CMSG_CLOEXEC);
      if (n <= 0) _exit(n == 0 ? 0 : 1);
      if (msg.msg_flags & MSG_CTRUNC) _exit(2);  // over our limit: the benchmark sees EOF
      // The received descriptors stay open: keeping them is the whole job.
      if (write(channel, &byte, 1) != 1) _exit(1);
    }
  }

  pid_t pid_ = -1;
  unique_fd channel_;
  size_t kept_ = 0;
};


/// Units of one kind kept alive while another unit of that kind is measured (von Leitner's
/// "does it get slower as more are alive?"). Google Benchmark calls a benchmark function several
/// times (to size the iteration count, then once per repetition), so a population outlives the
/// call and only changes size when the next benchmark asks for another count or kind.
class population {
 public:
  virtual ~population() = default;
  /// Makes exactly `n` units alive. On failure returns false with a reason in `error`.
  virtual bool resize(size_t n, std::string& error) = 0;
};

namespace detail {
inline std::unique_ptr<population>& current_population() {
  static std::unique_ptr<population> p;
  return p;
}
}  // namespace detail

/// The population of kind `P` with `state.range(0)` units alive, created (and any population of
/// another kind ended) on first use; nullptr after SkipWithError when it cannot be had.
template <class P, class... Args>
P* alive(benchmark::State& state, Args&&... args) {
  auto& slot = detail::current_population();
  auto* p = dynamic_cast<P*>(slot.get());
  if (p == nullptr) {
    slot.reset();  // the other kind's units end before this kind's start
    auto fresh = std::make_unique<P>(std::forward<Args>(args)...);
    p = fresh.get();
    slot = std::move(fresh);
  }
  std::string error;
  if (!p->resize(static_cast<size_t>(state.range(0)), error)) {
    state.SkipWithError(error.c_str());
    return nullptr;
  }
  return p;
}

/// Ends the current population, whatever its kind (call before exit).
inline void end_population() { detail::current_population().reset(); }

/// The alive counts every spawn benchmark is run at.
inline constexpr int64_t alive_counts[] = {0, 1000, 4000, 10000};

/// Registers `name` once per alive count, as "NAME/alive:N", real time (other threads and
/// processes do part of the work).
inline void register_alive(const char* name, void (*fn)(benchmark::State&), int64_t count) {
  benchmark::RegisterBenchmark(name, fn)->Arg(count)->ArgName("alive")->UseRealTime();
}

}  // namespace httpbench::microbench
