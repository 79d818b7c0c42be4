// Everything a run is told on the command line.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "arrival_scheduler.hpp"
#include "clock.hpp"

namespace httpbench::loadgen {

enum class run_mode { closed, open, sessions };

/// A parsed, validated command line. Durations are in ns.
struct config {
  run_mode mode = run_mode::closed;
  std::string url;           ///< target URL as given
  std::string command_line;  ///< argv joined by spaces

  // Closed loop.
  std::uint32_t concurrency = 1;  ///< -c: connections (requests in flight = c * pipeline)
  bool concurrency_given = false; ///< -c was on the command line (the open loop's connections)
  std::uint64_t requests = 0;     ///< -n: requests to start (0: bounded by -d)
  nanos duration = 0;             ///< -d: run length (0: bounded by -n)
  bool keep_alive = false;        ///< -k
  std::uint32_t pipeline = 1;     ///< --pipeline D (keep-alive only)

  // Open loop.
  double rate = 0;  ///< -R requests/s
  arrival_process arrival = arrival_process::constant;
  std::uint32_t max_connections = 10000;  ///< --max-connections (open loop, sessions)
  std::uint32_t max_pending = 100000;     ///< --max-pending per thread before arrivals drop

  // Sessions.
  double session_rate = 0;           ///< --session-rate sessions/s
  std::uint64_t sessions = 0;        ///< --sessions: sessions to start (0: bounded by -d)
  std::string wsesslog_path;         ///< --wsesslog FILE
  std::uint32_t session_connections = 4;  ///< connections per session (httperf's default)
  std::uint32_t max_piped_calls = 32;     ///< pipelined requests per connection (httperf's)
  std::uint32_t session_bursts = 5;  ///< built-in generator: bursts per session
  std::uint32_t burst_length = 3;    ///< built-in generator: requests per burst
  double think_time_s = -1;          ///< --think-time: fixed inactive off-period
  double inactive_mean_s = 3.0;      ///< Pareto mean (Pariag et al.)
  double inactive_shape = 1.5;       ///< Pareto shape (Barford & Crovella)
  double active_mean_s = 0.343;      ///< Weibull mean (Pariag et al.)
  double active_shape = 0.382;       ///< Weibull shape (Barford & Crovella)

  // Common.
  std::uint32_t threads = 1;
  std::vector<int> cpus;                  ///< --cpus: pin thread i to cpus[i % size]
  std::size_t discard = 1000;             ///< --discard N
  nanos warmup = 0;                       ///< --warmup (or the open loop's default)
  nanos cooldown = 0;                     ///< --cooldown (or the open loop's default)
  /// Planned length of the run: -d, or for the open loop the arrival span n/rate if shorter;
  /// 0 when unknown (closed loop or sessions bounded by a count). The cool-down ends it.
  nanos planned_span = 0;
  nanos timeout = 30 * ns_per_s;          ///< --timeout (response)
  nanos connect_timeout = 10 * ns_per_s;  ///< --connect-timeout
  nanos ramp = 0;                         ///< --ramp: spread connection starts
  /// --spin-us: before sleeping in epoll, poll without blocking this long. A sleeping client
  /// makes every server response pay a cross-CPU wake-up, which slows a saturated server.
  nanos spin = 50 * ns_per_us;
  nanos hard_cap = 3600 * ns_per_s;       ///< --hard-cap: no run lasts longer
  std::string method = "GET";             ///< -m GET|HEAD
  std::string json_path;                  ///< --json
  std::string hdr_log_path;               ///< --hdr-log
  std::string expect_path;                ///< --expect manifest
  bool verify_body = true;                ///< --no-verify-body turns body comparison off
  bool close_with_reset = false;          ///< --close-with-reset: close sockets with RST
  bool allow_remote = false;              ///< --allow-remote
  bool quiet = false;                     ///< -q: no human summary
  std::uint64_t seed = 1;                 ///< --seed for Poisson arrivals and think times
};

/// Parses argv. Returns 0 and fills `out` on success; prints usage and returns 0 with
/// `help_shown` for --help; returns 2 with a one-line `error` on a bad command line.
int parse_command_line(int argc, char** argv, config& out, bool& help_shown, std::string& error);

/// Parses "10s", "2m", "1h", "250ms", "500us", "1.5" (seconds); -1 on error.
nanos parse_duration(const std::string& text);

}  // namespace httpbench::loadgen
