// uring — the single-process event-driven server on Linux's completion interface, io_uring
// (liburing): the SPED model of Pariag et al. 2007 §2.1 without readiness notification. None of
// the papers has it; it is what a SPED server is written on today.
//
// One ring. The loop never asks whether a socket is ready: it queues operations and reaps their
// completions, and its only system call is io_uring_enter, which submits everything queued since
// the last one and waits for the next completions in the same call.
// What decides its performance:
// (1) multishot operations: one accept request yields every connection, and one receive request
//     per keep-alive connection yields every request that arrives on it, into a ring of provided
//     buffers (a buffer is lent only while its bytes are copied into the connection, so an idle
//     connection holds none) — a keep-alive request costs one completion in and one sendmsg out;
//     a connection's first receive is a single one, so a one-request connection (ab's) costs
//     three ring operations (receive, sendmsg, close) and no cancel, and its close is linked
//     behind its last send, in the same submission;
// (2) IORING_SETUP_DEFER_TASKRUN with a single issuer: the kernel runs completion work only when
//     the loop enters the ring, in a batch, instead of interrupting it;
// (3) TCP_NODELAY is set once on the listening socket by the core (accepted sockets inherit it), and closes
//     go through the ring too: a connection costs no system call of its own at all.
// Large files (beyond --sendfile-threshold) go file → pipe → socket with two linked
// IORING_OP_SPLICE requests per pipe-full: zero-copy like sendfile, but run by the kernel's
// io-wq threads, which is also what keeps a page-cache miss from stopping the loop.
// Deadlines (idle, request head, send, lingering close): the core's deadline_lists order the
// connections, rearmed after every completion as event_loop does after every readiness; one
// IORING_OP_TIMEOUT wakes the loop at the first deadline. The stop: a poll request on
// ctx.stop_fd, through the ring.
// A kernel without what this needs (Linux ≥ 6.1) is refused at start with one line naming it.
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/deadlines.hpp"
#include "core/idle_list.hpp"
#include "core/io.hpp"
#include "core/listener.hpp"
#include "core/server.hpp"
#include "core/stats.hpp"

namespace httpbench::backend {

const core::backend_info info{
    .name = "uring",
    .model = "event-driven, single process, completion-based (io_uring)",
    .summary = "one io_uring: multishot accept, multishot receive into provided buffers, "
               "sendmsg, splice for large files; no readiness system calls",
    .paper = "Pariag et al. 2007 §2.1 (SPED), on io_uring; not in the papers",
    .category = core::backend_category::event,
    .default_workers = 1,
    .max_connections = 10000,
    .tunables = {},
};

namespace {

constexpr unsigned sq_entries = 4096;
constexpr unsigned cq_entries = 32768;  // 10,000 connections may all complete in one batch
// Requests are small: 2 KiB buffers. 2,048 of them are touched once at start, so they are part
// of the baseline and not of any connection's memory; a connection that finds the ring empty
// has its receive re-armed once the batch has given buffers back.
constexpr unsigned buffer_count = 2048;  // a power of two
constexpr unsigned buffer_bytes = 2048;
constexpr int buffer_group = 0;
constexpr int pipe_bytes_wanted = 1 << 20;  // fs.pipe-max-size's default
constexpr size_t spare_pipes_kept = 64;

// A request's user_data: a connection's address with the operation in the low 3 bits, or, for
// the loop's own requests, the operation alone.
enum loop_op : uint64_t { ignored = 0, accepting = 1, stop_poll = 2, timer = 3 };
enum conn_op : uint64_t { recv_op = 1, send_op = 2, splice_in_op = 3, splice_out_op = 4,
                          writable_op = 5 };
constexpr uint64_t op_mask = 7;

/// A pipe that carries a file range from the page cache to a socket (splice).
struct splice_pipe {
  core::unique_fd r, w;
  uint32_t capacity = 0;
};

/// The msghdr and iovecs of a sendmsg in flight: they must stay valid until its completion,
/// and only connections that are sending need one, so they come from a free list.
struct send_slot {
  msghdr msg{};
  iovec iov[48];  // connection.cpp queues at most 48 segments
};

/// How far a file range being spliced has got.
enum class file_stage : uint8_t {
  none,
  pair,     ///< file → pipe → socket, linked, in flight
  drain,    ///< pipe → socket in flight (what the pair left in the pipe)
  writable  ///< the socket was full: a poll for POLLOUT in flight
};

struct conn {
  conn(core::server_context& ctx, core::unique_fd socket)
      : c(ctx.content, ctx.stats, ctx.limits()), fd(socket.get()), owned(std::move(socket)) {
    idle.owner = this;
  }
  core::connection c;
  core::idle_node idle;
  std::string held;  ///< bytes received that the connection could not take yet (output full)
  std::unique_ptr<splice_pipe> pipe;  ///< while a file range is being sent
  send_slot* slot = nullptr;          ///< while a sendmsg is in flight
  conn* next_free = nullptr;          ///< in the loop's list of connections to delete
  int fd;
  core::unique_fd owned;  ///< until the ring's close takes it
  uint64_t moved_seen = 0;  ///< c.bytes_moved() when the deadline was last rearmed
  uint32_t in_pipe = 0;   ///< file bytes in the pipe, not yet sent
  uint32_t send_bytes = 0;  ///< bytes of the sendmsg in flight
  int32_t splice_in_res = 0, splice_out_res = 0;
  uint8_t ops = 0;  ///< requests the kernel holds for this connection
  uint8_t splice_pending = 0;
  file_stage stage = file_stage::none;
  bool recv_armed = false, recv_cancelled = false, sending = false, eof_pending = false;
  bool lingering = false, closing = false;
  bool close_linked = false;  ///< a close is queued behind the sendmsg in flight
  bool ring_closed = false;   ///< that close ran: the descriptor is no longer this socket's
  bool reset_at_close = false;  ///< the send deadline expired: SO_LINGER 0 before closing
};

uint64_t tag(conn* k, conn_op op) { return reinterpret_cast<uint64_t>(k) | op; }

class ring_loop {
 public:
  explicit ring_loop(core::server_context& ctx)
      : ctx_(ctx),
        acceptor_(ctx.listener.get(), &ctx.stats),
        grace_(ctx.grace()),
        deadlines_(core::wait_timeouts(ctx.limits())) {}
  ~ring_loop();
  ring_loop(const ring_loop&) = delete;
  ring_loop& operator=(const ring_loop&) = delete;

  int run();

 private:
  bool set_up();
  io_uring_sqe* sqe();
  void arm_accept();
  void arm_timer();
  void reap();
  void dispatch(const io_uring_cqe& cqe);
  void on_accept(int res, uint32_t flags);
  void open_conn(core::unique_fd socket);
  void arm_recv(conn& k, bool multishot = true);
  void cancel_recv(conn& k);
  void on_recv(conn& k, int res, uint32_t flags);
  void take_input(conn& k, const char* data, size_t n);
  void advance(conn& k);
  void rearm_deadline(conn& k);
  void start_send(conn& k);
  void on_send(conn& k, int res);
  void start_splice(conn& k, const core::file_range& range);
  void splice_out(conn& k);
  void on_file_stage(conn& k, conn_op op, int res);
  void close_conn(conn& k, bool io_error);
  void maybe_free(conn& k);
  void begin_stop();
  void expire_deadlines();
  void cut_the_rest();
  void give_back_buffer(unsigned bid);

  core::server_context& ctx_;
  /// Only for the descriptor limit: its spare descriptor drops (and counts as refused) the
  /// connection the ring's accept could not take.
  core::acceptor acceptor_;
  core::grace_period grace_;
  core::deadline_lists deadlines_;
  io_uring ring_{};
  bool ring_ready_ = false;
  io_uring_buf_ring* buf_ring_ = nullptr;
  char* buffers_ = nullptr;
  size_t buf_ring_bytes_ = 0;
  unsigned buffers_returned_ = 0;  ///< given back in this batch, made visible at its end
  std::vector<conn*> by_fd_;       ///< open connections by socket
  std::vector<conn*> rearm_;       ///< receives that ran out of buffers in this batch
  conn* to_free_ = nullptr;        ///< closed, no request left in the kernel
  std::vector<send_slot*> free_slots_;
  std::vector<std::unique_ptr<splice_pipe>> spare_pipes_;
  __kernel_timespec timer_ts_{};
  /// The deadlines of the timeouts in flight, latest first: one is armed only when it is due
  /// before all of them, so they fire from the back.
  std::vector<int64_t> timers_due_;
  int64_t now_ms_ = 0;
  int live_ = 0;     ///< open connections (closing ones not counted)
  int closing_ = 0;  ///< closed connections the kernel still holds requests of
  bool accept_armed_ = false, accept_cancelled_ = false;
};

// One clear line for what the kernel refuses; run() then exits with status 1.
bool refuse(const char* what, int error) {
  std::fprintf(stderr, "httpd-uring: the kernel refuses %s: %s\n", what, std::strerror(error));
  return false;
}

bool ring_loop::set_up() {
  io_uring_params p{};
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE |
            IORING_SETUP_SUBMIT_ALL;
  p.cq_entries = cq_entries;
  if (int r = io_uring_queue_init_params(sq_entries, &ring_, &p); r < 0)
    return refuse(r == -EINVAL ? "IORING_SETUP_DEFER_TASKRUN (io_uring of Linux 6.1 or later)"
                               : "io_uring_setup",
                  -r);
  ring_ready_ = true;
  if (io_uring_probe* probe = io_uring_get_probe_ring(&ring_)) {
    struct { int op; const char* name; } needed[] = {
        {IORING_OP_ACCEPT, "IORING_OP_ACCEPT"},   {IORING_OP_RECV, "IORING_OP_RECV"},
        {IORING_OP_SENDMSG, "IORING_OP_SENDMSG"}, {IORING_OP_SPLICE, "IORING_OP_SPLICE"},
        {IORING_OP_CLOSE, "IORING_OP_CLOSE"},     {IORING_OP_POLL_ADD, "IORING_OP_POLL_ADD"},
        {IORING_OP_TIMEOUT, "IORING_OP_TIMEOUT"}, {IORING_OP_ASYNC_CANCEL, "IORING_OP_ASYNC_CANCEL"}};
    for (auto& n : needed)
      if (!io_uring_opcode_supported(probe, n.op)) {
        io_uring_free_probe(probe);
        return refuse(n.name, EOPNOTSUPP);
      }
    io_uring_free_probe(probe);
  }
  // The provided-buffer ring: the ring of descriptors, then the buffers, touched now.
  buf_ring_bytes_ = buffer_count * sizeof(io_uring_buf) + size_t{buffer_count} * buffer_bytes;
  void* mem = ::mmap(nullptr, buf_ring_bytes_, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (mem == MAP_FAILED) {
    std::fprintf(stderr, "httpd-uring: mmap of the buffers: %s\n", std::strerror(errno));
    return false;
  }
  buf_ring_ = static_cast<io_uring_buf_ring*>(mem);
  buffers_ = static_cast<char*>(mem) + buffer_count * sizeof(io_uring_buf);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uint64_t>(buf_ring_);
  reg.ring_entries = buffer_count;
  reg.bgid = buffer_group;
  if (int r = io_uring_register_buf_ring(&ring_, &reg, 0); r < 0)
    return refuse("a provided-buffer ring (IORING_REGISTER_PBUF_RING)", -r);
  io_uring_buf_ring_init(buf_ring_);
  for (unsigned i = 0; i < buffer_count; ++i)
    io_uring_buf_ring_add(buf_ring_, buffers_ + size_t{i} * buffer_bytes, buffer_bytes, i,
                          io_uring_buf_ring_mask(buffer_count), static_cast<int>(i));
  io_uring_buf_ring_advance(buf_ring_, buffer_count);
  return true;
}

ring_loop::~ring_loop() {
  // Tearing the ring down cancels what the kernel still holds; then nothing refers to a
  // connection, a slot or a buffer any more.
  if (ring_ready_) io_uring_queue_exit(&ring_);
  for (conn* k : by_fd_) delete k;
  while (conn* k = to_free_) {
    to_free_ = k->next_free;
    delete k;
  }
  for (send_slot* s : free_slots_) delete s;
  if (buf_ring_ != nullptr) ::munmap(buf_ring_, buf_ring_bytes_);
}

/// The next free submission entry; submits what is queued when the ring is full.
io_uring_sqe* ring_loop::sqe() {
  io_uring_sqe* s = io_uring_get_sqe(&ring_);
  while (s == nullptr) {
    io_uring_submit(&ring_);
    s = io_uring_get_sqe(&ring_);
  }
  return s;
}

void ring_loop::arm_accept() {
  io_uring_sqe* s = sqe();
  io_uring_prep_multishot_accept(s, ctx_.listener.get(), nullptr, nullptr,
                                 SOCK_NONBLOCK | SOCK_CLOEXEC);
  io_uring_sqe_set_data64(s, accepting);
  accept_armed_ = true;
  accept_cancelled_ = false;
}

/// One IORING_OP_TIMEOUT at the first deadline (of any connection's wait, or the end of the
/// grace period), at most a second away; a second one only when a nearer deadline appears.
void ring_loop::arm_timer() {
  int wait = core::loop_wait_ms(deadlines_, grace_, now_ms_);
  if (wait < 0) return;
  int64_t due = now_ms_ + std::max(wait, 1);
  if (!timers_due_.empty() && due + 2 >= timers_due_.back()) return;
  int64_t ms = due - now_ms_;
  timer_ts_.tv_sec = ms / 1000;
  timer_ts_.tv_nsec = (ms % 1000) * 1'000'000;
  io_uring_sqe* s = sqe();
  io_uring_prep_timeout(s, &timer_ts_, 0, 0);
  io_uring_sqe_set_data64(s, timer);
  timers_due_.push_back(due);
}

int ring_loop::run() {
  if (!set_up()) return 1;
  arm_accept();
  io_uring_sqe* s = sqe();
  io_uring_prep_poll_add(s, ctx_.stop_fd, POLLIN);
  io_uring_sqe_set_data64(s, stop_poll);
  now_ms_ = core::idle_list::now_ms();
  while (!grace_.begun() || (live_ > 0 && !grace_.over())) {
    arm_timer();
    int r = io_uring_submit_and_wait(&ring_, 1);
    if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
      std::fprintf(stderr, "httpd-uring: io_uring_enter: %s\n", std::strerror(-r));
      return 1;
    }
    reap();
    expire_deadlines();
    if (!accept_armed_ && !grace_.begun() && live_ < ctx_.config.max_conns) arm_accept();
  }
  cut_the_rest();
  return 0;
}

/// Handles every completion in the ring, then what the batch left to do.
void ring_loop::reap() {
  now_ms_ = core::idle_list::now_ms();
  unsigned head, seen = 0;
  io_uring_cqe* cqe;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    dispatch(*cqe);
    ++seen;
  }
  io_uring_cq_advance(&ring_, seen);
  io_uring_buf_ring_advance(buf_ring_, static_cast<int>(buffers_returned_));
  buffers_returned_ = 0;
  // Receives that found no buffer, now that the batch has given its buffers back.
  for (conn* k : rearm_) {
    if (k->closing || k->recv_armed) continue;
    if (k->lingering) arm_recv(*k);
    else advance(*k);
  }
  rearm_.clear();
  while (conn* k = to_free_) {
    to_free_ = k->next_free;
    delete k;
  }
}

/// The grace period is over: the connections still open are cut (an error when inside a
/// request), closed through the ring, and deleted once the kernel has given their requests back
/// (cancels and closes complete at once; a splice within a pipe-full), so that each is counted
/// as closed by its own destructor rather than left to main()'s count of the unclosed.
void ring_loop::cut_the_rest() {
  for (conn* k : by_fd_) {
    if (k == nullptr) continue;
    k->c.cut();
    close_conn(*k, false);
  }
  int64_t give_up = core::idle_list::now_ms() + 1000;
  while (closing_ > 0 && core::idle_list::now_ms() < give_up) {
    __kernel_timespec wait{0, 50'000'000};
    io_uring_cqe* cqe = nullptr;
    int r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &wait, nullptr);
    if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY) break;
    reap();
  }
}

void ring_loop::dispatch(const io_uring_cqe& cqe) {
  conn* k = reinterpret_cast<conn*>(cqe.user_data & ~op_mask);
  uint64_t op = cqe.user_data & op_mask;
  if (k == nullptr) {
    switch (op) {
      case accepting: return on_accept(cqe.res, cqe.flags);
      case stop_poll: return begin_stop();
      case timer:
        // The nearest fired (what it woke the loop for runs after the batch); the next one
        // due is the one armed before it.
        if (!timers_due_.empty()) timers_due_.pop_back();
        return;
      default: return;  // a cancel or a close: nothing waits for it
    }
  }
  switch (op) {
    case recv_op: return on_recv(*k, cqe.res, cqe.flags);
    case send_op: return on_send(*k, cqe.res);
    default: return on_file_stage(*k, static_cast<conn_op>(op), cqe.res);
  }
}

void ring_loop::on_accept(int res, uint32_t flags) {
  if (!(flags & IORING_CQE_F_MORE)) accept_armed_ = false;  // re-armed after the batch
  if (res >= 0) {
    core::unique_fd socket(res);
    // After the stop the kernel may still hand over a connection it had accepted for the
    // ring: closed at once, never served, it is counted as refused (as the acceptor counts
    // every connection it closes unserved).
    if (!grace_.begun()) open_conn(std::move(socket));
    else ctx_.stats.count_refused();
    return;
  }
  if ((res == -EMFILE || res == -ENFILE) && !grace_.begun()) {
    // Out of descriptors: the core's acceptor drops the connection at the head of the queue
    // with its spare descriptor (and says so once), as in every other backend.
    core::unique_fd socket;
    if (acceptor_.accept_one(socket, true) == core::accept_status::accepted)
      open_conn(std::move(socket));
  }
}

// The connection counts itself (core::connection's constructor).
void ring_loop::open_conn(core::unique_fd socket) {
  int fd = socket.get();
  if (static_cast<size_t>(fd) >= by_fd_.size()) by_fd_.resize(static_cast<size_t>(fd) * 2 + 1);
  conn* k = new conn(ctx_, std::move(socket));
  by_fd_[static_cast<size_t>(fd)] = k;
  // At the cap: stop accepting until a connection closes; the rest wait in the backlog.
  if (++live_ >= ctx_.config.max_conns && accept_armed_ && !accept_cancelled_) {
    io_uring_sqe* s = sqe();
    io_uring_prep_cancel64(s, accepting, 0);
    io_uring_sqe_set_data64(s, ignored);
    accept_cancelled_ = true;
  }
  arm_recv(*k, false);
  deadlines_.start(k->idle, core::wait_kind::request, now_ms_);
}

/// A connection's first receive is a single one: for a client that sends one request and
/// reads until the close (ab's way, HTTP/1.0) it is the only receive, and no request is left
/// armed that the close would have to cancel first. A connection that wants more input after
/// it (keep-alive, pipelining, a head longer than one buffer) gets a multishot receive, which
/// stays armed across all its requests.
void ring_loop::arm_recv(conn& k, bool multishot) {
  io_uring_sqe* s = sqe();
  if (multishot) io_uring_prep_recv_multishot(s, k.fd, nullptr, 0, 0);
  else io_uring_prep_recv(s, k.fd, nullptr, buffer_bytes, 0);
  s->flags |= IOSQE_BUFFER_SELECT;
  s->buf_group = buffer_group;
  io_uring_sqe_set_data64(s, tag(&k, recv_op));
  ++k.ops;
  k.recv_armed = true;
  k.recv_cancelled = false;
}

void ring_loop::cancel_recv(conn& k) {
  if (!k.recv_armed || k.recv_cancelled) return;
  io_uring_sqe* s = sqe();
  io_uring_prep_cancel64(s, tag(&k, recv_op), 0);
  io_uring_sqe_set_data64(s, ignored);
  k.recv_cancelled = true;
}

void ring_loop::give_back_buffer(unsigned bid) {
  io_uring_buf_ring_add(buf_ring_, buffers_ + size_t{bid} * buffer_bytes, buffer_bytes,
                        static_cast<unsigned short>(bid), io_uring_buf_ring_mask(buffer_count),
                        static_cast<int>(buffers_returned_++));
}

void ring_loop::on_recv(conn& k, int res, uint32_t flags) {
  if (!(flags & IORING_CQE_F_MORE)) {
    k.recv_armed = false;
    --k.ops;
  }
  if (flags & IORING_CQE_F_BUFFER) {
    unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;
    if (res > 0 && !k.closing && !k.lingering)
      take_input(k, buffers_ + size_t{bid} * buffer_bytes, static_cast<size_t>(res));
    give_back_buffer(bid);
  }
  if (k.closing) return maybe_free(k);
  if (k.lingering) {
    // What arrives is dropped; the peer's EOF or an error ends the lingering close, and its
    // deadline (never extended) ends it otherwise. A receive cancelled for held-back bytes
    // before the close began, or out of buffers, is armed again.
    if (res == 0 || (res < 0 && res != -ECANCELED && res != -ENOBUFS)) return close_conn(k, false);
    if (!k.recv_armed) {
      if (res == -ENOBUFS) rearm_.push_back(&k);
      else arm_recv(k);
    }
    return;
  }
  if (res == 0) {
    // EOF: requests already received are answered.
    if (k.held.empty()) k.c.peer_closed();
    else k.eof_pending = true;
  } else if (res == -ENOBUFS) {
    rearm_.push_back(&k);  // the ring ran dry in this batch
    return;
  } else if (res < 0 && res != -ECANCELED) {
    return close_conn(k, true);  // reset by the peer, or another error
  }
  advance(k);
}

/// Hands received bytes to the connection; what it cannot take now (its output queue is full)
/// waits in `held`, and the receive is cancelled so that no more arrives meanwhile.
void ring_loop::take_input(conn& k, const char* data, size_t n) {
  if (!k.held.empty()) {
    k.held.append(data, n);
    return;
  }
  size_t taken = k.c.feed({data, n});
  if (taken < n) {
    k.held.assign(data + taken, n - taken);
    cancel_recv(k);
  }
}

/// After anything happened to `k`: feed what was held back, send what is queued, close when
/// done, keep a receive armed while the connection wants input, and put it in the wait that
/// applies now (core::rearm: bytes moved since the last time restart a request or send wait,
/// never a head's).
void ring_loop::advance(conn& k) {
  core::connection& c = k.c;
  if (!k.held.empty() && c.wants_read()) {
    size_t taken = c.feed(k.held);
    k.held.erase(0, taken);
    if (k.held.empty()) {
      std::string().swap(k.held);
      if (k.eof_pending) c.peer_closed();
    }
  }
  if (!k.sending) {
    if (c.wants_write()) {
      start_send(k);
    } else if (c.wants_close()) {
      if (!c.closing_on_error()) return close_conn(k, false);
      if (!k.lingering) {
        // Lingering close (core/io.hpp): stop sending, read until the peer is done.
        core::start_linger(k.fd);
        k.lingering = true;
        deadlines_.start(k.idle, core::wait_kind::linger, now_ms_);
        if (!k.recv_armed) arm_recv(k);
      }
      return;
    } else if (grace_.begun() && c.idle() && k.held.empty()) {
      return close_conn(k, false);
    }
  }
  if (!k.recv_armed && c.wants_read() && k.held.empty() && !k.eof_pending) arm_recv(k);
  rearm_deadline(k);
}

void ring_loop::rearm_deadline(conn& k) {
  core::rearm(deadlines_, k.idle, k.c, k.c.bytes_moved() != k.moved_seen, now_ms_);
  k.moved_seen = k.c.bytes_moved();
}

void ring_loop::start_send(conn& k) {
  core::pending_output out = k.c.output();
  if (out.iov.empty()) return start_splice(k, out.file);
  send_slot* slot;
  if (free_slots_.empty()) {
    slot = new send_slot;
  } else {
    slot = free_slots_.back();
    free_slots_.pop_back();
  }
  size_t n = std::min(out.iov.size(), std::size(slot->iov));
  std::copy_n(out.iov.begin(), n, slot->iov);
  slot->msg.msg_iov = slot->iov;
  slot->msg.msg_iovlen = n;
  // The connection's last bytes (a one-request client's response): the close goes into the
  // same submission, linked behind the send, so the FIN leaves right behind the response, as
  // after sped's writev and close, rather than a batch later — the client is woken once for
  // both, not twice (under ab, capped: 1.10-1.15x, docs/backends.md). MSG_WAITALL makes a short
  // send fail the link (the kernel retries a partial one), so the close runs only once
  // everything has been sent.
  bool close_behind = n == out.iov.size() && !k.recv_armed && k.c.closes_after(out);
  if (close_behind && io_uring_sq_space_left(&ring_) < 2) io_uring_submit(&ring_);
  io_uring_sqe* s = sqe();
  io_uring_prep_sendmsg(s, k.fd, &slot->msg, MSG_NOSIGNAL | (close_behind ? MSG_WAITALL : 0));
  io_uring_sqe_set_data64(s, tag(&k, send_op));
  if (close_behind) {
    s->flags |= IOSQE_IO_LINK;
    io_uring_sqe* c = sqe();
    io_uring_prep_close(c, k.fd);
    c->flags |= IOSQE_CQE_SKIP_SUCCESS;  // a cancelled one completes with ignored
    io_uring_sqe_set_data64(c, ignored);
    size_t bytes = 0;
    for (size_t i = 0; i < n; ++i) bytes += slot->iov[i].iov_len;
    k.send_bytes = static_cast<uint32_t>(bytes);
    k.close_linked = true;
  }
  k.slot = slot;
  ++k.ops;
  k.sending = true;
}

void ring_loop::on_send(conn& k, int res) {
  --k.ops;
  k.sending = false;
  free_slots_.push_back(std::exchange(k.slot, nullptr));
  if (std::exchange(k.close_linked, false)) {
    // The linked close ran if and only if the send sent everything; otherwise it was
    // cancelled, the socket is still open, and it is closed as any other.
    if (res >= 0 && static_cast<uint32_t>(res) == k.send_bytes) {
      k.ring_closed = true;
      (void)k.owned.release();
    } else if (k.reset_at_close) {
      core::abort_on_close(k.fd);
    }
  }
  if (k.closing) {
    // A cancelled MSG_WAITALL send reports what it had sent: counted, as a plain send's would be.
    if (res > 0) k.c.consumed(static_cast<size_t>(res));
    return maybe_free(k);
  }
  if (res <= 0) return close_conn(k, true);
  k.c.consumed(static_cast<size_t>(res));
  advance(k);
}

/// file → pipe → socket: two linked splices for up to a pipe-full. A short first one cancels
/// the second (the link breaks); whatever is left in the pipe is drained before the next
/// pipe-full.
void ring_loop::start_splice(conn& k, const core::file_range& range) {
  if (!k.pipe) {
    if (!spare_pipes_.empty()) {
      k.pipe = std::move(spare_pipes_.back());
      spare_pipes_.pop_back();
    } else {
      int fds[2];
      if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return close_conn(k, true);
      k.pipe = std::make_unique<splice_pipe>();
      k.pipe->r.reset(fds[0]);
      k.pipe->w.reset(fds[1]);
      ::fcntl(fds[1], F_SETPIPE_SZ, pipe_bytes_wanted);  // else the default 64 KiB
      int size = ::fcntl(fds[1], F_GETPIPE_SZ);
      k.pipe->capacity = size > 0 ? static_cast<uint32_t>(size) : 65536;
    }
  }
  auto chunk = static_cast<unsigned>(std::min<size_t>(range.length, k.pipe->capacity));
  if (io_uring_sq_space_left(&ring_) < 2) io_uring_submit(&ring_);  // keep the pair linked
  io_uring_sqe* in = sqe();
  io_uring_prep_splice(in, range.fd, range.offset, k.pipe->w.get(), -1, chunk, 0);
  in->flags |= IOSQE_IO_LINK;
  io_uring_sqe_set_data64(in, tag(&k, splice_in_op));
  io_uring_sqe* out = sqe();
  io_uring_prep_splice(out, k.pipe->r.get(), -1, k.fd, -1, chunk, SPLICE_F_NONBLOCK);
  io_uring_sqe_set_data64(out, tag(&k, splice_out_op));
  k.ops += 2;
  k.splice_pending = 2;
  k.stage = file_stage::pair;
  k.sending = true;
}

void ring_loop::splice_out(conn& k) {
  io_uring_sqe* s = sqe();
  io_uring_prep_splice(s, k.pipe->r.get(), -1, k.fd, -1, k.in_pipe, SPLICE_F_NONBLOCK);
  io_uring_sqe_set_data64(s, tag(&k, splice_out_op));
  ++k.ops;
  k.splice_pending = 1;
  k.stage = file_stage::drain;
}

void ring_loop::on_file_stage(conn& k, conn_op op, int res) {
  --k.ops;
  if (op == splice_in_op) k.splice_in_res = res;
  else k.splice_out_res = res;  // a splice out, or the poll for POLLOUT
  if (k.splice_pending > 0 && --k.splice_pending > 0) return;  // the pair's other half
  if (k.closing) return maybe_free(k);
  file_stage stage = std::exchange(k.stage, file_stage::none);
  if (stage == file_stage::pair) {
    // A file that ends early cannot be sent at its announced length.
    if (k.splice_in_res <= 0) return close_conn(k, true);
    k.in_pipe += static_cast<uint32_t>(k.splice_in_res);
  }
  int out = k.splice_out_res;
  if (stage == file_stage::writable) {
    if (out < 0) return close_conn(k, true);
    return splice_out(k);
  }
  if (out > 0) {
    k.in_pipe -= static_cast<uint32_t>(out);
    k.c.consumed(static_cast<size_t>(out));
    rearm_deadline(k);
  } else if (out == -EAGAIN) {
    // The socket is full: wait for room through the ring (one poll), then drain the pipe.
    io_uring_sqe* s = sqe();
    io_uring_prep_poll_add(s, k.fd, POLLOUT);
    io_uring_sqe_set_data64(s, tag(&k, writable_op));
    ++k.ops;
    k.stage = file_stage::writable;
    return;
  } else if (out != -ECANCELED) {  // canceled: the pair's first half was short
    return close_conn(k, true);
  }
  if (k.in_pipe > 0) return splice_out(k);
  k.sending = false;
  if (spare_pipes_.size() < spare_pipes_kept) spare_pipes_.push_back(std::move(k.pipe));
  k.pipe.reset();
  advance(k);
}

/// Ends a connection: the requests that could wait for ever (its receive, a send or a poll
/// on a socket the peer no longer reads) are cancelled, then the ring closes the socket
/// (hard-linked, so the close runs only once each cancel has completed, whatever it found) —
/// unless start_send() already linked a close behind the connection's last send; a
/// splice finishes by itself (the socket is non-blocking). It is deleted once the kernel has
/// given back every request that refers to it, so a cancelled sendmsg's msghdr and iovecs stay
/// valid until then. Cancelling by user_data is a hash lookup; by descriptor it would walk every
/// pending poll. `io_error`: the socket failed (connection::broken()); how it ended otherwise
/// was said before (timed_out(), cut()) or is decided by the connection's destructor.
void ring_loop::close_conn(conn& k, bool io_error) {
  if (k.closing) return;
  if (io_error) k.c.broken();
  k.closing = true;
  ++closing_;
  deadlines_.remove(k.idle);
  // (A socket the ring has closed may already have lent its number to a newer connection.)
  if (by_fd_[static_cast<size_t>(k.fd)] == &k) by_fd_[static_cast<size_t>(k.fd)] = nullptr;
  // A splice in flight runs on an io-wq worker, which looks the socket's descriptor up only when
  // it runs: closed now, the number could already belong to the next accepted connection, and
  // the file's bytes would go to that client. So with a splice in flight the socket is closed
  // when the connection is freed, once the kernel has given back every request (a splice to a
  // non-blocking socket ends by itself).
  // Nor is it closed here when start_send() linked a close behind a send (still in flight, or
  // already run): the send is cancelled if it still waits, on_send() finds out which it was,
  // and maybe_free() closes the socket if the ring did not.
  bool close_now = k.splice_pending == 0 && !k.close_linked && !k.ring_closed;
  auto cancel = [&](conn_op op) {
    io_uring_sqe* s = sqe();
    io_uring_prep_cancel64(s, tag(&k, op), 0);
    s->flags |= (close_now ? IOSQE_IO_HARDLINK : 0) | IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(s, ignored);
  };
  if (io_uring_sq_space_left(&ring_) < 4) io_uring_submit(&ring_);  // keep the chain whole
  if (k.recv_armed && !k.recv_cancelled) cancel(recv_op);
  if (k.slot != nullptr) cancel(send_op);
  if (k.stage == file_stage::writable) cancel(writable_op);
  if (close_now) {
    io_uring_sqe* s = sqe();
    io_uring_prep_close(s, k.owned.release());
    s->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(s, ignored);
  }
  --live_;
  maybe_free(k);
}

void ring_loop::maybe_free(conn& k) {
  if (k.ops > 0) return;
  --closing_;
  // A pipe may hold bytes that never left: close it rather than reuse it. A socket whose close
  // waited for a splice (close_conn) is closed here, every request on it given back.
  k.pipe.reset();
  k.owned.reset();
  k.next_free = to_free_;  // deleted after the batch: rearm_ may still name it
  to_free_ = &k;
}

// The stop policy (core/stop.hpp): no more accepting; connections between requests end now,
// the ones inside a request get the grace period (advance() closes each as it becomes idle).
void ring_loop::begin_stop() {
  grace_.begin();
  if (accept_armed_ && !accept_cancelled_) {
    io_uring_sqe* s = sqe();
    io_uring_prep_cancel64(s, accepting, 0);
    io_uring_sqe_set_data64(s, ignored);
    accept_cancelled_ = true;
  }
  for (conn* k : by_fd_)
    if (k && !k->sending && !k->lingering && k->held.empty() && k->c.idle()) close_conn(*k, false);
}

// As event_loop: a lingering close that ran out just ends; any other deadline ends the
// connection as timed out (an error inside a request), and one that would not take its
// response is reset (SO_LINGER 0, set before the ring's close; its send or poll in flight is
// cancelled first by close_conn), so its unsent bytes do not stay queued in the kernel.
void ring_loop::expire_deadlines() {
  while (core::idle_node* first = deadlines_.expired(now_ms_)) {
    conn* k = static_cast<conn*>(first->owner);
    if (!k->lingering) {
      if (core::deadline_lists::kind_of(*first) == core::wait_kind::send) {
        // With a close linked behind the send, the descriptor may already be closed (and
        // reused): on_send() sets SO_LINGER 0 once it knows the socket is still this one.
        if (k->close_linked) k->reset_at_close = true;
        else core::abort_on_close(k->fd);
      }
      k->c.timed_out();
    }
    close_conn(*k, false);
  }
}

}  // namespace

int run(core::server_context& ctx) {
  ring_loop loop(ctx);
  return loop.run();
}

}  // namespace httpbench::backend
