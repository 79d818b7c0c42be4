#pragma once
/// What several microbenchmark programs share: the open-file limit, a helper child process on a
/// socket channel, a child that keeps descriptors open for us, loopback TCP pairs, a monotonic
/// clock for manually timed iterations, a hand-driven coroutine type and main()'s run of Google
/// Benchmark. Descriptors are owned by the core's unique_fd. Set-up code: it may print and
/// abort, the measured loops never.
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
#include <coroutine>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <span>
#include <string>
#include <utility>

#include <benchmark/benchmark.h>

#include "core/unique_fd.hpp"

namespace httpbench::microbench {

using httpbench::core::unique_fd;

/// Prints `what` with strerror(errno) and aborts: a broken set-up, not a measurement.
[[noreturn]] inline void die(const char* what) {
  std::fprintf(stderr, "microbench: %s: %s\n", what, std::strerror(errno));
  std::abort();
}

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

/// A helper child process forked at construction. It keeps only stdio and its end of a Unix
/// stream socket pair (an inherited descriptor — another helper's channel, a listener, a client
/// end — would stay open in there for as long as it runs), dies with us (PR_SET_PDEATHSIG) and
/// runs `serve(channel)`, which ends in _exit (a return exits 0); EOF on the channel is its
/// signal to exit. The destructor closes our end and reaps it.
class helper_process {
 public:
  /// `name` names the helper in an abort message.
  helper_process(const char* name, void (*serve)(int channel)) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) die("socketpair");
    pid_ = fork();
    if (pid_ < 0) die(("fork (" + std::string(name) + ")").c_str());
    if (pid_ == 0) {
      int channel = sv[1];
      if (channel > 3) close_range(3, static_cast<unsigned>(channel) - 1, 0);
      close_range(static_cast<unsigned>(channel) + 1, ~0U, 0);
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      serve(channel);
      _exit(0);
    }
    ::close(sv[1]);
    channel_.reset(sv[0]);
  }
  helper_process(const helper_process&) = delete;
  helper_process& operator=(const helper_process&) = delete;
  ~helper_process() {
    channel_.reset();  // EOF: the helper ends what it holds and exits
    int status;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }

  /// Our end of the channel (owned by this object).
  int channel() const { return channel_.get(); }

 private:
  pid_t pid_ = -1;
  unique_fd channel_;
};

/// A child process that keeps the descriptors it is sent open until this object is destroyed.
/// It lets a benchmark hold N idle connections at a cost of N descriptors here instead of 2N
/// (the peers live in the keeper), so 10,000 of them fit the 20,000 hard limit.
class fd_keeper {
 public:
  fd_keeper() : helper_("fd keeper", serve) {}

  /// Hands `fds` to the keeper (up to 250 per message); the caller still owns and closes its
  /// copies. Returns once the keeper has them, so the caller's copies may be closed at once.
  void keep(std::span<const int> fds) {
    while (!fds.empty()) {
      size_t n = std::min<size_t>(fds.size(), max_per_message);
      message m;
      m.header.msg_controllen = CMSG_SPACE(sizeof(int) * n);
      cmsghdr* c = CMSG_FIRSTHDR(&m.header);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * n);
      std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * n);
      if (sendmsg(helper_.channel(), &m.header, 0) != 1) die("sendmsg (fd keeper)");
      if (read(helper_.channel(), &m.byte, 1) != 1) die("fd keeper did not answer");
      kept_ += n;
      fds = fds.subspan(n);
    }
  }
  /// Descriptors handed over so far.
  size_t kept() const { return kept_; }

 private:
  static constexpr size_t max_per_message = 250;  // the kernel's SCM_MAX_FD is 253

  /// One message on the channel, either way: a byte, with room for max_per_message descriptors
  /// beside it (the whole room unless the sender sets a shorter msg_controllen).
  struct message {
    char byte = 'k';
    iovec iov{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_per_message)];
    msghdr header{};
    message() {
      header.msg_iov = &iov;
      header.msg_iovlen = 1;
      header.msg_control = control;
      header.msg_controllen = sizeof control;
    }
    message(const message&) = delete;  // header points into this object
    message& operator=(const message&) = delete;
  };

  [[noreturn]] static void serve(int channel) {
    raise_fd_limit();
    for (;;) {
      message m;
      ssize_t n = recvmsg(channel, &m.header, MSG_CMSG_CLOEXEC);
      if (n <= 0) _exit(n == 0 ? 0 : 1);
      if (m.header.msg_flags & MSG_CTRUNC) _exit(2);  // over our limit: the benchmark sees EOF
      // The received descriptors stay open: keeping them is the whole job.
      if (write(channel, &m.byte, 1) != 1) _exit(1);
    }
  }

  helper_process helper_;
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

/// The smallest coroutine type: suspended at its start and at its end, resumed and destroyed by
/// hand through `handle` (no scheduler, no result).
struct manual_coroutine {
  struct promise_type {
    manual_coroutine get_return_object() {
      return manual_coroutine{std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() { std::terminate(); }
  };
  std::coroutine_handle<promise_type> handle;
};

/// main() once the program has registered its benchmarks: Google Benchmark's command line, the
/// selected benchmarks, then the end of the population (if any) while the program's libraries
/// and helpers still run. Returns main()'s exit status (1 for an unrecognised argument).
inline int run_benchmarks(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  end_population();
  return 0;
}

}  // namespace httpbench::microbench
