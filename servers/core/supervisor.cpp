#include "supervisor.hpp"

#include <poll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "server.hpp"

namespace httpbench::core {
namespace {

/// Children that run the grace period themselves (an event loop, an ST scheduler) end their
/// last connections when it ends; this is the moment they get to exit before SIGKILL.
constexpr int child_exit_margin_ms = 250;
/// A pool child that dies sooner than this after its start is restarted only after a pause.
constexpr auto died_young = std::chrono::seconds(1);
constexpr auto first_pause = std::chrono::milliseconds(100);
constexpr auto longest_pause = std::chrono::seconds(5);

std::string program(const server_context& ctx) { return "httpd-" + std::string(ctx.info.name); }

}  // namespace

supervisor::supervisor(server_context& ctx, int death_signal)
    : ctx_(ctx), death_signal_(death_signal), parent_(::getpid()) {
  // SIGCHLD stays pending (blocked) and is read from a signalfd: no handler, no lost exit.
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, &previous_mask_);
  exit_fd_.reset(::signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!exit_fd_) {
    std::fprintf(stderr, "%s: signalfd: %s\n", program(ctx).c_str(), std::strerror(errno));
    std::abort();
  }
}

supervisor::~supervisor() {
  sigprocmask(SIG_SETMASK, &previous_mask_, nullptr);
  if (cells_ != nullptr) ::munmap(cells_, std::max<size_t>(pool_.size(), 1) * sizeof *cells_);
}

pid_t supervisor::fork_child() {
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  exit_fd_.reset();
  signal(SIGCHLD, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  ::prctl(PR_SET_PDEATHSIG, death_signal_);
  if (::getppid() != parent_) _exit(0);  // the parent died before the death signal was set
  return 0;
}

bool supervisor::start_pool(size_t slots, std::function<int(size_t)> run) {
  pool_run_ = std::move(run);
  pool_.assign(slots, pool_slot{});
  void* shared = ::mmap(nullptr, std::max<size_t>(slots, 1) * sizeof *cells_,
                        PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared == MAP_FAILED) {
    std::fprintf(stderr, "%s: mmap: %s\n", program(ctx_).c_str(), std::strerror(errno));
    return false;
  }
  cells_ = static_cast<slot_cell*>(shared);
  for (size_t i = 0; i < slots; ++i) new (&cells_[i]) slot_cell();
  for (size_t i = 0; i < slots; ++i) start(i);
  return std::all_of(pool_.begin(), pool_.end(), [](const pool_slot& s) { return s.pid > 0; });
}

void supervisor::start(size_t slot) {
  pool_slot& s = pool_[slot];
  cells_[slot].open.store(0);
  pid_t pid = fork_child();
  if (pid == 0) {
    ctx_.open_in_process = &cells_[slot].open;
    _exit(pool_run_(slot));
  }
  if (pid < 0) {
    std::fprintf(stderr, "%s: fork: %s\n", program(ctx_).c_str(), std::strerror(errno));
    s.pause = first_pause;
    s.not_before = clock::now() + s.pause;
    return;
  }
  s.pid = pid;
  s.started = clock::now();
}

void supervisor::reap() {
  // SIGCHLD is blocked and goes to the signalfd: no signal read means no child has exited since
  // the last reap (one that exits now raises it again), so waitpid() is skipped — the parent of
  // fork calls this before every accept.
  signalfd_siginfo info;
  bool exited = false;
  while (::read(exit_fd_.get(), &info, sizeof info) == sizeof info) exited = true;
  if (!exited) return;
  int status;
  pid_t pid;
  while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) reaped(pid, status);
}

template <class T>
T* unforked_allocator<T>::allocate(size_t n) {
  size_t bytes = std::max<size_t>(n * sizeof(T), 1);
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  ::madvise(p, bytes, MADV_DONTFORK);
  return static_cast<T*>(p);
}

template <class T>
void unforked_allocator<T>::deallocate(T* p, size_t n) noexcept {
  ::munmap(p, std::max<size_t>(n * sizeof(T), 1));
}

template struct unforked_allocator<pid_t>;

void supervisor::reaped(pid_t pid, int status) {
  // Forgotten by swapping in the last one: the list is short-lived and unordered.
  auto it = std::find(one_shot_.begin(), one_shot_.end(), pid);
  if (it != one_shot_.end()) {
    *it = one_shot_.back();
    one_shot_.pop_back();
    // A child killed by a signal (a crash, a kill, our SIGKILL when the grace period ran out)
    // never closed its one connection: it was cut. (Its SIGTERM handler lets it finish.)
    if (WIFSIGNALED(status)) ctx_.stats.count_cut(1);
    return;
  }
  for (size_t i = 0; i < pool_.size(); ++i) {
    pool_slot& s = pool_[i];
    if (s.pid != pid) continue;
    s.pid = 0;
    // Whatever the worker still held (it died, or was stopped) is cut; idle connections too,
    // since their state died with it.
    int64_t held = cells_[i].open.exchange(0);
    if (held > 0) ctx_.stats.count_cut(static_cast<uint64_t>(held));
    if (stopping_) return;
    ++restarts_;
    auto now = clock::now();
    if (now - s.started >= died_young) s.pause = {};
    else if (s.pause == clock::duration{}) s.pause = first_pause;
    else s.pause = std::min<clock::duration>(2 * s.pause, longest_pause);
    s.not_before = now + s.pause;
    std::fprintf(stderr, "%s: worker %zu (pid %d) %s %d; restarting it after %lld ms\n",
                 program(ctx_).c_str(), i, static_cast<int>(pid),
                 WIFSIGNALED(status) ? "killed by signal" : "exited with",
                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
                 static_cast<long long>(
                     std::chrono::duration_cast<std::chrono::milliseconds>(s.pause).count()));
    return;
  }
}

int supervisor::refill() {
  auto now = clock::now();
  int next = -1;
  for (size_t i = 0; i < pool_.size() && !stopping_; ++i) {
    if (pool_[i].pid > 0) continue;
    if (pool_[i].not_before <= now) start(i);
    if (pool_[i].pid > 0) continue;
    auto wait = std::chrono::ceil<std::chrono::milliseconds>(pool_[i].not_before - now).count();
    next = next < 0 ? static_cast<int>(wait) : std::min(next, static_cast<int>(wait));
  }
  return next;
}

size_t supervisor::live() const {
  auto alive = [](const pool_slot& s) { return s.pid > 0; };
  return one_shot_.size() + static_cast<size_t>(std::count_if(pool_.begin(), pool_.end(), alive));
}

void supervisor::supervise() {
  while (!ctx_.stop_requested()) {
    pollfd fds[2] = {{ctx_.stop_fd, POLLIN, 0}, {exit_fd_.get(), POLLIN, 0}};
    if (::poll(fds, 2, refill()) > 0 && fds[0].revents != 0) break;
    reap();
  }
}

void supervisor::stop() {
  stopping_ = true;
  auto each_child = [&](auto f) {
    for (pid_t pid : one_shot_) f(pid);
    for (const pool_slot& s : pool_)
      if (s.pid > 0) f(s.pid);
  };
  each_child([](pid_t pid) { ::kill(pid, SIGTERM); });
  grace_period grace(ctx_.config.grace_ms + child_exit_margin_ms);
  grace.begin();
  reap();
  while (live() > 0 && !grace.over()) {
    pollfd exited{exit_fd_.get(), POLLIN, 0};
    ::poll(&exited, 1, grace.ms_left(1000));
    reap();
  }
  std::vector<pid_t> left;
  each_child([&](pid_t pid) { left.push_back(pid); });
  for (pid_t pid : left) {
    ::kill(pid, SIGKILL);
    int status = 0;
    if (::waitpid(pid, &status, 0) == pid) reaped(pid, status);  // counts what it held as cut
  }
  one_shot_.clear();
  for (pool_slot& s : pool_) s.pid = 0;
}

// ---- in a child serving one connection at a time ----

namespace {

volatile std::sig_atomic_t serving_fd = -1;

// Async-signal-safe: shutdown() makes a blocked read return EOF.
extern "C" void on_child_stop(int) {
  int saved = errno;
  stop_flag = 1;
  if (serving_fd >= 0) ::shutdown(serving_fd, SHUT_RD);
  errno = saved;
}

}  // namespace

void end_reading_on_stop() {
  struct sigaction sa {};
  sa.sa_handler = on_child_stop;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
}

void serving(int fd) {
  serving_fd = fd;
  if (fd >= 0 && stop_flag) ::shutdown(fd, SHUT_RD);  // the stop came before the handler knew
}

}  // namespace httpbench::core
