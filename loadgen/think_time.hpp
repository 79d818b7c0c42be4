// Think-time distributions of the partially-open session workload (Pariag et al. 2007, §3.2).
#pragma once

#include <cmath>
#include <random>

namespace httpbench::loadgen {

/// Pareto distribution parameterised by its mean: Barford & Crovella model the user's
/// "inactive off-period" (think time between pages) as Pareto; shape 1.5 with mean 3.0 s gives
/// scale 1.0 s, their fit. Requires shape > 1 (finite mean).
class pareto_think_time {
 public:
  pareto_think_time(double mean_s, double shape)
      : shape_(shape), scale_(mean_s * (shape - 1) / shape) {}
  template <class Rng>
  double operator()(Rng& rng) const {
    // Inverse CDF: x = scale / U^(1/shape), U in (0, 1].
    const double u = 1.0 - std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    return scale_ / std::pow(u, 1.0 / shape_);
  }
  double mean() const { return scale_ * shape_ / (shape_ - 1); }

 private:
  double shape_;
  double scale_;
};

/// Weibull distribution parameterised by its mean: the browser's "active off-period" between
/// embedded objects (mean 0.343 s in the paper). scale = mean / Gamma(1 + 1/shape).
class weibull_think_time {
 public:
  weibull_think_time(double mean_s, double shape)
      : distribution_(shape, mean_s / std::tgamma(1.0 + 1.0 / shape)) {}
  template <class Rng>
  double operator()(Rng& rng) {
    return distribution_(rng);
  }
  double mean() const { return distribution_.b() * std::tgamma(1.0 + 1.0 / distribution_.a()); }

 private:
  std::weibull_distribution<double> distribution_;
};

}  // namespace httpbench::loadgen
