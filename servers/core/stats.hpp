#pragma once
/// Server-wide counters, printed as the stats line at exit and served live on the status page
/// (GET /server-status). They live in shared memory so the children of process-based backends
/// add to the same counters as the parent. Every counter is defined in docs/interfaces.md.
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace httpbench::core {

/// The kinds of `errors` (docs/interfaces.md, "The counters"): each error is counted once, in
/// `errors` and in the counter of its kind.
enum class error_kind {
  status,   ///< a request answered with a 4xx or 5xx status
  lost,     ///< the peer ended a connection inside a request (EOF, reset, I/O error)
  timeout,  ///< a deadline ended a connection inside a request (header, send, body)
  cut,      ///< the server ended a connection inside a request (the stop's grace period ran
            ///< out), or lost it with a worker process that died (idle or not)
  refused,  ///< a connection accepted and closed at once, never served
};

struct server_stats {
  std::atomic<uint64_t> requests{0};  ///< answered, status-page requests excluded
  /// Connections the core began to serve (counted by connection's constructor) or refused.
  std::atomic<uint64_t> connections{0};
  std::atomic<uint64_t> bytes_sent{0};      ///< status-page responses excluded
  std::atomic<uint64_t> bytes_received{0};  ///< status-page requests excluded
  std::atomic<uint64_t> errors{0};          ///< the sum of the five kinds below
  std::atomic<uint64_t> errors_status{0};
  std::atomic<uint64_t> errors_lost{0};
  std::atomic<uint64_t> errors_timeout{0};
  std::atomic<uint64_t> errors_cut{0};
  std::atomic<uint64_t> errors_refused{0};
  /// Times a user-level thread serving a connection gave up the CPU to its scheduler (its next
  /// system call would block, or it yielded). Counted by the backends that schedule their own
  /// threads (fiber, st, pth); 0 for the others.
  std::atomic<uint64_t> user_switches{0};
  std::atomic<uint64_t> status_requests{0};  ///< status-page requests answered
  /// Connections whose end has been counted (not printed): connections - closed are open, or
  /// were held by a process that ended without closing them (count_unclosed_as_cut()).
  std::atomic<uint64_t> closed{0};

  /// Set once by main() before the backend runs (and before any fork): what the status page
  /// reports as pid and measures uptime_s from.
  int64_t started_ns = 0;  ///< CLOCK_MONOTONIC
  int pid = 0;             ///< the server's main process (the one that printed the ready line)

  void add(std::atomic<uint64_t>& counter, uint64_t n = 1) {
    counter.fetch_add(n, std::memory_order_relaxed);
  }
  /// Counts `n` errors of `kind` (in `errors` and in its kind's counter).
  void add_error(error_kind kind, uint64_t n = 1);
  /// A connection accepted and closed at once, never served (out of descriptors, past a
  /// poller's limit, no thread, process or stack for it): counted in `connections`, as closed,
  /// and as an error of kind refused. Backends call it where they refuse; the core's acceptor
  /// and event loop do for theirs.
  void count_refused();
  /// `n` connections whose process ended without closing them (a worker that died, or the
  /// grace period over at the stop) are closed now: errors of kind cut.
  void count_cut(uint64_t n);
  /// At the very end: every connection not yet counted as closed was cut (main() calls it
  /// before it prints the stats line). Returns how many.
  uint64_t count_unclosed_as_cut();
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
inline constexpr size_t counters_json_max = 512;

}  // namespace httpbench::core
