// pipeline — WatPipe, a short pipeline of thread stages (Pariag et al. 2007 §6; a SEDA-style
// staged server without SEDA's resource controllers).
//
// Four stages, each a kernel thread (stage 4 a pool), linked by queues of connections:
//   stage 1  accept:      blocks in poll on the listening socket, accepts until EAGAIN;
//   stage 2  read:        waits for readable connections (epoll, EPOLLONESHOT), reads and parses
//                         (connection::input_space/received): the core queues the responses;
//   stage 3  write-wait:  waits for writable connections (poll over only the connections it holds);
//   stage 4  writers:     --workers threads (default 4) write the responses (writev/sendfile).
// What decides its performance: (1) every request crosses three thread boundaries, so the cost
// is hand-offs and context switches — hence batched hand-off (`--set batch=N`: a stage passes
// and takes up to N connections per lock, and wakes the next stage once per batch, not once
// per connection, as WatPipe merges fd_sets once per batch of work); (2) stage 2 parks a
// connection it hands on with EPOLLONESHOT, so a keep-alive request costs one epoll_ctl (the
// re-arm) and stage 3 polls only the few connections that have output, never all 10,000.
//
// Ownership (the hand-off protocol): a connection (slot) belongs to exactly one stage at a
// time and only its owner touches it — its socket, its core::connection and its idle node.
// It changes owner only by being pushed on a queue; the queue's mutex orders the old owner's
// last access before the new owner's first.
//   stage 1 ─Q12─► stage 2 ─Q23─► stage 3 ─Q34─► stage 4 ─┬─Q42─► stage 2  (all written)
//                                    ▲                    └─Q43─► stage 3  (EAGAIN)
//   - stage 1 creates the slot and pushes it on Q12; stage 2 registers the socket with epoll.
//   - stage 2 owns a connection while it waits for a request. After a read that queued output
//     it pushes the slot on Q23; the fd stays in its epoll set but disarmed (EPOLLONESHOT), so
//     no event for it can arrive until stage 2 re-arms it. Only stage 2 calls epoll_ctl on it.
//   - stage 3 owns it while waiting for POLLOUT, then pushes it on Q34.
//   - a writer owns it while writing: EAGAIN → Q43; everything written → Q42 (stage 2 re-arms
//     it, or starts a lingering close after an error response); "Connection: close" → closes.
//   Responses stay in order because the core's connection orders pipelined responses and no
//   two stages ever hold one connection: stage 2 reads nothing more until the output is gone.
//   Whoever owns a connection closes it (and frees the slot). Stages 2 and 3 keep the deadlines
//   of what they own (core::deadline_lists: stage 2 a request, a head, a lingering close;
//   stage 3 room to send); writers never wait.
// Queues (core::handoff_queue): the forward ones (Q12, Q23, Q34) hold at most `--set queue=N`
// connections and block the producing stage when full (back-pressure up to accept, whose backlog
// then fills); the return ones (Q42, Q43) never block, so there is no wait cycle (each
// connection is in at most one queue, so they never hold more than --max-conns). Stages 2 and 3
// sleep in epoll/poll and are woken by an eventfd written when a queue of theirs goes from empty
// to non-empty; writers sleep on a condition variable.
// Not copied from WatPipe: stages 3 and 4 run concurrently rather than in alternation (the
// ownership rule already keeps them off each other's connections), and stage 2 uses epoll
// rather than select, so 10,000 connections fit.
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <thread>
#include <vector>

#include "core/deadlines.hpp"
#include "core/handoff_queue.hpp"
#include "core/idle_list.hpp"
#include "core/io.hpp"
#include "core/listener.hpp"
#include "core/server.hpp"
#include "core/worker_threads.hpp"

namespace httpbench::backend {

const core::backend_info info{
    .name = "pipeline",
    .model = "pipeline of thread stages (WatPipe)",
    .summary = "accept, read (epoll) and write-wait (poll) threads, and a pool of --workers "
               "writer threads, linked by bounded queues with batched hand-off",
    .paper = "Pariag et al. 2007 §6",
    .category = core::backend_category::pipeline,
    .default_workers = 4,
    .max_connections = 10000,
    .tunables = {{"batch", "32", {}, "most connections a stage hands on or takes in one queue "
                                     "operation (and per wake-up of the next stage)",
                  1, 1 << 16},
                 {"queue", "1024", {}, "capacity of each forward queue (accept→read, "
                                       "read→write-wait, write-wait→writers); a full one blocks "
                                       "the stage feeding it",
                  1, 1 << 20}},
};

namespace {

struct slot {
  slot(const core::server_context& ctx, core::unique_fd socket)
      : conn(ctx.content, ctx.stats, ctx.limits()), fd(socket.get()), owned(std::move(socket)) {
    idle.owner = this;
  }
  core::connection conn;
  core::idle_node idle;  ///< linked only in the deadlines of the stage that owns the slot
  int fd;
  core::unique_fd owned;  ///< closed with the slot
  bool lingering = false;  ///< half-closed after an error response; stage 2 drains until EOF
};

using handoff_queue = core::handoff_queue<slot*>;

class pipeline {
 public:
  pipeline(core::server_context& ctx, size_t batch, size_t queue)
      : ctx_(ctx),
        batch_(batch),
        timeouts_(ctx.limits()),
        read_epoll_(::epoll_create1(EPOLL_CLOEXEC)),
        read_wake_(core::make_eventfd()),
        write_wake_(core::make_eventfd()),
        accepted_(queue, read_wake_.get()),
        to_write_wait_(queue, write_wake_.get()),
        to_writers_(queue, -1, batch),
        written_(handoff_queue::unbounded, read_wake_.get()),
        blocked_(handoff_queue::unbounded, write_wake_.get()) {}

  int run() {
    if (!read_epoll_ || !read_wake_ || !write_wake_) {
      std::perror("httpd-pipeline: epoll/eventfd");
      return 1;
    }
    std::vector<std::thread> threads;
    {
      // Only the main thread takes SIGTERM/SIGINT; the stages watch the stop eventfd or flags.
      core::stop_signals_blocked blocked;
      threads.emplace_back([this] { accept_stage(); });
      threads.emplace_back([this] { read_stage(); });
      threads.emplace_back([this] { write_wait_stage(); });
      for (int i = 0; i < std::max(1, ctx_.config.workers); ++i)
        threads.emplace_back([this] { writer_stage(); });
    }

    pollfd stop{ctx_.stop_fd, POLLIN, 0};
    while (::poll(&stop, 1, -1) <= 0) {}
    // The stop policy: the stages see the stop themselves (stage 2 closes idle connections);
    // connections in progress get the grace period.
    stopping_ = true;
    core::signal_eventfd(read_wake_.get());
    core::signal_eventfd(write_wake_.get());
    core::grace_period grace = ctx_.grace();
    grace.begin();
    live_.drain(grace);
    shutdown_ = true;
    for (handoff_queue* q : {&accepted_, &to_write_wait_, &to_writers_, &written_, &blocked_})
      q->shut_down();
    core::signal_eventfd(read_wake_.get());
    core::signal_eventfd(write_wake_.get());
    for (std::thread& t : threads) t.join();
    return 0;
  }

 private:
  // The owner of `s` closes it (how it ended is counted: broken(), timed_out(), or ~connection).
  void finish(slot* s) {
    delete s;  // closes the socket
    live_.closed();
  }

  // ---- stage 1: accept ----
  void accept_stage() {
    core::acceptor acceptor(ctx_.listener.get(), &ctx_.stats);
    std::vector<slot*> out;
    // At the cap the rest wait in the backlog until a connection closes (or the stop).
    while (live_.wait_below(ctx_.config.max_conns, ctx_.stop_fd)) {
      pollfd fds[2] = {{ctx_.listener.get(), POLLIN, 0}, {ctx_.stop_fd, POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) continue;
      if (fds[1].revents != 0) break;
      // Accept until EAGAIN, the cap, or a full batch: one wake-up serves a burst.
      core::unique_fd fd;
      while (out.size() < batch_ && live_.get() < ctx_.config.max_conns &&
             acceptor.accept_one(fd, true) == core::accept_status::accepted) {
        live_.opened();
        out.push_back(new slot(ctx_, std::move(fd)));
      }
      if (!accepted_.push_and_clear(out)) return;
    }
  }

  // ---- stage 2: wait for readable connections, read and parse ----
  void read_stage() {
    int ep = read_epoll_.get();
    char wake_tag = 0, stop_tag = 0;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = &wake_tag;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, read_wake_.get(), &ev);
    ev.data.ptr = &stop_tag;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, ctx_.stop_fd, &ev);
    core::deadline_lists deadlines(timeouts_);
    std::vector<slot*> owned;  ///< by fd: what stage 2 owns now, for the stop
    std::vector<slot*> out, arrived;
    std::vector<epoll_event> events(512);
    bool stopping = false, stopped_reading = false;

    // A lingering close keeps the deadline it started with; otherwise core::rearm: a request
    // wait restarts when bytes arrived, a head's never does.
    auto arm = [&](slot* s, int op, bool progressed) {
      epoll_event e{};
      e.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
      e.data.ptr = s;
      ::epoll_ctl(ep, op, s->fd, &e);
      if (static_cast<size_t>(s->fd) >= owned.size()) owned.resize(size_t(s->fd) * 2 + 1);
      owned[s->fd] = s;
      int64_t now = core::idle_list::now_ms();
      if (!s->lingering) core::rearm(deadlines, s->idle, s->conn, progressed, now);
      else if (!s->idle.linked()) deadlines.start(s->idle, core::wait_kind::linger, now);
    };
    auto release = [&](slot* s) {  // no longer ours (handed on or closing)
      deadlines.remove(s->idle);
      owned[s->fd] = nullptr;
    };
    auto close_slot = [&](slot* s) {
      release(s);
      finish(s);
    };
    auto hand_on = [&](slot* s) {
      release(s);
      out.push_back(s);
      if (out.size() >= batch_) to_write_wait_.push_and_clear(out);
    };
    auto on_readable = [&](slot* s) {
      core::connection& c = s->conn;
      if (s->lingering)
        return core::drain_linger(s->fd) ? close_slot(s) : arm(s, EPOLL_CTL_MOD, false);
      core::io_status read = core::read_into(s->fd, c);
      if (read == core::io_status::error) {
        c.broken();
        return close_slot(s);
      }
      if (c.wants_write()) return hand_on(s);
      if (c.wants_close() || (stopping && c.idle())) return close_slot(s);
      arm(s, EPOLL_CTL_MOD, read == core::io_status::ok);
    };

    while (!shutdown_) {
      int timeout = deadlines.ms_until_next(stopping ? 50 : 1000, core::idle_list::now_ms());
      int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), timeout);
      bool woken = false;
      for (int i = 0; i < n; ++i) {
        void* p = events[i].data.ptr;
        if (p == &wake_tag) woken = true;
        else if (p == &stop_tag) stopping = true;
        else on_readable(static_cast<slot*>(p));
      }
      stopping = stopping || stopping_;
      if (woken || stopping) {
        core::clear_eventfd(read_wake_.get());
        arrived.clear();
        accepted_.take_all(arrived);
        size_t fresh = arrived.size();
        written_.take_all(arrived);
        for (size_t i = 0; i < arrived.size(); ++i) {
          slot* s = arrived[i];
          core::connection& c = s->conn;
          if (stopping && c.idle()) {
            finish(s);
          } else if (i >= fresh && c.wants_close()) {  // an error response went out
            core::start_linger(s->fd);
            s->lingering = true;
            arm(s, EPOLL_CTL_MOD, false);
          } else {
            arm(s, i < fresh ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, true);
          }
        }
      }
      if (stopping && !stopped_reading) {
        // Idle keep-alive connections go now; ones in the middle of a request get the grace.
        stopped_reading = true;
        ::epoll_ctl(ep, EPOLL_CTL_DEL, ctx_.stop_fd, nullptr);
        for (slot* s : owned)
          if (s != nullptr && s->conn.idle() && !s->lingering) close_slot(s);
      }
      to_write_wait_.push_and_clear(out);
      int64_t now = core::idle_list::now_ms();
      while (core::idle_node* expired = deadlines.expired(now)) {
        slot* s = static_cast<slot*>(expired->owner);
        if (!s->lingering) s->conn.timed_out();
        close_slot(s);
      }
    }
  }

  // ---- stage 3: wait for writable connections ----
  void write_wait_stage() {
    core::deadline_lists deadlines(timeouts_);
    std::vector<slot*> waiting, out;
    std::vector<pollfd> fds;
    bool woken = false;
    while (!shutdown_) {
      if (woken) {
        core::clear_eventfd(write_wake_.get());
        size_t before = waiting.size();
        to_write_wait_.take_all(waiting);
        blocked_.take_all(waiting);
        int64_t now = core::idle_list::now_ms();
        for (size_t i = before; i < waiting.size(); ++i)
          deadlines.start(waiting[i]->idle, core::wait_kind::send, now);
      }
      fds.clear();
      fds.push_back({write_wake_.get(), POLLIN, 0});
      for (slot* s : waiting) fds.push_back({s->fd, POLLOUT, 0});
      int timeout = deadlines.ms_until_next(stopping_ ? 50 : 1000, core::idle_list::now_ms());
      if (::poll(fds.data(), fds.size(), timeout) < 0) continue;
      woken = fds[0].revents != 0;
      // Writable (or broken: the writer finds out) connections go to the writers, in order.
      size_t kept = 0;
      for (size_t i = 0; i < waiting.size(); ++i) {
        slot* s = waiting[i];
        if (fds[i + 1].revents != 0) {
          deadlines.remove(s->idle);
          out.push_back(s);
        } else {
          waiting[kept++] = s;
        }
      }
      waiting.resize(kept);
      to_writers_.push_and_clear(out);  // wakes one writer per `batch` connections
      // A peer that takes nothing for --send-timeout loses its connection, reset.
      int64_t now = core::idle_list::now_ms();
      while (core::idle_node* expired = deadlines.expired(now)) {
        slot* s = static_cast<slot*>(expired->owner);
        deadlines.remove(s->idle);
        waiting.erase(std::find(waiting.begin(), waiting.end(), s));
        core::abort_on_close(s->fd);
        s->conn.timed_out();
        finish(s);
      }
    }
  }

  // ---- stage 4: write ----
  void writer_stage() {
    std::vector<slot*> work, done, again;
    for (;;) {
      work.clear();
      if (to_writers_.take_wait(work, batch_) == 0) return;
      for (slot* s : work) {
        core::connection& c = s->conn;
        switch (core::write_from(s->fd, c)) {
          case core::io_status::again: again.push_back(s); break;
          case core::io_status::ok:
            if (c.wants_close() && !c.closing_on_error()) finish(s);
            else done.push_back(s);
            break;
          default:
            c.broken();
            finish(s);
            break;
        }
      }
      written_.push_and_clear(done);
      blocked_.push_and_clear(again);
    }
  }

  core::server_context& ctx_;
  size_t batch_;
  core::wait_timeouts timeouts_;
  /// Stage 2's epoll instance, made before stage 1 accepts anything: a burst of connections
  /// can fill the descriptor table before stage 2's thread runs.
  core::unique_fd read_epoll_;
  core::unique_fd read_wake_, write_wake_;  ///< eventfds stages 2 and 3 sleep on
  handoff_queue accepted_;       ///< Q12
  handoff_queue to_write_wait_;  ///< Q23
  handoff_queue to_writers_;     ///< Q34
  handoff_queue written_;        ///< Q42
  handoff_queue blocked_;        ///< Q43
  core::live_count live_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> shutdown_{false};
};

}  // namespace

int run(core::server_context& ctx) {
  return pipeline(ctx, ctx.number("batch"), ctx.number("queue")).run();
}

}  // namespace httpbench::backend
