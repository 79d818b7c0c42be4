#pragma once
/// Child processes of the process-based backends (fork, prefork, symped, st with --workers),
/// forked after the listening socket is open, so that they share it, the content cache and the
/// shared counters. One supervisor, in the main process, owns them:
///  - a child gets a parent-death signal (nothing outlives a parent killed outright), SIGCHLD
///    back to its default and no signal blocked, runs its body and _exits with its result: it
///    never returns into main() or prints the stats line;
///  - the parent learns of exits from a signalfd (exit_fd()) that it polls beside its other
///    descriptors, so an exit costs no extra wake-up and none is lost, and reaps in reap();
///  - a pool child (start_pool()) that dies is restarted, at once or, while children keep dying
///    within a second of their start, after a pause that doubles from 0.1 s up to 5 s;
///  - stop(): SIGTERM to every child, reaping while they finish within the grace period
///    (--grace), SIGKILL to the rest;
///  - the connections a child held when it ended are counted as cut (docs/interfaces.md): a
///    pool child keeps the count of its open connections in a shared cell of its slot
///    (server_context::open_in_process), and a child per connection that dies of a signal lost
///    its one connection.
#include <signal.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "buffer_pool.hpp"
#include "unique_fd.hpp"

namespace httpbench::core {

struct server_context;

/// An allocator whose memory a forked child does not inherit (mmap, then MADV_DONTFORK): for
/// the parent's own bookkeeping of its children. Heap memory the parent writes while a child is
/// alive is shared copy-on-write with that child, so every such write costs the parent a page
/// fault and a 4 KiB copy; memory the child never had costs neither.
template <class T>
struct unforked_allocator {
  using value_type = T;
  unforked_allocator() = default;
  template <class U>
  unforked_allocator(const unforked_allocator<U>&) noexcept {}
  T* allocate(size_t n);
  void deallocate(T* p, size_t n) noexcept;
  template <class U>
  bool operator==(const unforked_allocator<U>&) const noexcept { return true; }
};

class supervisor {
 public:
  /// `death_signal` is what a child receives when the parent dies: SIGTERM lets it finish what
  /// it serves; SIGKILL is for a child that would not notice SIGTERM (blocked in accept()).
  /// Blocks SIGCHLD in the calling (single-threaded) process until destroyed.
  supervisor(server_context& ctx, int death_signal);
  ~supervisor();
  supervisor(const supervisor&) = delete;
  supervisor& operator=(const supervisor&) = delete;

  /// Keeps `slots` children running `run(slot)` (slot = 0 .. slots-1) until stop(). False when
  /// one of them could not be forked (it is tried again after a pause).
  bool start_pool(size_t slots, std::function<int(size_t slot)> run);

  /// Forks one child that runs `run()` and is not replaced when it exits (fork's child per
  /// connection); when such a child dies of a signal other than our SIGKILL, whatever it served
  /// is lost and counts as an error. False when fork() failed. Before the first one, the parent
  /// primes its buffer pool with a connection's two buffers (prime_buffer_pool: each child then
  /// finds them in its copy instead of setting the pool up and calling malloc itself).
  template <class Run>
  bool spawn_one(Run&& run) {
    if (!primed_) {
      prime_buffer_pool(2);
      one_shot_.reserve(4096 / sizeof(pid_t));  // one page, so that the list seldom grows
      primed_ = true;
    }
    pid_t pid = fork_child();
    if (pid == 0) _exit(run());
    if (pid < 0) return false;
    one_shot_.push_back(pid);
    return true;
  }

  /// Readable once a child has exited: poll it, then call reap().
  int exit_fd() const { return exit_fd_.get(); }
  /// Reaps every child that has exited.
  void reap();
  /// Restarts the pool children whose pause is over. Returns the milliseconds until the next
  /// pending restart, or -1 when none is pending: a poll timeout.
  int refill();
  /// Children alive (or exited and not reaped yet).
  size_t live() const;

  /// For a parent that only supervises a pool (prefork, symped, st): reaps and restarts until
  /// the stop arrives, then returns; call stop() after anything that must come first.
  void supervise();
  /// SIGTERM to every child, reaping them for up to --grace (plus a moment for children that
  /// run the grace period themselves to exit), then SIGKILL and reap the rest.
  void stop();

  /// A counter per pool slot in shared memory, for the children to add to and the parent to
  /// report (symped's accepts per process). Valid after start_pool().
  std::atomic<uint64_t>& slot_counter(size_t slot) { return cells_[slot].counter; }
  /// Pool children restarted so far.
  uint64_t restarts() const { return restarts_; }

 private:
  using clock = std::chrono::steady_clock;
  struct pool_slot {
    pid_t pid = 0;
    clock::time_point started{}, not_before{};
    clock::duration pause{};  ///< before the next restart; grows while children die young
  };

  /// fork() with the child set up (see the top of the file); in the parent, the pid or -1.
  pid_t fork_child();
  void start(size_t slot);
  void reaped(pid_t pid, int status);

  /// Shared by the parent and a pool child, one cache line each: the children write theirs on
  /// every connection, and must not slow each other down.
  struct alignas(64) slot_cell {
    std::atomic<uint64_t> counter{0};
    std::atomic<int64_t> open{0};  ///< the child's open connections (its open_in_process)
  };

  server_context& ctx_;
  int death_signal_;
  pid_t parent_;
  sigset_t previous_mask_{};
  unique_fd exit_fd_;
  std::function<int(size_t)> pool_run_;
  std::vector<pool_slot> pool_;
  /// The children per connection alive: in memory they do not share, so that recording one
  /// (here) and forgetting it (reaped) make no copy-on-write fault in the parent.
  std::vector<pid_t, unforked_allocator<pid_t>> one_shot_;
  bool primed_ = false;  ///< spawn_one primed the buffer pool and reserved one_shot_
  slot_cell* cells_ = nullptr;  ///< MAP_SHARED, one per pool slot
  uint64_t restarts_ = 0;
  bool stopping_ = false;
};

/// In a child that serves one connection at a time with blocking reads (fork, prefork): from
/// now on SIGTERM and SIGINT set stop_flag and shut reading down on the socket given to
/// serving(), so a request already received is answered and an idle connection ends at once.
void end_reading_on_stop();

/// The socket such a child serves now (-1: none). One set after the stop has its reading shut
/// down at once.
void serving(int fd);

}  // namespace httpbench::core
