#include "sample_window.hpp"

#include <algorithm>

namespace httpbench::loadgen {

sample_recorder::sample_recorder(std::size_t discard, nanos warmup_end, nanos cooldown_start)
    : discard_(discard), warmup_end_(warmup_end), cooldown_start_(cooldown_start) {
  head_.reserve(discard);
  tail_.reserve(discard);
}

void sample_recorder::retract(const sample& s) {
  --recorded_;
  if (s.completed_at < warmup_end_) {
    --warmup_dropped_;
    return;
  }
  if (s.completed_at >= cooldown_start_) {
    --cooldown_dropped_;
    return;
  }
  // Put the ring in recorded order (oldest first) so that removing from it keeps it a ring.
  auto unroll_ring = [this] {
    std::rotate(tail_.begin(), tail_.begin() + static_cast<std::ptrdiff_t>(tail_next_),
                tail_.end());
    tail_next_ = 0;
  };
  if (auto it = std::find(tail_.begin(), tail_.end(), s); it != tail_.end()) {
    if (latencies_.count() > 0) {
      // Samples in the histogram rely on the ring's N samples following them: the retracted
      // one stays as a placeholder until it is pushed out of the ring (and then not kept).
      it->latency = retracted_latency;
      return;
    }
    const auto offset = it - tail_.begin();
    const auto oldest = static_cast<std::ptrdiff_t>(tail_next_);
    unroll_ring();
    tail_.erase(tail_.begin() + (offset - oldest + static_cast<std::ptrdiff_t>(tail_.size())) %
                                    static_cast<std::ptrdiff_t>(tail_.size()));
    return;
  }
  if (auto it = std::find(head_.begin(), head_.end(), s); it != head_.end()) {
    if (latencies_.count() == 0) {
      // Nothing went past the ring yet: the oldest of the ring moves up into the head, which
      // stays the first samples recorded.
      head_.erase(it);
      if (!tail_.empty()) {
        unroll_ring();
        head_.push_back(tail_.front());
        tail_.erase(tail_.begin());
      }
    } else {
      // Samples in the histogram rely on the head's N samples preceding them: the retracted
      // one stays as a placeholder (never kept), so at worst the window starts one sample early.
      it->latency = retracted_latency;
    }
    return;
  }
  latencies_.remove(s.latency);
  service_sum_ -= static_cast<double>(s.service);
  bytes_ -= s.bytes;
}

window_summary merge_windows(const std::vector<const sample_recorder*>& recorders,
                             std::size_t discard, nanos window_origin,
                             nanos window_limit) {
  window_summary out;
  std::vector<sample> held;
  nanos last_completion = window_origin;
  for (const sample_recorder* r : recorders) {
    out.latencies.merge(r->latencies_);
    out.bytes += r->bytes_;
    out.service_sum += r->service_sum_;
    out.completed_total += r->recorded_;
    out.warmup_dropped += r->warmup_dropped_;
    out.cooldown_dropped += r->cooldown_dropped_;
    last_completion = std::max(last_completion, r->last_completion_);
    held.insert(held.end(), r->head_.begin(), r->head_.end());
    held.insert(held.end(), r->tail_.begin(), r->tail_.end());
  }
  const auto placeholders = static_cast<std::uint64_t>(std::count_if(
      held.begin(), held.end(), [](const sample& x) { return x.latency == retracted_latency; }));
  const std::uint64_t candidates = out.latencies.count() + held.size() - placeholders;
  const std::size_t drop =
      static_cast<std::size_t>(std::min<std::uint64_t>(discard, candidates / 4));
  std::sort(held.begin(), held.end(),
            [](const sample& a, const sample& b) { return a.completed_at < b.completed_at; });
  for (std::size_t i = drop; i + drop < held.size(); ++i) {
    if (held[i].latency == retracted_latency) continue;
    out.latencies.record(held[i].latency);
    out.service_sum += static_cast<double>(held[i].service);
    out.bytes += held[i].bytes;
    last_completion = std::max(last_completion, held[i].completed_at);
  }
  out.discarded_each_end = drop;
  out.completed = out.latencies.count();
  if (drop > 0) {
    out.window_start = held[drop - 1].completed_at;
    out.window_end = held[held.size() - drop].completed_at;
  } else {
    out.window_start = window_origin;
    out.window_end =
        window_limit != std::numeric_limits<nanos>::max() ? window_limit : last_completion;
  }
  return out;
}

}  // namespace httpbench::loadgen
