#include "open_loop.hpp"

#include <algorithm>
#include <climits>

namespace httpbench::loadgen {

namespace {
constexpr nanos late_threshold = ns_per_ms;
}

open_loop_worker::open_loop_worker(const run_context& context, std::size_t thread_index,
                                   std::size_t connections, double rate, std::uint64_t quota,
                                   std::uint64_t seed, nanos first_arrival)
    : worker(context, thread_index, connections),
      arrivals_(rate, context.cfg->arrival, first_arrival, seed),
      quota_(quota),
      pending_(std::max<std::size_t>(1, context.cfg->max_pending)) {
  idle_.reserve(connections);
  free_.reserve(connections);
  retry_.reserve(connections);
  for (std::size_t i = connections; i-- > 0;) free_.push_back(static_cast<std::uint32_t>(i));
}

std::uint64_t open_loop_worker::incomplete() const {
  return worker::incomplete() + pending_size_;
}

void open_loop_worker::start(nanos now) {
  on_tick(now);
}

bool open_loop_worker::finished() const {
  return arrivals_done() && busy_ == 0 && pending_size_ == 0 && retry_.empty();
}

nanos open_loop_worker::next_wakeup() const {
  if (!retry_.empty()) return 0;
  return arrivals_done() ? LLONG_MAX : arrivals_.next();
}

void open_loop_worker::on_tick(nanos now) {
  if (!retry_.empty()) {
    std::vector<std::uint32_t> slots;
    slots.swap(retry_);
    for (std::uint32_t i : slots) reuse(connections_[i], now);  // may queue new retries
  }
  while (!arrivals_done() && arrivals_.next() <= now) {
    const nanos intended = arrivals_.pop();
    std::uint32_t slot = UINT32_MAX;
    while (!idle_.empty()) {
      const std::uint32_t i = idle_.back();
      idle_.pop_back();
      if (connections_[i].status == connection::state::idle) {
        slot = i;
        break;
      }
      free_.push_back(i);  // closed by the server while idle
    }
    if (slot == UINT32_MAX && !free_.empty()) {
      slot = free_.back();
      free_.pop_back();
    }
    if (slot != UINT32_MAX) {
      dispatch(connections_[slot], intended, now);
    } else if (pending_size_ < pending_.size()) {
      pending_[(pending_head_ + pending_size_++) % pending_.size()] = intended;
    } else {
      // No connection and no room to wait: the arrival fails, counted like any failed request
      // (errors_total, per_url) so a run that drops is never taken for a clean one.
      ++counters_.dropped;
      ++counters_.requests_started;
      errors_.add(error_kind::dropped);
      verifier_.count_error(0, error_kind::dropped);
    }
  }
}

void open_loop_worker::dispatch(connection& c, nanos intended, nanos now) {
  const nanos lag = now - intended;
  if (lag >= late_threshold) ++counters_.late;
  counters_.max_send_lag = std::max(counters_.max_send_lag, lag);
  ++busy_;
  send(c, 0, 1, intended, now);
}

void open_loop_worker::reuse(connection& c, nanos now) {
  while (pending_size_ > 0) {
    const nanos intended = pending_[pending_head_];
    pending_head_ = (pending_head_ + 1) % pending_.size();
    --pending_size_;
    if (now - intended >= cfg_.timeout) {
      // Waited for a connection longer than the client would wait for the response.
      errors_.add(error_kind::read_timeout);
      verifier_.count_error(0, error_kind::read_timeout);
      ++counters_.requests_started;
      continue;
    }
    dispatch(c, intended, now);
    return;
  }
  if (c.status == connection::state::idle)
    idle_.push_back(c.index);
  else
    free_.push_back(c.index);
}

void open_loop_worker::on_idle(connection& c, nanos now) {
  --busy_;
  reuse(c, now);
}

void open_loop_worker::on_closed(connection& c, std::uint32_t failed, nanos) {
  // An idle connection closed by the server (failed == 0) stays on idle_ and is moved to
  // free_ when found closed there; a slot whose request failed is reused on the next tick.
  if (failed == 0) return;
  --busy_;
  retry_.push_back(c.index);
}

}  // namespace httpbench::loadgen
