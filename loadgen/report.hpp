// The result of a run and its three outputs: the human summary, --json and --hdr-log.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "config.hpp"
#include "error_kind.hpp"
#include "request_table.hpp"
#include "response_verifier.hpp"
#include "sample_window.hpp"
#include "url.hpp"
#include "worker.hpp"

namespace httpbench::loadgen {

/// Everything measured in a run, merged over the threads.
struct run_result {
  window_summary window;
  error_counts errors;
  worker_counters counters;
  std::vector<url_counts> per_url;  ///< parallel to the request table
  std::uint64_t incomplete = 0;
  std::uint64_t sessions_in_progress = 0;
  std::uint32_t threads = 1;
  std::uint32_t connections = 0;  ///< closed loop: -c; open loop: -c or --max-connections
  nanos start = 0;
  nanos end = 0;
  long client_max_rss_kib = 0;  ///< the loadgen's peak resident memory (getrusage ru_maxrss)
  double cpu_user_s = 0;
  double cpu_sys_s = 0;
  /// Times the loadgen's threads blocked (getrusage ru_nvcsw): on loopback each is a wake-up
  /// that the server's write pays for (docs/methodology.md, "Which client").
  long voluntary_switches = 0;
  double idle_polling_s = 0;
  double wall_s = 0;  ///< the whole run, start to end: what utilization is relative to
  bool interrupted = false;
  bool hard_cap_reached = false;
  bool reference_mismatch = false;  ///< threads took different first bodies as reference
  std::string server_software;
  std::int64_t document_length = -1;
  /// Time-averaged requests in service over the kept window (mean_in_service), set before
  /// finish().
  double mean_in_service = 0;

  /// Derived values, computed once by finish().
  double elapsed_s = 0;
  double requests_per_second = 0;
  double throughput_mbit_s = 0;
  double mean_response_ms = 0;
  double measured_load = 0;     ///< = mean_in_service
  double measured_load_nt = 0;  ///< n * t_r / t, the paper's formula
  double mean_service_ms = 0;   ///< kept samples: completion minus start of service
  double offered_load = 0;
  double mean_connect_ms = 0;
  double cpu_utilization = 0;
  bool client_bound = false;

  /// Computes the derived values from the raw ones and the configuration.
  void finish(const config& cfg);
};

/// Adds one thread's counters, errors, per-URL counts and end time to `result`; compares its
/// reference bodies with those of `first` (the first thread). Samples are merged separately
/// (merge_windows), as discarding needs all threads at once.
void add_worker(run_result& result, const worker& w, const worker& first, std::size_t targets);

/// Percentiles reported everywhere, as JSON keys.
inline constexpr const char* percentile_keys[] = {"50", "90", "99", "99.9", "99.99"};
inline constexpr double percentile_values[] = {50, 90, 99, 99.9, 99.99};

/// Prints the ab-like summary (both "Time per request" lines, the percentile table) plus
/// measured load, errors by kind and client CPU.
void print_summary(std::FILE* out, const config& cfg, const url& target,
                   const request_table& targets, const run_result& result);

/// Writes the --json object (field names: docs/interfaces.md). False with `error` on I/O failure.
bool write_json(const std::string& path, const config& cfg, const request_table& targets,
                const run_result& result, std::string& error);

/// Writes the --hdr-log file. False with `error` on I/O failure.
bool write_hdr_log(const std::string& path, const run_result& result, std::string& error);

}  // namespace httpbench::loadgen
