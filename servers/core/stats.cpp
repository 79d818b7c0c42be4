#include "stats.hpp"

#include <sys/mman.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

namespace httpbench::core {

server_stats* make_shared_stats() {
  void* p = ::mmap(nullptr, sizeof(server_stats), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    std::fprintf(stderr, "mmap(stats): %s\n", std::strerror(errno));
    std::abort();
  }
  return new (p) server_stats();
}

int64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

size_t format_counters(const server_stats& s, char* out, size_t capacity) {
  auto get = [](const std::atomic<uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  // A status response's bytes are taken off bytes_sent when it is queued and come back as it is
  // written (connection::respond_status): read while another one is in flight, in a server that
  // has sent fewer bytes than that response, the counter is below zero for a moment.
  uint64_t sent = get(s.bytes_sent);
  if (sent > static_cast<uint64_t>(INT64_MAX)) sent = 0;
  int n = std::snprintf(out, capacity,
                        "\"requests\": %" PRIu64 ", \"connections\": %" PRIu64
                        ", \"bytes_sent\": %" PRIu64 ", \"bytes_received\": %" PRIu64
                        ", \"errors\": %" PRIu64 ", \"user_switches\": %" PRIu64
                        ", \"status_requests\": %" PRIu64,
                        get(s.requests), get(s.connections), sent, get(s.bytes_received),
                        get(s.errors), get(s.user_switches), get(s.status_requests));
  return n < 0 ? 0 : std::min(static_cast<size_t>(n), capacity == 0 ? 0 : capacity - 1);
}

}  // namespace httpbench::core
