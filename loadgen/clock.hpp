// Monotonic nanosecond clock shared by every part of the load generator.
#pragma once

#include <time.h>

#include <cstdint>

namespace httpbench::loadgen {

/// Nanoseconds on CLOCK_MONOTONIC. Signed so that differences can be negative.
using nanos = std::int64_t;

inline constexpr nanos ns_per_us = 1'000;
inline constexpr nanos ns_per_ms = 1'000'000;
inline constexpr nanos ns_per_s = 1'000'000'000;

/// Current CLOCK_MONOTONIC time. A vDSO call (no syscall), so it is cheap enough to read
/// once per event on the hot path; never affected by wall-clock adjustments.
inline nanos now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<nanos>(ts.tv_sec) * ns_per_s + ts.tv_nsec;
}

/// `ns` as fractional seconds / milliseconds, for reports only.
inline double to_seconds(nanos ns) {
  return static_cast<double>(ns) / 1e9;
}
inline double to_millis(nanos ns) {
  return static_cast<double>(ns) / 1e6;
}

}  // namespace httpbench::loadgen
