#include "sample_window.hpp"

#include <algorithm>

namespace httpbench::loadgen {

sample_recorder::sample_recorder(std::size_t discard, nanos warmup_end)
    : discard_(discard), warmup_end_(warmup_end) {
  head_.reserve(discard);
  tail_.reserve(discard);
}

window_summary merge_windows(const std::vector<const sample_recorder*>& recorders,
                             std::size_t discard, nanos window_origin) {
  window_summary out;
  std::vector<sample> held;
  nanos last_completion = window_origin;
  for (const sample_recorder* r : recorders) {
    out.latencies.merge(r->latencies_);
    out.bytes += r->bytes_;
    out.service_sum += r->service_sum_;
    out.completed_total += r->recorded_;
    out.warmup_dropped += r->warmup_dropped_;
    last_completion = std::max(last_completion, r->last_completion_);
    held.insert(held.end(), r->head_.begin(), r->head_.end());
    held.insert(held.end(), r->tail_.begin(), r->tail_.end());
  }
  const std::uint64_t candidates = out.latencies.count() + held.size();
  const std::size_t drop =
      static_cast<std::size_t>(std::min<std::uint64_t>(discard, candidates / 4));
  std::sort(held.begin(), held.end(),
            [](const sample& a, const sample& b) { return a.completed_at < b.completed_at; });
  for (std::size_t i = drop; i + drop < held.size(); ++i) {
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
    out.window_end = last_completion;
  }
  return out;
}

}  // namespace httpbench::loadgen
