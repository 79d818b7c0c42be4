#include "worker.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>

namespace httpbench::loadgen {

namespace {

[[noreturn]] void die(const char* where) {
  std::fprintf(stderr, "loadgen: %s: %s\n", where, std::strerror(errno));
  std::abort();
}

std::uint64_t event_key(const connection& c) {
  return (static_cast<std::uint64_t>(c.generation) << 32) | c.index;
}

constexpr std::size_t read_buffer_bytes = 64 * 1024;
constexpr std::size_t max_events = 256;
/// TCP's initial retransmission timeout (RFC 6298 §2.1; Linux TCP_TIMEOUT_INIT): a connect that
/// took at least this long had its SYN sent again.
constexpr nanos syn_retransmit_timeout = ns_per_s;

}  // namespace

worker::worker(const run_context& context, std::size_t thread_index, std::size_t slots)
    : context_(context),
      cfg_(*context.cfg),
      thread_index_(thread_index),
      connections_(slots),
      samples_(context.cfg->discard, context.start + context.cfg->warmup, context.cooldown_start),
      verifier_(*context.targets, context.cfg->verify_body),
      in_service_(now_ns()),
      epoll_(epoll_create1(EPOLL_CLOEXEC)),
      read_buffer_(read_buffer_bytes) {
  if (!epoll_.valid()) die("epoll_create1");
  for (std::size_t i = 0; i < connections_.size(); ++i)
    connections_[i].index = static_cast<std::uint32_t>(i);
  // Timeouts are checked by a sweep over the slots; 1/20 of the shortest timeout keeps them
  // within 5% at a cost of one pass over the slots per interval.
  sweep_interval_ = std::clamp(std::min(cfg_.timeout, cfg_.connect_timeout) / 20, nanos{1'000'000},
                               nanos{100'000'000});
}

std::uint64_t worker::incomplete() const {
  std::uint64_t n = 0;
  for (const auto& c : connections_) n += c.in_flight;
  return n;
}

void worker::send(connection& c, std::uint32_t target, std::uint32_t count, nanos request_start,
                  nanos now) {
  const request_target& t = (*context_.targets)[target];
  c.target = target;
  c.in_flight = count;
  c.request_start = request_start;
  c.out_data = count > 1 ? t.batch.data() : t.wire.data();
  c.out_length = count > 1 ? t.wire.size() * count : t.wire.size();
  c.out_offset = 0;
  counters_.requests_started += count;
  start_response(c);
  if (c.status == connection::state::closed) {
    open(c, now);
  } else {
    // The response timeout runs from the request's start, its latency origin (the intended
    // time in the open loop and after a think time): a request that waited for its connection
    // has that much less time left. It also bounds a write that stays partial.
    c.deadline = request_start + cfg_.timeout;
    begin_service(c, now, now);
    flush(c, now);
  }
}

void worker::start_response(connection& c) {
  c.parser.reset((*context_.targets)[c.target].head);
  c.body_mismatch = false;
  c.capturing = verifier_.needs_capture(c.target);
  if (c.capturing) c.capture.clear();
}

void worker::open(connection& c, nanos now) {
  const sockaddr_storage& addr = context_.address->address;
  const int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    const std::uint32_t failed = c.in_flight;
    count_failed(c, error_kind_from_errno(errno));
    on_closed(c, failed, now);
    return;
  }
  c.fd.reset(fd);
  if (cfg_.close_with_reset) {
    // httperf's --close-with-reset: close() sends RST, so neither side goes through FIN and
    // TIME_WAIT. Cheaper for both (about 13% more new-connection requests/s here), but not
    // what ab does, hence off by default.
    const linger abortive{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &abortive, sizeof abortive);
  }
  ++c.generation;
  c.last.open = false;
  c.status = connection::state::connecting;
  c.connect_start = now;
  c.deadline = now + cfg_.connect_timeout;
  if (cfg_.keep_alive && cfg_.pipeline > 1) {
    // Pipelined batches are single writes anyway; NODELAY only stops Nagle holding a
    // partial batch behind an unacknowledged one.
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), context_.address->length) < 0 &&
      errno != EINPROGRESS) {
    fail(c, error_kind_from_errno(errno), now);
    return;
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = event_key(c);
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl ADD");
  // The request goes out when EPOLLOUT reports the connect done (on_event), not speculatively
  // right after connect(): on loopback the handshake is usually complete by then and the write
  // would succeed, but paired runs against h2o measured that ~3 % more client CPU per request
  // (46 vs 44 µs) and ~3 % fewer requests/s than waiting for the event, and ab waits too.
}

void worker::close(connection& c) {
  // close() also removes the socket from the epoll set (no other reference to it exists).
  c.fd.reset();
  c.status = connection::state::closed;
}

void worker::flush(connection& c, nanos now) {
  while (c.out_offset < c.out_length) {
    const ssize_t n =
        ::send(c.fd.get(), c.out_data + c.out_offset, c.out_length - c.out_offset, MSG_NOSIGNAL);
    if (n > 0) {
      c.out_offset += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      if (c.status != connection::state::connecting) c.status = connection::state::writing;
      return;
    }
    fail(c, error_kind_from_errno(errno), now);
    return;
  }
  if (c.status == connection::state::connecting) {
    ++counters_.connects;
    counters_.connect_time_sum += now - c.connect_start;
    counters_.last_connect_at = now;
  }
  c.status = connection::state::reading;
  c.deadline = c.request_start + cfg_.timeout;
}

void worker::on_event(connection& c, std::uint32_t events, nanos now) {
  if (c.status == connection::state::closed) return;
  if (c.status == connection::state::connecting) {
    if (events & (EPOLLERR | EPOLLHUP)) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(c.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      fail(c, error_kind_from_errno(err != 0 ? err : ECONNREFUSED), now);
      return;
    }
    if (events & EPOLLOUT) {
      // Connected: the request is in service from the connect's start (the instant its
      // response time starts from, as ab's does), unless its SYN had to be sent again. A connect
      // that took TCP's initial retransmission timeout (1 s, RFC 6298 §2) or longer waited
      // outside the server, its first SYN dropped by a full accept queue (Kerneis & Chroboczek's
      // Fig. 1(a)): it is in service only from now. Counting from the write instead would leave
      // out the client's own turnaround (noticing the connect among a burst of responses), which
      // read 65 % of -c 100 against a healthy server.
      const bool syn_retransmitted = now - c.connect_start >= syn_retransmit_timeout;
      begin_service(c, now, syn_retransmitted ? now : c.connect_start);
      flush(c, now);
    }
  } else if (c.status == connection::state::writing && (events & EPOLLOUT)) {
    flush(c, now);
  }
  if (c.status == connection::state::closed || c.status == connection::state::connecting) return;
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
    read_ready(c, (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0, now);
}

void worker::read_ready(connection& c, bool peer_closed, nanos now) {
  const std::uint32_t generation = c.generation;
  while (true) {
    const ssize_t n = ::read(c.fd.get(), read_buffer_.data(), read_buffer_.size());
    if (n > 0) {
      if (!consume(c, read_buffer_.data(), static_cast<std::size_t>(n), now)) return;
      if (c.generation != generation || c.status == connection::state::closed) return;
      // A short read drained the socket (edge-triggered: the next byte raises a new event),
      // unless the peer closed and the EOF is still to be read.
      if (static_cast<std::size_t>(n) < read_buffer_.size() && !peer_closed) return;
      continue;
    }
    if (n == 0) {
      on_eof(c, now);
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return;
    fail(c, error_kind_from_errno(errno), now);
    return;
  }
}

bool worker::consume(connection& c, const char* data, std::size_t length, nanos now) {
  const std::uint32_t generation = c.generation;
  std::size_t pos = 0;
  while (pos < length) {
    if (c.in_flight == 0) {
      // Bytes nobody asked for: the previous response was longer than it said.
      blame_last_response(c);
      close(c);
      on_closed(c, 0, now);
      return false;
    }
    if (c.last.open && !c.parser.started()) {
      // The first bytes after a response on this connection: a response starts with "HTTP/";
      // anything else is the rest of the previous response's body.
      static constexpr char status_prefix[] = "HTTP/";
      if (std::memcmp(data + pos, status_prefix, std::min<std::size_t>(5, length - pos)) != 0) {
        blame_last_response(c);
        resend(c, now);
        return false;
      }
      c.last.open = false;
    }
    const auto r = c.parser.feed(data + pos, length - pos);
    if (r.body_length > 0) {
      if (c.capturing) {
        if (c.capture.size() <= response_verifier::max_reference_bytes)
          c.capture.append(r.body,
                           std::min(r.body_length, response_verifier::max_reference_bytes + 1));
      } else if (!c.body_mismatch) {
        const std::uint64_t offset = c.parser.body_received() - r.body_length;
        c.body_mismatch = !verifier_.body_matches(c.target, offset, r.body, r.body_length);
      }
    }
    pos += r.consumed;
    if (r.status == http_response_parser::outcome::bad) {
      fail(c, error_kind::bad_response, now);
      return false;
    }
    if (r.status == http_response_parser::outcome::incomplete) break;
    complete_response(c, pos < length && c.in_flight == 1, now);
    if (c.generation != generation || c.status == connection::state::closed ||
        c.status == connection::state::idle || c.in_flight == 0)
      return c.generation == generation && c.status != connection::state::closed;
    // More pipelined responses expected on this connection: continue with the rest.
  }
  return true;
}

void worker::complete_response(connection& c, bool trailing, nanos now) {
  // Bytes after the response with nothing else in flight: its body was longer than its
  // Content-Length (or it had one after a chunked end), so it is wrong whatever else holds.
  std::optional<error_kind> verdict;
  if (trailing) {
    const int status = c.parser.status_code();
    verdict = status >= 200 && status <= 299 ? error_kind::wrong_length : error_kind::bad_status;
  } else {
    verdict =
        verifier_.check(c.target, c.parser, c.body_mismatch, c.capturing ? &c.capture : nullptr);
  }
  c.last.open = true;
  c.last.target = c.target;
  c.last.good = !verdict;
  if (!verdict) {
    const std::uint64_t bytes = c.parser.bytes_received();
    c.last.kept = sample{now, now - c.request_start, c.in_service ? now - c.service_start : 0,
                         static_cast<std::uint32_t>(bytes)};
    c.last.body_bytes = c.parser.body_received();
    samples_.record(c.last.kept.completed_at, c.last.kept.latency, c.last.kept.service,
                    c.last.kept.bytes);
    counters_.response_bytes += bytes;
    verifier_.count_ok(c.target, c.last.body_bytes);
    if (!server_seen_) {
      server_seen_ = true;
      server_software_ = c.parser.server_header();
    }
  } else {
    errors_.add(*verdict);
    verifier_.count_error(c.target, *verdict);
  }
  --c.in_flight;
  end_service(c, 1, now);
  const bool reusable = cfg_.keep_alive && c.parser.keep_alive() && !trailing;
  if (c.in_flight > 0) {
    // Pipelined: the next response follows. If this one said "close", the rest will fail at
    // EOF (closed_early) and be counted.
    if (!c.queue.empty()) {
      const queued_request next = c.queue.front();
      c.queue.erase(c.queue.begin());
      c.target = next.target;
      c.request_start = next.request_start;
      c.service_start = next.service_start;
    }
    start_response(c);
    c.deadline = now + cfg_.timeout;
    on_response(c, now);
    return;
  }
  if (reusable) {
    c.status = connection::state::idle;
  } else {
    close(c);
  }
  on_idle(c, now);
}

void worker::blame_last_response(connection& c) {
  if (c.last.open && c.last.good) {
    samples_.retract(c.last.kept);
    counters_.response_bytes -= c.last.kept.bytes;
    verifier_.uncount_ok(c.last.target, c.last.body_bytes);
    errors_.add(error_kind::wrong_length);
    verifier_.count_error(c.last.target, error_kind::wrong_length);
  }
  // A response already counted as an error stays one error.
  c.last.open = false;
}

void worker::resend(connection& c, nanos now) {
  if (c.in_service) {
    in_service_.change(now, -static_cast<std::int64_t>(c.in_flight));
    c.in_service = false;
  }
  close(c);
  const request_target& t = (*context_.targets)[c.target];
  if (c.queue.empty()) {
    c.out_data = c.in_flight > 1 ? t.batch.data() : t.wire.data();
    c.out_length = t.wire.size() * c.in_flight;
  } else {
    std::string out = t.wire;
    for (const auto& q : c.queue) out += (*context_.targets)[q.target].wire;
    c.out_buffer.swap(out);
    c.out_data = c.out_buffer.data();
    c.out_length = c.out_buffer.size();
  }
  c.out_offset = 0;
  start_response(c);
  open(c, now);
}

void worker::send_another(connection& c, std::uint32_t target, nanos request_start, nanos now) {
  if (c.in_flight == 0) {
    send(c, target, 1, request_start, now);
    return;
  }
  const std::string& wire = (*context_.targets)[target].wire;
  ++c.in_flight;
  ++counters_.requests_started;
  c.queue.push_back({target, request_start, now});
  if (c.in_service) in_service_.change(now, 1);
  if (c.status == connection::state::reading) {
    // Everything before it is written: write it now.
    c.out_data = wire.data();
    c.out_length = wire.size();
    c.out_offset = 0;
    flush(c, now);
    return;
  }
  // Connecting, or a write is pending: it goes out after the bytes still to write.
  std::string out(c.out_data + c.out_offset, c.out_length - c.out_offset);
  out += wire;
  c.out_buffer.swap(out);
  c.out_data = c.out_buffer.data();
  c.out_length = c.out_buffer.size();
  c.out_offset = 0;
}

void worker::on_eof(connection& c, nanos now) {
  if (c.in_flight == 0) {
    close(c);  // an idle kept-alive connection closed by the server: not an error
    on_closed(c, 0, now);
    return;
  }
  switch (c.parser.finish_at_eof()) {
    case http_response_parser::outcome::complete:
      if (c.in_flight > 1) {
        // A close-delimited response cannot be followed by the pipelined ones still due.
        complete_response(c, false, now);
        fail(c, error_kind::closed_early, now);
      } else {
        complete_response(c, false, now);  // closes c and hands it to the engine
      }
      return;
    default:
      if (!c.parser.started())
        fail(c, error_kind::closed_early, now);
      else if (c.parser.headers_done())
        fail(c, error_kind::wrong_length, now);
      else
        fail(c, error_kind::bad_response, now);
  }
}

void worker::count_failed(connection& c, error_kind kind) {
  for (std::uint32_t i = 0; i < c.in_flight; ++i) {
    errors_.add(kind);
    verifier_.count_error(i == 0 || i > c.queue.size() ? c.target : c.queue[i - 1].target, kind);
  }
  c.in_flight = 0;
  c.queue.clear();
}

void worker::fail(connection& c, error_kind kind, nanos now) {
  const std::uint32_t failed = c.in_flight;
  count_failed(c, kind);
  end_service(c, failed, now);
  close(c);
  on_closed(c, failed, now);
}

void worker::sweep(nanos now) {
  for (auto& c : connections_) {
    if (c.status == connection::state::closed || c.status == connection::state::idle) continue;
    if (now < c.deadline) continue;
    fail(c,
         c.status == connection::state::connecting ? error_kind::connect_timeout
                                                   : error_kind::read_timeout,
         now);
  }
}

int worker::poll_without_blocking(epoll_event* events, nanos budget) {
  const nanos start = now_ns();
  const nanos until = start + budget;
  int n;
  nanos now;
  do {
    n = ::epoll_wait(epoll_.get(), events, max_events, 0);
    now = now_ns();
  } while (n == 0 && now < until);
  counters_.idle_polling += now - start;
  return n;
}

void worker::run() {
  epoll_event events[max_events];
  nanos now = now_ns();
  start(now);
  nanos next_sweep = now + sweep_interval_;
  while (true) {
    now = now_ns();
    if (context_.stop->load(std::memory_order_relaxed)) {
      interrupted_ = true;
      break;
    }
    if (now >= context_.deadline) break;
    on_tick(now);
    if (finished()) break;
    if (now >= next_sweep) {
      sweep(now);
      next_sweep = now + sweep_interval_;
      if (finished()) break;
    }
    const nanos wake = std::min({next_wakeup(), next_sweep, context_.deadline});
    nanos wait = std::max<nanos>(0, wake - now);
    int n = 0;
    if (wait > 0 && cfg_.spin > 0) {
      n = poll_without_blocking(events, std::min(cfg_.spin, wait));
      wait = std::max<nanos>(0, wake - now_ns());
    }
    if (n != 0) {
      // Found while polling (or EINTR, handled below).
    } else if (use_pwait2_) {
      timespec ts{static_cast<time_t>(wait / ns_per_s), static_cast<long>(wait % ns_per_s)};
      n = ::epoll_pwait2(epoll_.get(), events, max_events, &ts, nullptr);
      if (n < 0 && errno == ENOSYS) {
        use_pwait2_ = false;
        continue;
      }
    } else {
      // Round up so a timer is never woken for early and spun on.
      n = ::epoll_wait(
          epoll_.get(), events, max_events,
          static_cast<int>(std::min<nanos>((wait + ns_per_ms - 1) / ns_per_ms, INT_MAX)));
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      const std::uint64_t key = events[i].data.u64;
      connection& c = connections_[key & 0xffffffffu];
      if (c.generation != static_cast<std::uint32_t>(key >> 32)) continue;  // an older socket
      on_event(c, events[i].events, now_ns());
    }
  }
  ended_at_ = now_ns();
  // Requests still in flight stay in service to the end.
  in_service_.finish(ended_at_);
}

}  // namespace httpbench::loadgen
