#pragma once
/// What a backend gets from the core: configuration, content, counters, the listening socket,
/// and the stop signal.
#include <atomic>
#include <csignal>
#include <string>
#include <string_view>

#include "backend.hpp"
#include "connection.hpp"
#include "content.hpp"
#include "options.hpp"
#include "stats.hpp"
#include "stop.hpp"
#include "unique_fd.hpp"

namespace httpbench::core {

struct server_context {
  const server_config& config;
  const backend_info& info;
  const content_store& content;
  server_stats& stats;
  /// The listening socket: non-blocking, listening. A backend may close it to stop accepting
  /// (listener.reset()); forked children hold a copy of their own.
  unique_fd listener;
  /// An eventfd that becomes (and stays) readable once SIGTERM/SIGINT arrives: add it to your
  /// poll set, never read it. Owned by the core. Forked children share it, so they see the
  /// parent's stop too.
  int stop_fd;
  /// Extra members for the stats line, e.g. "\"accepts_per_process\": [1, 2]". A backend may
  /// set it before run() returns.
  std::string extra_stats_json;
  /// In a worker process of the supervisor: its MAP_SHARED count of open connections, which
  /// every connection made with limits() keeps (the supervisor counts them as cut if the worker
  /// dies). nullptr elsewhere.
  std::atomic<int64_t>* open_in_process = nullptr;

  /// A backend tunable: the --set value, or its default.
  std::string_view setting(std::string_view key) const { return core::setting(config, info, key); }
  /// An integer tunable (declared with a range), already checked when the options were parsed.
  size_t number(std::string_view key) const { return core::setting_number(config, info, key); }
  /// True once SIGTERM or SIGINT has been received by this process.
  bool stop_requested() const { return stop_flag != 0; }
  /// Connection limits and deadlines from the configuration.
  connection_limits limits() const {
    connection_limits l = limits_from(config);
    l.open_in_process = open_in_process;
    return l;
  }
  /// The stop policy's grace period (--grace), not yet begun.
  grace_period grace() const { return grace_period(config.grace_ms); }
};

/// Sets the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.
long raise_fd_limit();

/// The process's current and peak resident set size in kB (from /proc/self/status).
void resident_memory(long& rss_kb, long& peak_kb);

}  // namespace httpbench::core
