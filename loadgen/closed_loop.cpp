#include "closed_loop.hpp"

#include <algorithm>
#include <climits>

namespace httpbench::loadgen {

closed_loop_worker::closed_loop_worker(const run_context& context, std::size_t thread_index,
                                       std::size_t connections, std::uint64_t quota)
    : worker(context, thread_index, connections), quota_(quota) {
  retry_.reserve(connections);
  retry_now_.reserve(connections);
}

void closed_loop_worker::start(nanos now) {
  on_tick(now);
}

void closed_loop_worker::on_tick(nanos now) {
  // Ramp: connection i starts at start + ramp * i / count, so 10,000 connects do not all
  // land in the accept queue at once.
  const std::size_t count = connections_.size();
  while (ramped_ < count) {
    const nanos due =
        context_.start +
        (count > 1 ? cfg_.ramp * static_cast<nanos>(ramped_) / static_cast<nanos>(count) : 0);
    if (due > now) break;
    next_request(connections_[ramped_++], now);
  }
  if (!retry_.empty()) {
    // Restarts are deferred to here so that a persistent error (no ports, no fds) cannot
    // recurse through on_closed -> send -> on_closed.
    retry_now_.swap(retry_);
    retry_.clear();
    for (std::uint32_t i : retry_now_) next_request(connections_[i], now);
    retry_now_.clear();
  }
}

nanos closed_loop_worker::next_wakeup() const {
  if (!retry_.empty()) return 0;
  const std::size_t count = connections_.size();
  if (ramped_ < count)
    return context_.start + cfg_.ramp * static_cast<nanos>(ramped_) / static_cast<nanos>(count);
  return LLONG_MAX;
}

void closed_loop_worker::on_closed(connection& c, std::uint32_t, nanos) {
  retry_.push_back(c.index);
}

void closed_loop_worker::next_request(connection& c, nanos now) {
  if ((quota_ != 0 && started_ >= quota_) || now >= context_.deadline) {
    if (c.status != connection::state::closed) close(c);
    ++retired_;
    return;
  }
  auto count = static_cast<std::uint32_t>(cfg_.keep_alive ? cfg_.pipeline : 1);
  if (quota_ != 0)
    count = static_cast<std::uint32_t>(std::min<std::uint64_t>(count, quota_ - started_));
  started_ += count;
  send(c, 0, count, now, now);
}

}  // namespace httpbench::loadgen
