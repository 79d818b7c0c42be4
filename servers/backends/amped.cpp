// amped — Asymmetric Multi-Process Event-Driven, the Flash server's architecture (Pai et al.
// 1999, as Pariag et al. 2007 §2 describe it): the SPED loop, plus helpers that perform the
// operations that may block on the disk, so that a page-cache miss does not stop the loop.
//
// The loop is sped's (core::event_loop) with a file_gate. Before it sends a file range with
// sendfile, the gate asks the kernel whether the next window (up to 256 KiB) is in the page
// cache — Flash used mincore(); here cachestat() (see page_cache). Resident: sendfile sends the
// window. Not resident: the range goes to a helper thread through a handoff_queue and the
// connection leaves the poller; the helper reads the window into the page cache (blocking
// there, not in the loop; the read also starts the kernel's read-ahead; it copies nothing:
// sendfile to /dev/null) and hands the connection back through a second queue, whose eventfd
// wakes the loop, which then sends the window.
// What decides its performance:
// (1) the check costs one cachestat (~0.5 µs) per window sent from a file, nothing for bodies
//     kept in memory (below --sendfile-threshold), so a cached workload runs at sped's speed;
// (2) `--set helpers=N` (default 8) misses are read at once: the disk's parallelism, which a
//     SPED loop never uses because it waits for one read at a time;
// (3) a hand-off costs a queue push and an eventfd write each way, and only on a miss.
// Helpers are threads, not processes as in Flash: they share the content store's descriptors
// (the core opens every file at start, so what can block is reading, not open), and Pariag et
// al. note that AMPED helpers "may or may not share address spaces".
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "core/event_loop.hpp"
#include "core/handoff_queue.hpp"
#include "core/poller.hpp"
#include "core/server.hpp"
#include "core/worker_threads.hpp"

namespace httpbench::backend {

const core::backend_info info{
    .name = "amped",
    .model = "event-driven, single process with disk helper threads (AMPED, Flash)",
    .summary = "sped's epoll loop; a file range not in the page cache (cachestat) is read by "
               "a helper thread and handed back through a queue and an eventfd",
    .paper = "Pariag et al. 2007 §2 (AMPED, the Flash server of Pai et al. 1999)",
    .category = core::backend_category::event,
    .default_workers = 1,
    .max_connections = 10000,
    .tunables = {{"helpers", "8", {}, "helper threads that read file ranges missing from the "
                                      "page cache (the misses read at once)", 1, 256},
                 {"residency", "cachestat", {"cachestat", "nowait"},
                  "how the loop asks whether a range is in the page cache: cachestat() (where "
                  "the kernel refuses it, as nowait) or preadv2(RWF_NOWAIT) into a buffer"}},
};

namespace {

/// How much of a file range the gate checks and a helper reads at once.
constexpr size_t window_bytes = 256 * 1024;

/// Whether a range of one of the content store's open files is in the page cache. Used by the
/// loop's thread only.
///
/// cachestat() (Linux 6.5) counts the cached pages of a range without mapping the file. mincore()
/// needs a mapping per file, and with 10,000 of them a call cost ~2.8 µs here (a fifth of the CPU
/// of a cached 32 KiB response) where cachestat costs ~0.5 µs. Where cachestat is missing, or
/// refused (EPERM: the kernel answers only for files the caller could write, as mincore lies
/// about the others since Linux 5.0), preadv2(RWF_NOWAIT) answers instead: it reads only what is
/// cached, into a scratch buffer — exact, but a copy.
class page_cache {
 public:
  /// `use_cachestat` false: always preadv2(RWF_NOWAIT) (`--set residency=nowait`).
  explicit page_cache(bool use_cachestat) : cachestat_works_(use_cachestat) {}

  bool resident(int fd, off_t offset, size_t length) {
    if (cachestat_works_ && !refused(fd)) {
      cachestat_range range{static_cast<uint64_t>(offset), length};
      cachestat_result got{};
      if (::syscall(cachestat_syscall, fd, &range, &got, 0) == 0) {
        size_t first = static_cast<size_t>(offset) / page_;
        size_t end = (static_cast<size_t>(offset) + length + page_ - 1) / page_;
        return got.nr_cache >= end - first;
      }
      if (errno == ENOSYS) cachestat_works_ = false;
      else if (errno == EPERM) refuse(fd);
      else return true;  // cannot tell: send, as sped does
    }
    if (!scratch_) scratch_ = std::make_unique<char[]>(window_bytes);
    iovec iov{scratch_.get(), std::min(length, window_bytes)};
    ssize_t n = ::preadv2(fd, &iov, 1, offset, RWF_NOWAIT);
    if (n < 0) return errno != EAGAIN;
    return n == 0 || static_cast<size_t>(n) == iov.iov_len;  // 0: end of file, nothing to wait for
  }

 private:
  static constexpr long cachestat_syscall = 451;  // the same number on every architecture
  struct cachestat_range {
    uint64_t off, len;
  };
  struct cachestat_result {
    uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
  };

  bool refused(int fd) const {
    return static_cast<size_t>(fd) < refused_.size() && refused_[static_cast<size_t>(fd)];
  }
  void refuse(int fd) {
    if (static_cast<size_t>(fd) >= refused_.size()) refused_.resize(static_cast<size_t>(fd) + 64);
    refused_[static_cast<size_t>(fd)] = true;
  }

  size_t page_ = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  bool cachestat_works_;
  std::vector<bool> refused_;  ///< by descriptor: cachestat said EPERM
  std::unique_ptr<char[]> scratch_;
};

/// What a helper is asked to read, and what it hands back when done.
struct fetch {
  int fd;
  off_t offset;
  size_t length;
  void* key;  ///< the loop's connection, opaque here
};

/// The event loop's file_gate: the residency check on the loop's thread, and the helper
/// threads that read what is missing.
class disk_helpers final : public core::file_gate {
 public:
  disk_helpers(size_t helpers, bool use_cachestat)
      : done_fd_(core::make_eventfd()),
        // Unbounded both ways: the loop must never block on a push, and a helper never waits
        // for the loop (at most one fetch per connection is outstanding anyway).
        todo_(core::handoff_queue<fetch>::unbounded, -1),
        done_(core::handoff_queue<void*>::unbounded, done_fd_.get()),
        cache_(use_cachestat) {
    core::stop_signals_blocked quiet;  // the helpers inherit it: the stop is the loop's business
    for (size_t i = 0; i < helpers; ++i) threads_.emplace_back([this] { read_ranges(); });
  }
  ~disk_helpers() override {
    todo_.shut_down();  // a helper in a pread finishes it first
    for (std::thread& t : threads_) t.join();
  }
  disk_helpers(const disk_helpers&) = delete;
  disk_helpers& operator=(const disk_helpers&) = delete;

  bool ok() const { return done_fd_.valid(); }
  uint64_t fetches() const { return fetches_; }

  size_t sendable(const core::file_range& range, void* key) override {
    size_t window = std::min(range.length, window_bytes);
    // A window a helper has just read is sent without asking again: that saves a check, and a
    // file that shrank after start (whose window could never be all cached) cannot loop.
    if (!just_fetched_.empty() && just_fetched_.erase(key) > 0) return window;
    if (cache_.resident(range.fd, range.offset, window)) return window;
    ++fetches_;
    fetch f{range.fd, range.offset, window, key};
    todo_.push({&f, 1});
    return 0;
  }
  int ready_fd() const override { return done_fd_.get(); }
  void take_ready(std::vector<void*>& keys) override {
    core::clear_eventfd(done_fd_.get());  // before taking, so a push in between signals again
    size_t from = keys.size();
    done_.take_all(keys);
    just_fetched_.insert(keys.begin() + static_cast<ptrdiff_t>(from), keys.end());
  }

 private:
  /// A helper: reads each range it is given into the page cache, hands the connection back.
  /// It reads with sendfile to /dev/null: the kernel waits for every page of the range, as a
  /// read() would, but copies nothing (/dev/null's splice drops the pages).
  void read_ranges() {
    core::unique_fd sink(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    std::vector<fetch> mine;
    while (todo_.take_wait(mine, 1) > 0) {
      for (const fetch& f : mine) {
        off_t offset = f.offset;
        for (size_t left = f.length; left > 0;) {
          ssize_t n = ::sendfile(sink.get(), f.fd, &offset, left);
          if (n < 0 && errno == EINTR) continue;
          if (n <= 0) break;  // the loop's sendfile will meet the error and close the connection
          left -= static_cast<size_t>(n);
        }
        done_.push({&f.key, 1});
      }
      mine.clear();
    }
  }

  core::unique_fd done_fd_;
  core::handoff_queue<fetch> todo_;
  core::handoff_queue<void*> done_;
  page_cache cache_;
  std::unordered_set<void*> just_fetched_;  ///< connections given back, not yet sent to
  uint64_t fetches_ = 0;  ///< ranges handed to helpers (the loop's thread only)
  std::vector<std::thread> threads_;
};

}  // namespace

int run(core::server_context& ctx) {
  disk_helpers helpers(ctx.number("helpers"), ctx.setting("residency") == "cachestat");
  if (!helpers.ok()) {
    std::perror("httpd-amped: eventfd");
    return 1;
  }
  core::event_loop_options options{.listen_fd = ctx.listener.get(), .gate = &helpers};
  int rc = core::event_loop<core::epoll_poller>(ctx, options).run();
  ctx.extra_stats_json = "\"disk_fetches\": " + std::to_string(helpers.fetches());
  return rc;
}

}  // namespace httpbench::backend
