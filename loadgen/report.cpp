#include "report.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "json_writer.hpp"
#include "measured_load.hpp"

namespace httpbench::loadgen {

namespace {

const char* mode_name(run_mode m) {
  switch (m) {
    case run_mode::closed:
      return "closed";
    case run_mode::open:
      return "open";
    case run_mode::sessions:
      return "sessions";
  }
  return "closed";
}

double ms(std::int64_t ns) {
  return static_cast<double>(ns) / 1e6;
}

}  // namespace

void run_result::finish(const config& cfg) {
  elapsed_s = window.elapsed_s();
  const double n = static_cast<double>(window.completed);
  requests_per_second = elapsed_s > 0 ? n / elapsed_s : 0;
  throughput_mbit_s = elapsed_s > 0 ? static_cast<double>(window.bytes) * 8 / 1e6 / elapsed_s : 0;
  mean_response_ms = window.latencies.mean() / 1e6;
  measured_load = mean_in_service;
  measured_load_nt = loadgen::measured_load_nt(window.completed, mean_response_ms / 1e3, elapsed_s);
  mean_service_ms = window.mean_service() / 1e6;
  switch (cfg.mode) {
    case run_mode::closed:
      offered_load = static_cast<double>(cfg.concurrency) * (cfg.keep_alive ? cfg.pipeline : 1);
      break;
    case run_mode::open:
      offered_load = open_loop_offered_load(cfg.rate, mean_response_ms / 1e3);
      break;
    case run_mode::sessions:
      // Sessions have no fixed request rate: the offered request rate is what they produced.
      offered_load = open_loop_offered_load(requests_per_second, mean_response_ms / 1e3);
      break;
  }
  mean_connect_ms = counters.connects
                        ? ms(counters.connect_time_sum) / static_cast<double>(counters.connects)
                        : 0;
  wall_s = to_seconds(end - start);
  const double wall = wall_s;
  // Idle polling (--spin-us) burns CPU while waiting: it is not work, so it does not count
  // towards the client being the bottleneck.
  idle_polling_s = to_seconds(counters.idle_polling);
  const double busy = std::max(0.0, cpu_user_s + cpu_sys_s - idle_polling_s);
  cpu_utilization = wall > 0 ? busy / (wall * threads) : 0;
  client_bound = cpu_utilization > 0.9;
}

void add_worker(run_result& result, const worker& w, const worker& first, std::size_t targets) {
  result.errors.merge(w.errors());
  const worker_counters& c = w.counters();
  worker_counters& m = result.counters;
  m.requests_started += c.requests_started;
  m.connects += c.connects;
  m.connect_time_sum += c.connect_time_sum;
  m.last_connect_at = std::max(m.last_connect_at, c.last_connect_at);
  m.response_bytes += c.response_bytes;
  m.late += c.late;
  m.dropped += c.dropped;
  m.max_send_lag = std::max(m.max_send_lag, c.max_send_lag);
  m.idle_polling += c.idle_polling;
  m.sessions_started += c.sessions_started;
  m.sessions_completed += c.sessions_completed;
  m.sessions_failed += c.sessions_failed;
  m.sessions_dropped += c.sessions_dropped;
  result.incomplete += w.incomplete();
  result.interrupted = result.interrupted || w.interrupted();
  result.end = std::max(result.end, w.ended_at());
  if (result.server_software.empty()) result.server_software = w.server_software();
  const auto& counts = w.verifier().counts();
  result.per_url.resize(targets);
  for (std::size_t u = 0; u < counts.size() && u < targets; ++u) {
    result.per_url[u].ok += counts[u].ok;
    result.per_url[u].errors += counts[u].errors;
    result.per_url[u].timeouts += counts[u].timeouts;
    result.per_url[u].body_bytes += counts[u].body_bytes;
  }
  for (std::size_t u = 0; u < targets; ++u) {
    const std::string* mine = w.verifier().reference(u);
    const std::string* theirs = first.verifier().reference(u);
    if (mine != nullptr && theirs != nullptr && *mine != *theirs) result.reference_mismatch = true;
  }
  if (result.document_length < 0) result.document_length = w.verifier().reference_length(0);
}

void print_summary(std::FILE* out, const config& cfg, const url& target,
                   const request_table& targets, const run_result& r) {
  const histogram& h = r.window.latencies;
  std::fprintf(out, "Server Software:        %s\n", r.server_software.c_str());
  std::fprintf(out, "Server Hostname:        %s\n", target.host.c_str());
  std::fprintf(out, "Server Port:            %u\n\n", target.port);
  std::fprintf(out, "Document Path:          %s\n", target.path.c_str());
  if (r.document_length >= 0)
    std::fprintf(out, "Document Length:        %lld bytes\n\n",
                 static_cast<long long>(r.document_length));
  else
    std::fprintf(out, "Document Length:        (no good response)\n\n");
  switch (cfg.mode) {
    case run_mode::closed:
      std::fprintf(out, "Mode:                   closed loop, %u connections x %u in flight, %s\n",
                   cfg.concurrency, cfg.keep_alive ? cfg.pipeline : 1,
                   cfg.keep_alive ? "keep-alive" : "new connection per request");
      break;
    case run_mode::open:
      std::fprintf(out,
                   "Mode:                   open loop, %.1f req/s %s arrivals, %u connections, "
                   "%s\n",
                   cfg.rate, cfg.arrival == arrival_process::poisson ? "poisson" : "constant",
                   r.connections, cfg.keep_alive ? "keep-alive" : "new connection per request");
      break;
    case run_mode::sessions:
      std::fprintf(out, "Mode:                   sessions, %.2f sessions/s, %s\n", cfg.session_rate,
                   cfg.wsesslog_path.empty() ? "built-in generator" : cfg.wsesslog_path.c_str());
      break;
  }
  std::fprintf(out, "Threads:                %u\n", r.threads);
  std::fprintf(out, "Time taken for tests:   %.3f seconds\n", to_seconds(r.end - r.start));
  std::fprintf(out, "Kept window:            %.3f seconds (first and last %zu samples dropped",
               r.elapsed_s, r.window.discarded_each_end);
  if (cfg.warmup > 0 || cfg.cooldown > 0)
    std::fprintf(out, "; %.3f s warm-up and %.3f s cool-down: %llu and %llu samples",
                 to_seconds(cfg.warmup), to_seconds(cfg.cooldown),
                 static_cast<unsigned long long>(r.window.warmup_dropped),
                 static_cast<unsigned long long>(r.window.cooldown_dropped));
  std::fprintf(out, ")\n");
  std::fprintf(out, "Complete requests:      %llu (%llu in the window)\n",
               static_cast<unsigned long long>(r.window.completed_total),
               static_cast<unsigned long long>(r.window.completed));
  std::fprintf(out, "Failed requests:        %llu\n",
               static_cast<unsigned long long>(r.errors.total()));
  for (std::size_t i = 0; i < error_kind_count; ++i)
    if (r.errors.by_kind[i] > 0)
      std::fprintf(out, "   %-20s %llu\n", std::string(error_kind_names[i]).c_str(),
                   static_cast<unsigned long long>(r.errors.by_kind[i]));
  std::fprintf(out, "Incomplete requests:    %llu\n",
               static_cast<unsigned long long>(r.incomplete));
  std::fprintf(out, "Total transferred:      %llu bytes\n",
               static_cast<unsigned long long>(r.counters.response_bytes));
  std::fprintf(out, "Requests per second:    %.2f [#/sec] (mean)\n", r.requests_per_second);
  std::fprintf(out, "Time per request:       %.3f [ms] (mean)\n", r.mean_response_ms);
  std::fprintf(out, "Time per request:       %.3f [ms] (mean, across all concurrent requests)\n",
               r.requests_per_second > 0 ? 1e3 / r.requests_per_second : 0.0);
  std::fprintf(out, "Transfer rate:          %.2f [Kbytes/sec] received (%.2f Mbit/s)\n",
               r.throughput_mbit_s * 1e6 / 8 / 1024, r.throughput_mbit_s);
  std::fprintf(out, "Measured load:          %.2f (offered %.2f; mean requests in service)\n",
               r.measured_load, r.offered_load);
  std::fprintf(out, "Measured load n*t_r/t:  %.2f (mean service time %.3f ms)\n",
               r.measured_load_nt, r.mean_service_ms);
  std::fprintf(out, "Connect time:           %.3f [ms] (mean of %llu connects)\n",
               r.mean_connect_ms, static_cast<unsigned long long>(r.counters.connects));
  if (cfg.mode == run_mode::open)
    std::fprintf(out,
                 "Late / dropped:         %llu late (>= 1 ms), %llu dropped, max lag %.3f ms\n",
                 static_cast<unsigned long long>(r.counters.late),
                 static_cast<unsigned long long>(r.counters.dropped), ms(r.counters.max_send_lag));
  if (cfg.mode == run_mode::sessions)
    std::fprintf(out,
                 "Sessions:               %llu started, %llu completed, %llu failed, %llu dropped, "
                 "%llu in progress\n",
                 static_cast<unsigned long long>(r.counters.sessions_started),
                 static_cast<unsigned long long>(r.counters.sessions_completed),
                 static_cast<unsigned long long>(r.counters.sessions_failed),
                 static_cast<unsigned long long>(r.counters.sessions_dropped),
                 static_cast<unsigned long long>(r.sessions_in_progress));
  std::fprintf(out,
               "Client CPU:             user %.2f s, sys %.2f s (%.2f s idle polling), "
               "utilization %.1f%%%s\n",
               r.cpu_user_s, r.cpu_sys_s, r.idle_polling_s, r.cpu_utilization * 100,
               r.client_bound ? "  ** CLIENT-BOUND: results measure the client **" : "");
  if (r.reference_mismatch)
    std::fprintf(out, "Warning:                threads saw different first bodies for one URL\n");
  if (r.interrupted) std::fprintf(out, "Interrupted:            partial results\n");
  if (r.hard_cap_reached) std::fprintf(out, "Hard cap reached:       run stopped by --hard-cap\n");
  if (targets.size() > 1) {
    std::fprintf(out, "\nPer URL:                ok / errors / timeouts\n");
    for (std::size_t i = 0; i < targets.size() && i < r.per_url.size(); ++i)
      std::fprintf(out, "  %-30s %llu / %llu / %llu\n", targets[i].path.c_str(),
                   static_cast<unsigned long long>(r.per_url[i].ok),
                   static_cast<unsigned long long>(r.per_url[i].errors),
                   static_cast<unsigned long long>(r.per_url[i].timeouts));
  }
  std::fprintf(out, "\nResponse times (ms)     min    mean[+/-sd]  median    max\n");
  std::fprintf(out, "Total:              %7.3f %7.3f %7.3f %7.3f %7.3f\n", ms(h.min()),
               h.mean() / 1e6, h.stddev() / 1e6, ms(h.value_at_percentile(50)), ms(h.max()));
  std::fprintf(out, "\nPercentage of the requests served within a certain time (ms)\n");
  for (std::size_t i = 0; i < std::size(percentile_values); ++i)
    std::fprintf(out, " %6s%%  %10.3f\n", percentile_keys[i],
                 ms(h.value_at_percentile(percentile_values[i])));
  std::fprintf(out, "   100%%  %10.3f (longest request)\n", ms(h.max()));
}

bool write_json(const std::string& path, const config& cfg, const request_table& targets,
                const run_result& r, std::string& error) {
  const histogram& h = r.window.latencies;
  json_writer j;
  j.begin_object();
  j.field("mode", mode_name(cfg.mode));
  j.field("command_line", cfg.command_line);
  j.field("url", cfg.url);
  // In the open loop, the connections it may keep (-c, else --max-connections).
  j.field("concurrency", cfg.mode == run_mode::open ? r.connections : cfg.concurrency);
  j.field("keep_alive", cfg.keep_alive);
  j.field("pipeline", cfg.pipeline);
  j.field("close_with_reset", cfg.close_with_reset);
  j.field("spin_us", static_cast<std::uint64_t>(cfg.spin / ns_per_us));
  j.field("threads", r.threads);
  j.field("completed", r.window.completed);
  j.field("completed_total", r.window.completed_total);
  j.field("incomplete", r.incomplete);
  j.field("requests_started", r.counters.requests_started);
  j.field("discarded_each_end", static_cast<std::uint64_t>(r.window.discarded_each_end));
  j.field("warmup_s", to_seconds(cfg.warmup));
  j.field("warmup_dropped", r.window.warmup_dropped);
  j.field("cooldown_s", to_seconds(cfg.cooldown));
  j.field("cooldown_dropped", r.window.cooldown_dropped);
  j.field("elapsed_s", r.elapsed_s);
  j.field("window_start_ns", r.window.window_start);
  j.field("window_end_ns", r.window.window_end);
  j.field("run_start_ns", r.start);
  j.field("run_end_ns", r.end);
  j.field("run_s", to_seconds(r.end - r.start));
  j.field("requests_per_second", r.requests_per_second);
  j.field("throughput_mbit_s", r.throughput_mbit_s);
  j.field("response_bytes", r.counters.response_bytes);
  j.field("mean_response_ms", r.mean_response_ms);
  j.field("median_response_ms", ms(h.value_at_percentile(50)));
  j.field("min_response_ms", ms(h.min()));
  j.field("stddev_response_ms", h.stddev() / 1e6);
  j.begin_object("percentiles_ms");
  for (std::size_t i = 0; i < std::size(percentile_values); ++i)
    j.field(percentile_keys[i], ms(h.value_at_percentile(percentile_values[i])));
  j.field("max", ms(h.max()));
  j.end_object();
  j.field("offered_load", r.offered_load);
  j.field("measured_load", r.measured_load);
  j.field("measured_load_nt", r.measured_load_nt);
  j.field("mean_service_ms", r.mean_service_ms);
  j.field("mean_connect_ms", r.mean_connect_ms);
  j.field("connects", r.counters.connects);
  // With keep-alive every connection is opened once, at the start (over --ramp): connects over
  // the time to the last one is the rate at which the server took new connections (the SXE
  // posts' connections/s).
  j.field("connect_phase_s", r.counters.last_connect_at > r.start
                                 ? static_cast<double>(r.counters.last_connect_at - r.start) / 1e9
                                 : 0.0);
  j.field("client_max_rss_kib", r.client_max_rss_kib);
  j.begin_object("errors");
  for (std::size_t i = 0; i < error_kind_count; ++i)
    j.field(error_kind_names[i], r.errors.by_kind[i]);
  j.end_object();
  j.field("errors_total", r.errors.total());
  j.begin_object("client_cpu");
  j.field("user_s", r.cpu_user_s);
  j.field("sys_s", r.cpu_sys_s);
  j.field("idle_polling_s", r.idle_polling_s);
  j.field("voluntary_switches", r.voluntary_switches);
  j.field("voluntary_switches_per_request",
          r.window.completed_total > 0
              ? static_cast<double>(r.voluntary_switches) / static_cast<double>(r.window.completed_total)
              : 0.0);
  j.field("wall_s", r.wall_s);
  j.field("utilization", r.cpu_utilization);
  j.end_object();
  j.field("client_bound", r.client_bound);
  if (cfg.mode == run_mode::open) {
    j.field("offered_rate", cfg.rate);
    j.field("arrival", cfg.arrival == arrival_process::poisson ? "poisson" : "constant");
    j.field("late_requests", r.counters.late);
    j.field("dropped_requests", r.counters.dropped);
    j.field("max_send_lag_ms", ms(r.counters.max_send_lag));
  }
  if (cfg.mode == run_mode::sessions) {
    j.begin_object("sessions");
    j.field("rate", cfg.session_rate);
    j.field("started", r.counters.sessions_started);
    j.field("completed", r.counters.sessions_completed);
    j.field("failed", r.counters.sessions_failed);
    j.field("dropped", r.counters.sessions_dropped);
    j.field("in_progress", r.sessions_in_progress);
    j.end_object();
  }
  j.begin_object("per_url");
  for (std::size_t i = 0; i < targets.size() && i < r.per_url.size(); ++i) {
    j.begin_object(targets[i].method == "GET" ? targets[i].path
                                              : targets[i].method + " " + targets[i].path);
    j.field("ok", r.per_url[i].ok);
    j.field("errors", r.per_url[i].errors);
    j.field("timeouts", r.per_url[i].timeouts);
    j.field("body_bytes", r.per_url[i].body_bytes);
    if (targets[i].expected_size >= 0) j.field("expected_size", targets[i].expected_size);
    j.end_object();
  }
  j.end_object();
  j.field("server_software", r.server_software);
  j.field("document_length", r.document_length);
  j.field("reference_mismatch", r.reference_mismatch);
  j.field("interrupted", r.interrupted);
  j.field("hard_cap_reached", r.hard_cap_reached);
  j.end_object();

  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    error = "cannot write " + path + ": " + std::strerror(errno);
    return false;
  }
  std::fputs(j.str().c_str(), f);
  std::fputc('\n', f);
  if (std::fclose(f) != 0) {
    error = "cannot write " + path + ": " + std::strerror(errno);
    return false;
  }
  return true;
}

bool write_hdr_log(const std::string& path, const run_result& result, std::string& error) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    error = "cannot write " + path + ": " + std::strerror(errno);
    return false;
  }
  result.window.latencies.write_percentile_distribution(f, 1e6);
  if (std::fclose(f) != 0) {
    error = "cannot write " + path + ": " + std::strerror(errno);
    return false;
  }
  return true;
}

}  // namespace httpbench::loadgen
