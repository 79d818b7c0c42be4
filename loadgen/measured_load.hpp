// The load arithmetic of Kerneis & Chroboczek 2009, §2.
#pragma once

#include <cstdint>

namespace httpbench::loadgen {

/// The paper's formula l_m = n * t_r / t: `completed` responses with mean response time
/// `mean_response_s` over a window of `elapsed_s` (reported as `measured_load_nt`). In an
/// ideal closed-loop run with exactly l requests in flight, t = n * t_r / l, so l_m equals the
/// offered load l. With heavy-tailed response times it can exceed l: the window is delimited by
/// completions, but the kept requests' durations reach back before it, and the boundary terms do
/// not cancel. The reported `measured_load` is therefore the time average of the requests in
/// service over the window (in_service.hpp), which cannot exceed the requests in flight.
/// 0 when the window is empty.
inline double measured_load_nt(std::uint64_t completed, double mean_response_s, double elapsed_s) {
  if (elapsed_s <= 0) return 0;
  return static_cast<double>(completed) * mean_response_s / elapsed_s;
}

/// Offered load of an open loop in the same unit (requests in flight): by Little's law the
/// arrival rate times the mean time each request spends in the system.
inline double open_loop_offered_load(double rate_per_s, double mean_response_s) {
  return rate_per_s * mean_response_s;
}

}  // namespace httpbench::loadgen
