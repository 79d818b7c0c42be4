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
                               std::size_t sessions, const std::vector<session_plan>& plans,
                               bool generated, double session_rate, std::uint64_t quota,
                               std::uint64_t seed, nanos first_arrival)
    : worker(context, thread_index, sessions * context.cfg->session_connections),
      plans_(plans),
      generated_(generated),
      per_session_(context.cfg->session_connections),
      arrivals_(session_rate, context.cfg->arrival, first_arrival, seed),
      quota_(quota),
      sessions_(sessions),
      rng_(seed ^ 0x9e3779b97f4a7c15ULL),
      inactive_(context.cfg->inactive_mean_s, context.cfg->inactive_shape),
      active_think_(context.cfg->active_mean_s, context.cfg->active_shape) {
  free_.reserve(sessions);
  for (std::size_t i = sessions; i-- > 0;) free_.push_back(static_cast<std::uint32_t>(i));
  timers_.reserve(sessions);
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
    const std::uint32_t s = free_.back();
    free_.pop_back();
    session_state& st = sessions_[s];
    st.plan = static_cast<std::uint32_t>(next_plan_++ % plans_.size());
    st.burst = st.issued = st.answered = 0;
    st.active = true;
    st.failed = st.separate_connections = false;
    ++active_;
    issue(s, intended, now);
  }
  while (!timers_.empty() && timers_.front().due <= now) {
    std::pop_heap(timers_.begin(), timers_.end(), std::greater<>{});
    const timer t = timers_.back();
    timers_.pop_back();
    const session_state& st = sessions_[t.session];
    if (!st.active || st.failed || st.id != t.id) continue;
    issue(t.session, t.due, now);
  }
}

std::uint32_t session_worker::in_flight(std::uint32_t s) const {
  std::uint32_t n = 0;
  for (std::uint32_t j = 0; j < per_session_; ++j) n += connections_[s * per_session_ + j].in_flight;
  return n;
}

void session_worker::issue(std::uint32_t s, nanos intended, nanos now) {
  session_state& st = sessions_[s];
  const auto& targets = plans_[st.plan].bursts[st.burst].targets;
  // httperf issues a burst's first request alone, the rest once its response is in; the
  // built-in generator issues one at a time.
  const std::uint32_t limit =
      st.issued == 0 || generated_ ? st.issued + 1 : static_cast<std::uint32_t>(targets.size());
  const std::uint32_t piped = st.separate_connections ? 1 : cfg_.max_piped_calls;
  const std::uint32_t id = st.id;
  while (st.issued < limit && st.issued < targets.size()) {
    connection* free_connection = nullptr;
    for (std::uint32_t j = 0; j < per_session_ && free_connection == nullptr; ++j) {
      connection& c = connections_[s * per_session_ + j];
      if (c.in_flight < piped) free_connection = &c;
    }
    if (free_connection == nullptr) return;  // issued as responses come back
    const std::uint32_t target = targets[st.issued++];
    send_another(*free_connection, target, intended, now);
    // A request that failed at once may have ended the session.
    if (!st.active || st.id != id || st.failed) return;
  }
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

void session_worker::on_response(connection& c, nanos now) {
  answered(session_of(c), now);
}

void session_worker::on_idle(connection& c, nanos now) {
  const std::uint32_t s = session_of(c);
  // The server closed the connection after the response: use separate connections for
  // the session's concurrent requests from now on, as httperf does after "Connection: close".
  if (c.status == connection::state::closed) sessions_[s].separate_connections = true;
  answered(s, now);
}

void session_worker::answered(std::uint32_t s, nanos now) {
  session_state& st = sessions_[s];
  if (!st.active) return;
  if (st.failed) {
    if (in_flight(s) == 0) end_session(s, false);
    return;
  }
  const session_plan& plan = plans_[st.plan];
  const auto& burst = plan.bursts[st.burst];
  ++st.answered;
  if (st.answered < burst.targets.size()) {
    if (st.issued == st.answered && generated_) {
      // Next embedded object after the browser's active off-period (built-in generator).
      const auto delay = static_cast<nanos>(active_think_(rng_) * 1e9);
      timers_.push_back({now + delay, s, st.id});
      std::push_heap(timers_.begin(), timers_.end(), std::greater<>{});
    } else if (st.issued < burst.targets.size()) {
      issue(s, now, now);
    }
    return;
  }
  // The burst is over: think, then the next burst.
  const nanos think = think_after_burst(burst);
  if (++st.burst == plan.bursts.size()) {
    end_session(s, true);
    return;
  }
  st.issued = st.answered = 0;
  if (think <= 0) {
    issue(s, now, now);
    return;
  }
  timers_.push_back({now + think, s, st.id});
  std::push_heap(timers_.begin(), timers_.end(), std::greater<>{});
}

void session_worker::on_closed(connection& c, std::uint32_t failed, nanos) {
  const std::uint32_t s = session_of(c);
  session_state& st = sessions_[s];
  if (!st.active) return;
  // The server closing an idle session connection is not an error: the next request
  // reconnects. A failed request fails the session; it ends when nothing is in flight.
  if (failed > 0) st.failed = true;
  if (st.failed && in_flight(s) == 0) end_session(s, false);
}

void session_worker::end_session(std::uint32_t s, bool completed) {
  session_state& st = sessions_[s];
  for (std::uint32_t j = 0; j < per_session_; ++j) {
    connection& c = connections_[s * per_session_ + j];
    if (c.status != connection::state::closed) close(c);
  }
  st.active = false;
  ++st.id;
  --active_;
  if (completed)
    ++counters_.sessions_completed;
  else
    ++counters_.sessions_failed;
  free_.push_back(s);
}

}  // namespace httpbench::loadgen
