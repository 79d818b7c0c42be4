#include "in_service.hpp"

#include <algorithm>

namespace httpbench::loadgen {

in_service_recorder::in_service_recorder(nanos origin, nanos spacing, std::size_t max_checkpoints)
    : last_(origin),
      spacing_(std::max<nanos>(1, spacing)),
      next_due_(origin + spacing_),
      max_checkpoints_(std::max<std::size_t>(4, max_checkpoints)) {
  // Reserved once so that recording never reallocates; pages are touched only as used.
  checkpoints_.reserve(max_checkpoints_);
  checkpoints_.push_back({origin, 0});
}

void in_service_recorder::add_checkpoint() {
  if (checkpoints_.back().at == last_) {
    checkpoints_.back().integral = integral_;
    return;
  }
  if (checkpoints_.size() == max_checkpoints_) {
    // Keep every other checkpoint (the first included) and space the next ones twice as far
    // apart: memory stays bounded and the error bound (spacing × count variation) doubles.
    std::size_t kept = 0;
    for (std::size_t i = 0; i < checkpoints_.size(); i += 2) checkpoints_[kept++] = checkpoints_[i];
    checkpoints_.resize(kept);
    spacing_ *= 2;
  }
  checkpoints_.push_back({last_, integral_});
  next_due_ = last_ + spacing_;
}

std::size_t in_service_recorder::checkpoint_before(nanos t) const {
  const auto it = std::upper_bound(checkpoints_.begin(), checkpoints_.end(), t,
                                   [](nanos v, const checkpoint& c) { return v < c.at; });
  return it == checkpoints_.begin() ? 0 : static_cast<std::size_t>(it - checkpoints_.begin()) - 1;
}

double in_service_recorder::from_checkpoint(std::size_t k, nanos t) const {
  const checkpoint& c = checkpoints_[k];
  if (t <= c.at) return 0;
  // The next known point: the next checkpoint, or the running state after the last one.
  nanos next_at = last_;
  wide_int next_integral = integral_;
  if (k + 1 < checkpoints_.size()) {
    next_at = checkpoints_[k + 1].at;
    next_integral = checkpoints_[k + 1].integral;
  }
  if (t >= next_at) {
    // Past everything recorded: the count has stayed what it was at the last event.
    return static_cast<double>(next_integral - c.integral) +
           static_cast<double>(count_) * static_cast<double>(t - next_at);
  }
  // The chord between the two known points.
  return static_cast<double>(next_integral - c.integral) * static_cast<double>(t - c.at) /
         static_cast<double>(next_at - c.at);
}

double in_service_recorder::integral_at(nanos t) const {
  if (t <= checkpoints_.front().at) return 0;
  const std::size_t k = checkpoint_before(t);
  return static_cast<double>(checkpoints_[k].integral) + from_checkpoint(k, t);
}

double in_service_recorder::integral_between(nanos a, nanos b) const {
  if (b <= a) return 0;
  a = std::max(a, checkpoints_.front().at);
  if (b <= a) return 0;
  const std::size_t ka = checkpoint_before(a);
  const std::size_t kb = checkpoint_before(b);
  // Exact integer difference between the two checkpoints, then the two partial stretches.
  return static_cast<double>(checkpoints_[kb].integral - checkpoints_[ka].integral) +
         from_checkpoint(kb, b) - from_checkpoint(ka, a);
}

double mean_in_service(const std::vector<const in_service_recorder*>& recorders, nanos a,
                       nanos b) {
  if (b <= a) return 0;
  double sum = 0;
  for (const in_service_recorder* r : recorders) sum += r->integral_between(a, b);
  return sum / static_cast<double>(b - a);
}

}  // namespace httpbench::loadgen
