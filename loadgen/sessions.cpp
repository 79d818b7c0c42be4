#include "sessions.hpp"

#include <algorithm>
#include <climits>
#include <functional>

namespace httpbench::loadgen {

std::vector<session_plan> plans_from_wsesslog(const std::vector<session_definition>& sessions,
                                              request_table& targets) {
  std::vector<session_plan> plans;
  for (const auto& s : sessions) {
    session_plan plan;
    for (const auto& b : s.bursts) {
      session_plan::burst burst;
      burst.think_s = b.think_s;
      for (const auto& r : b.requests)
        burst.targets.push_back(
            static_cast<std::uint32_t>(targets.add(r.method, r.path, r.contents)));
      plan.bursts.push_back(std::move(burst));
    }
    plans.push_back(std::move(plan));
  }
  return plans;
}

std::vector<session_plan> generated_plan(std::uint32_t bursts, std::uint32_t burst_length) {
  session_plan plan;
  for (std::uint32_t i = 0; i < bursts; ++i) {
    session_plan::burst b;
    b.targets.assign(std::max<std::uint32_t>(1, burst_length), 0);
    plan.bursts.push_back(std::move(b));
  }
  return {plan};
}

session_worker::session_worker(const run_context& context, std::size_t thread_index,
                               std::size_t connections, const std::vector<session_plan>& plans,
                               bool generated, double session_rate, std::uint64_t quota,
                               std::uint64_t seed, nanos first_arrival)
    : worker(context, thread_index, connections),
      plans_(plans),
      generated_(generated),
      arrivals_(session_rate, context.cfg->arrival, first_arrival, seed),
      quota_(quota),
      states_(connections),
      session_id_(connections, 0),
      in_session_(connections, false),
      rng_(seed ^ 0x9e3779b97f4a7c15ULL),
      inactive_(context.cfg->inactive_mean_s, context.cfg->inactive_shape),
      active_think_(context.cfg->active_mean_s, context.cfg->active_shape) {
  free_.reserve(connections);
  for (std::size_t i = connections; i-- > 0;) free_.push_back(static_cast<std::uint32_t>(i));
  timers_.reserve(connections);
}

void session_worker::start(nanos now) {
  on_tick(now);
}

bool session_worker::finished() const {
  return arrivals_done() && active_ == 0;
}

nanos session_worker::next_wakeup() const {
  nanos wake = arrivals_done() ? LLONG_MAX : arrivals_.next();
  if (!timers_.empty()) wake = std::min(wake, timers_.front().due);
  return wake;
}

void session_worker::on_tick(nanos now) {
  while (!arrivals_done() && arrivals_.next() <= now) {
    const nanos intended = arrivals_.pop();
    ++counters_.sessions_started;
    if (free_.empty()) {
      ++counters_.sessions_dropped;
      continue;
    }
    connection& c = connections_[free_.back()];
    free_.pop_back();
    states_[c.index] = {static_cast<std::uint32_t>(next_plan_++ % plans_.size()), 0, 0};
    in_session_[c.index] = true;
    ++active_;
    send_current(c, intended, now);
  }
  while (!timers_.empty() && timers_.front().due <= now) {
    std::pop_heap(timers_.begin(), timers_.end(), std::greater<>{});
    const timer t = timers_.back();
    timers_.pop_back();
    if (!in_session_[t.slot] || session_id_[t.slot] != t.generation) continue;
    send_current(connections_[t.slot], t.due, now);
  }
}

void session_worker::send_current(connection& c, nanos intended, nanos now) {
  const session_state& s = states_[c.index];
  const auto& burst = plans_[s.plan].bursts[s.burst];
  send(c, burst.targets[s.request], 1, intended, now);
}

nanos session_worker::think_after_burst(const session_plan::burst& b) {
  double seconds;
  if (b.think_s >= 0)
    seconds = b.think_s;
  else if (cfg_.think_time_s >= 0)
    seconds = cfg_.think_time_s;
  else
    seconds = inactive_(rng_);
  return static_cast<nanos>(seconds * 1e9);
}

void session_worker::on_idle(connection& c, nanos now) {
  if (!in_session_[c.index]) return;
  session_state& s = states_[c.index];
  const session_plan& plan = plans_[s.plan];
  nanos delay = 0;
  if (++s.request < plan.bursts[s.burst].targets.size()) {
    // Next embedded object: the browser's active off-period (built-in generator only; httperf
    // sends a burst's objects as soon as the page is in).
    if (generated_) delay = static_cast<nanos>(active_think_(rng_) * 1e9);
  } else {
    delay = think_after_burst(plan.bursts[s.burst]);
    s.request = 0;
    if (++s.burst == plan.bursts.size()) {
      end_session(c, true);
      return;
    }
  }
  if (delay <= 0) {
    send_current(c, now, now);
    return;
  }
  timers_.push_back({now + delay, c.index, session_id_[c.index]});
  std::push_heap(timers_.begin(), timers_.end(), std::greater<>{});
}

void session_worker::on_closed(connection& c, std::uint32_t failed, nanos) {
  if (!in_session_[c.index]) return;
  // The server closing an idle session connection is not an error: the next request of the
  // session reconnects. A failed request aborts the session.
  if (failed > 0) end_session(c, false);
}

void session_worker::end_session(connection& c, bool completed) {
  if (c.status != connection::state::closed) close(c);
  in_session_[c.index] = false;
  ++session_id_[c.index];
  --active_;
  if (completed)
    ++counters_.sessions_completed;
  else
    ++counters_.sessions_failed;
  free_.push_back(c.index);
}

}  // namespace httpbench::loadgen
