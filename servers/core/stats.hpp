#pragma once
/// Server-wide counters, printed as the stats line at exit. They live in shared memory so the
/// children of process-based backends add to the same counters as the parent.
#include <atomic>
#include <cstdint>

namespace httpbench::core {

struct server_stats {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> connections{0};
  std::atomic<uint64_t> bytes_sent{0};
  std::atomic<uint64_t> bytes_received{0};
  std::atomic<uint64_t> errors{0};  ///< 4xx/5xx responses and connections lost on I/O errors

  void add(std::atomic<uint64_t>& counter, uint64_t n = 1) {
    counter.fetch_add(n, std::memory_order_relaxed);
  }
};

/// A zeroed server_stats in MAP_SHARED memory (inherited across fork). Aborts on failure.
server_stats* make_shared_stats();

}  // namespace httpbench::core
