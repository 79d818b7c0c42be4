#pragma once
/// Server-wide counters, printed as the stats line at exit and served live on the status page
/// (GET /server-status). They live in shared memory so the children of process-based backends
/// add to the same counters as the parent. Every counter is defined in docs/interfaces.md.
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace httpbench::core {

struct server_stats {
  std::atomic<uint64_t> requests{0};  ///< answered, status-page requests excluded
  std::atomic<uint64_t> connections{0};
  std::atomic<uint64_t> bytes_sent{0};      ///< status-page responses excluded
  std::atomic<uint64_t> bytes_received{0};  ///< status-page requests excluded
  std::atomic<uint64_t> errors{0};  ///< 4xx/5xx responses and connections lost on I/O errors
  /// Times a user-level thread serving a connection gave up the CPU to its scheduler (its next
  /// system call would block, or it yielded). Counted by the backends that schedule their own
  /// threads (fiber, st, pth); 0 for the others.
  std::atomic<uint64_t> user_switches{0};
  std::atomic<uint64_t> status_requests{0};  ///< status-page requests answered

  /// Set once by main() before the backend runs (and before any fork): what the status page
  /// reports as pid and measures uptime_s from.
  int64_t started_ns = 0;  ///< CLOCK_MONOTONIC
  int pid = 0;             ///< the server's main process (the one that printed the ready line)

  void add(std::atomic<uint64_t>& counter, uint64_t n = 1) {
    counter.fetch_add(n, std::memory_order_relaxed);
  }
};

/// A zeroed server_stats in MAP_SHARED memory (inherited across fork). Aborts on failure.
server_stats* make_shared_stats();

/// CLOCK_MONOTONIC in nanoseconds.
int64_t monotonic_ns();

/// Writes the counters as JSON object members (`"requests": 1, ..., "status_requests": 0`, no
/// braces) to `out` and returns their length; `capacity` >= counters_json_max is always enough.
/// Shared by the status page and the stats line, so the two can never name a counter
/// differently.
size_t format_counters(const server_stats& stats, char* out, size_t capacity);
inline constexpr size_t counters_json_max = 320;

}  // namespace httpbench::core
