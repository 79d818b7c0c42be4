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

void server_stats::add_error(error_kind kind, uint64_t n) {
  std::atomic<uint64_t>* of_kind = &errors_status;
  switch (kind) {
    case error_kind::status: of_kind = &errors_status; break;
    case error_kind::lost: of_kind = &errors_lost; break;
    case error_kind::timeout: of_kind = &errors_timeout; break;
    case error_kind::cut: of_kind = &errors_cut; break;
    case error_kind::refused: of_kind = &errors_refused; break;
  }
  add(*of_kind, n);
  add(errors, n);
}

void server_stats::count_refused() {
  add(connections);
  add(closed);
  add_error(error_kind::refused);
}

void server_stats::count_cut(uint64_t n) {
  if (n == 0) return;
  add(closed, n);
  add_error(error_kind::cut, n);
}

uint64_t server_stats::count_unclosed_as_cut() {
  uint64_t opened = connections.load(std::memory_order_relaxed);
  uint64_t ended = closed.load(std::memory_order_relaxed);
  // A fork child killed just after its connection closed can make `closed` run ahead.
  uint64_t open = opened > ended ? opened - ended : 0;
  count_cut(open);
  return open;
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
                        ", \"errors\": %" PRIu64 ", \"errors_status\": %" PRIu64
                        ", \"errors_lost\": %" PRIu64 ", \"errors_timeout\": %" PRIu64
                        ", \"errors_cut\": %" PRIu64 ", \"errors_refused\": %" PRIu64
                        ", \"user_switches\": %" PRIu64 ", \"status_requests\": %" PRIu64,
                        get(s.requests), get(s.connections), sent, get(s.bytes_received),
                        get(s.errors), get(s.errors_status), get(s.errors_lost),
                        get(s.errors_timeout), get(s.errors_cut), get(s.errors_refused),
                        get(s.user_switches), get(s.status_requests));
  return n < 0 ? 0 : std::min(static_cast<size_t>(n), capacity == 0 ? 0 : capacity - 1);
}

}  // namespace httpbench::core
