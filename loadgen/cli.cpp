// Command-line parsing for loadgen.
#include <getopt.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "config.hpp"

namespace httpbench::loadgen {

namespace {

constexpr const char* usage_text = R"(usage: loadgen [options] URL
  URL is http://HOST[:PORT][/PATH]; only loopback targets unless --allow-remote.

Closed loop (default, ab-style):
  -c N                 connections, each with one request in flight (default 1)
  -n N                 requests to start in total
  -d DURATION          run length (10s, 2m, 500ms); one of -n / -d is required
  -k                   keep-alive (HTTP/1.1); default: a new connection per request (HTTP/1.0)
      --pipeline D     with -k: D requests per write on each connection (c*D in flight)
Open loop:
  -R RATE              requests per second (selects the open loop); -c N: its connections
                       (default --max-connections)
      --arrival KIND   constant (default) or poisson
      --max-connections N  connections the open loop / sessions may open (default 10000)
      --max-pending N  arrivals waiting for a connection per thread before drops (100000)
Sessions (partially open, httperf-style):
      --session-rate R sessions per second (selects sessions)
      --sessions N     sessions to start (or -d)
      --wsesslog FILE  httperf session file; default: built-in generator
      --session-connections N  connections per session (default 4, httperf's
                       --max-connections with sessions)
      --max-piped-calls N  pipelined requests per session connection (default 32, httperf's)
      --session-bursts B, --burst-length K   built-in: B bursts of K requests (5, 3)
      --think-time S   fixed think time between bursts (default: Pareto draw)
      --inactive-mean S, --inactive-shape A  Pareto off-period (3.0, 1.5)
      --active-mean S, --active-shape K      Weibull off-period (0.343, 0.382)
Common:
  -t THREADS           client threads, one epoll loop each (default 1)
      --cpus LIST      pin thread i to the i-th CPU of LIST (e.g. 1,2,3)
      --discard N      drop the first and last N samples (default 1000)
      --warmup DUR     drop samples completing in the first DUR (then --discard defaults to 0)
      --cooldown DUR   drop samples completing in the last DUR of -d (or of the open loop's
                       arrivals); open loop default: both min(1000/RATE s, 5% of the run)
      --ramp DUR       spread connection starts over DUR
      --spin-us N      poll without blocking for up to N us before sleeping (default 50;
                       0 = sleep at once); idle polling is not counted as busy CPU
      --timeout DUR    response timeout (default 30s); --connect-timeout DUR (default 10s)
      --hard-cap DUR   no run lasts longer (default 1h)
  -m METHOD            GET (default) or HEAD
      --expect FILE    manifest of 'PATH SIZE' lines: expected body sizes
      --no-verify-body check status and lengths only
      --json FILE      write the result as one JSON object
      --hdr-log FILE   write the latency histogram (HdrHistogram percentile format, ms)
      --seed N         seed of Poisson arrivals and think times (default 1)
      --close-with-reset  close connections with RST instead of FIN (as httperf can)
      --allow-remote   allow a non-loopback target
  -q                   no human summary
  -h, --help           this text
)";

bool parse_u64(const char* text, std::uint64_t& out) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || text[0] == '-') return false;
  out = v;
  return true;
}

bool parse_positive_double(const char* text, double& out) {
  char* end = nullptr;
  const double v = std::strtod(text, &end);
  if (end == text || *end != '\0' || !std::isfinite(v) || v <= 0) return false;
  out = v;
  return true;
}

enum long_option {
  opt_pipeline = 1000,
  opt_arrival,
  opt_max_connections,
  opt_max_pending,
  opt_session_rate,
  opt_sessions,
  opt_wsesslog,
  opt_session_bursts,
  opt_session_connections,
  opt_max_piped_calls,
  opt_burst_length,
  opt_think_time,
  opt_inactive_mean,
  opt_inactive_shape,
  opt_active_mean,
  opt_active_shape,
  opt_cpus,
  opt_discard,
  opt_warmup,
  opt_cooldown,
  opt_ramp,
  opt_spin_us,
  opt_timeout,
  opt_connect_timeout,
  opt_hard_cap,
  opt_expect,
  opt_no_verify_body,
  opt_json,
  opt_hdr_log,
  opt_seed,
  opt_allow_remote,
  opt_close_with_reset,
};

}  // namespace

nanos parse_duration(const std::string& text) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || !std::isfinite(v) || v < 0) return -1;
  const std::string unit(end);
  double scale;
  if (unit.empty() || unit == "s")
    scale = 1e9;
  else if (unit == "ms")
    scale = 1e6;
  else if (unit == "us")
    scale = 1e3;
  else if (unit == "m")
    scale = 60e9;
  else if (unit == "h")
    scale = 3600e9;
  else
    return -1;
  return static_cast<nanos>(v * scale);
}

int parse_command_line(int argc, char** argv, config& out, bool& help_shown, std::string& error) {
  help_shown = false;
  for (int i = 0; i < argc; ++i) {
    if (i) out.command_line += ' ';
    out.command_line += argv[i];
  }
  static const option options[] = {
      {"help", no_argument, nullptr, 'h'},
      {"pipeline", required_argument, nullptr, opt_pipeline},
      {"arrival", required_argument, nullptr, opt_arrival},
      {"max-connections", required_argument, nullptr, opt_max_connections},
      {"max-pending", required_argument, nullptr, opt_max_pending},
      {"session-rate", required_argument, nullptr, opt_session_rate},
      {"sessions", required_argument, nullptr, opt_sessions},
      {"wsesslog", required_argument, nullptr, opt_wsesslog},
      {"session-bursts", required_argument, nullptr, opt_session_bursts},
      {"session-connections", required_argument, nullptr, opt_session_connections},
      {"max-piped-calls", required_argument, nullptr, opt_max_piped_calls},
      {"burst-length", required_argument, nullptr, opt_burst_length},
      {"think-time", required_argument, nullptr, opt_think_time},
      {"inactive-mean", required_argument, nullptr, opt_inactive_mean},
      {"inactive-shape", required_argument, nullptr, opt_inactive_shape},
      {"active-mean", required_argument, nullptr, opt_active_mean},
      {"active-shape", required_argument, nullptr, opt_active_shape},
      {"cpus", required_argument, nullptr, opt_cpus},
      {"discard", required_argument, nullptr, opt_discard},
      {"warmup", required_argument, nullptr, opt_warmup},
      {"cooldown", required_argument, nullptr, opt_cooldown},
      {"ramp", required_argument, nullptr, opt_ramp},
      {"spin-us", required_argument, nullptr, opt_spin_us},
      {"timeout", required_argument, nullptr, opt_timeout},
      {"connect-timeout", required_argument, nullptr, opt_connect_timeout},
      {"hard-cap", required_argument, nullptr, opt_hard_cap},
      {"expect", required_argument, nullptr, opt_expect},
      {"no-verify-body", no_argument, nullptr, opt_no_verify_body},
      {"json", required_argument, nullptr, opt_json},
      {"hdr-log", required_argument, nullptr, opt_hdr_log},
      {"seed", required_argument, nullptr, opt_seed},
      {"allow-remote", no_argument, nullptr, opt_allow_remote},
      {"close-with-reset", no_argument, nullptr, opt_close_with_reset},
      {nullptr, 0, nullptr, 0},
  };
  bool discard_given = false;
  bool warmup_given = false;
  bool cooldown_given = false;
  bool requests_given = false;
  optind = 1;
  opterr = 0;
  int opt;
  while ((opt = getopt_long(argc, argv, ":c:n:d:kR:t:m:qh", options, nullptr)) != -1) {
    const std::string arg = optarg ? optarg : "";
    std::uint64_t u = 0;
    auto bad = [&](const char* what) {
      error = std::string("bad value '") + arg + "' for " + what;
      return 2;
    };
    auto duration = [&](nanos& field, const char* what) {
      const nanos d = parse_duration(arg);
      if (d < 0) return bad(what);
      field = d;
      return 0;
    };
    auto count = [&](std::uint32_t& field, const char* what, std::uint64_t max) {
      if (!parse_u64(optarg, u) || u == 0 || u > max) return bad(what);
      field = static_cast<std::uint32_t>(u);
      return 0;
    };
    auto real = [&](double& field, const char* what) {
      if (!parse_positive_double(optarg, field)) return bad(what);
      return 0;
    };
    int rc = 0;
    switch (opt) {
      case 'c':
        rc = count(out.concurrency, "-c", 1'000'000);
        out.concurrency_given = true;
        break;
      case 'n':
        if (!parse_u64(optarg, out.requests) || out.requests == 0) rc = bad("-n");
        requests_given = true;
        break;
      case 'd':
        rc = duration(out.duration, "-d");
        if (rc == 0 && out.duration == 0) rc = bad("-d");
        break;
      case 'k':
        out.keep_alive = true;
        break;
      case 'R':
        rc = real(out.rate, "-R");
        out.mode = run_mode::open;
        break;
      case 't':
        rc = count(out.threads, "-t", 1024);
        break;
      case 'm':
        if (arg != "GET" && arg != "HEAD") rc = bad("-m (GET or HEAD)");
        out.method = arg;
        break;
      case 'q':
        out.quiet = true;
        break;
      case 'h':
        std::fputs(usage_text, stdout);
        help_shown = true;
        return 0;
      case opt_pipeline:
        rc = count(out.pipeline, "--pipeline", 1024);
        break;
      case opt_arrival:
        if (arg == "constant")
          out.arrival = arrival_process::constant;
        else if (arg == "poisson")
          out.arrival = arrival_process::poisson;
        else
          rc = bad("--arrival (constant or poisson)");
        break;
      case opt_max_connections:
        rc = count(out.max_connections, "--max-connections", 10'000'000);
        break;
      case opt_max_pending:
        rc = count(out.max_pending, "--max-pending", 100'000'000);
        break;
      case opt_session_rate:
        rc = real(out.session_rate, "--session-rate");
        out.mode = run_mode::sessions;
        break;
      case opt_sessions:
        if (!parse_u64(optarg, out.sessions) || out.sessions == 0) rc = bad("--sessions");
        break;
      case opt_wsesslog:
        out.wsesslog_path = arg;
        break;
      case opt_session_bursts:
        rc = count(out.session_bursts, "--session-bursts", 100000);
        break;
      case opt_session_connections:
        rc = count(out.session_connections, "--session-connections", 64);
        break;
      case opt_max_piped_calls:
        rc = count(out.max_piped_calls, "--max-piped-calls", 1024);
        break;
      case opt_burst_length:
        rc = count(out.burst_length, "--burst-length", 100000);
        break;
      case opt_think_time: {
        const nanos d = parse_duration(arg);
        if (d < 0) rc = bad("--think-time");
        out.think_time_s = to_seconds(d);
        break;
      }
      case opt_inactive_mean:
        rc = real(out.inactive_mean_s, "--inactive-mean");
        break;
      case opt_inactive_shape:
        rc = real(out.inactive_shape, "--inactive-shape");
        if (rc == 0 && out.inactive_shape <= 1) rc = bad("--inactive-shape (must be > 1)");
        break;
      case opt_active_mean:
        rc = real(out.active_mean_s, "--active-mean");
        break;
      case opt_active_shape:
        rc = real(out.active_shape, "--active-shape");
        break;
      case opt_cpus: {
        out.cpus.clear();
        std::size_t pos = 0;
        while (pos <= arg.size() && rc == 0) {
          const std::size_t comma = arg.find(',', pos);
          const std::string item =
              arg.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
          if (!parse_u64(item.c_str(), u) || u > 4095)
            rc = bad("--cpus");
          else
            out.cpus.push_back(static_cast<int>(u));
          if (comma == std::string::npos) break;
          pos = comma + 1;
        }
        break;
      }
      case opt_discard:
        if (!parse_u64(optarg, u)) rc = bad("--discard");
        out.discard = u;
        discard_given = true;
        break;
      case opt_warmup:
        rc = duration(out.warmup, "--warmup");
        warmup_given = true;
        break;
      case opt_cooldown:
        rc = duration(out.cooldown, "--cooldown");
        cooldown_given = true;
        break;
      case opt_ramp:
        rc = duration(out.ramp, "--ramp");
        break;
      case opt_spin_us:
        if (!parse_u64(optarg, u) || u > 1'000'000)
          rc = bad("--spin-us");
        else
          out.spin = static_cast<nanos>(u) * ns_per_us;
        break;
      case opt_timeout:
        rc = duration(out.timeout, "--timeout");
        if (rc == 0 && out.timeout == 0) rc = bad("--timeout");
        break;
      case opt_connect_timeout:
        rc = duration(out.connect_timeout, "--connect-timeout");
        if (rc == 0 && out.connect_timeout == 0) rc = bad("--connect-timeout");
        break;
      case opt_hard_cap:
        rc = duration(out.hard_cap, "--hard-cap");
        if (rc == 0 && out.hard_cap == 0) rc = bad("--hard-cap");
        break;
      case opt_expect:
        out.expect_path = arg;
        break;
      case opt_no_verify_body:
        out.verify_body = false;
        break;
      case opt_json:
        out.json_path = arg;
        break;
      case opt_hdr_log:
        out.hdr_log_path = arg;
        break;
      case opt_seed:
        if (!parse_u64(optarg, out.seed)) rc = bad("--seed");
        break;
      case opt_allow_remote:
        out.allow_remote = true;
        break;
      case opt_close_with_reset:
        out.close_with_reset = true;
        break;
      case ':':
        error = std::string("option ") + argv[optind - 1] + " needs a value";
        return 2;
      default:
        error = std::string("unknown option ") + argv[optind - 1];
        return 2;
    }
    if (rc != 0) return rc;
  }
  if (optind != argc - 1) {
    error = optind >= argc ? "no URL given (try --help)" : "exactly one URL expected (try --help)";
    return 2;
  }
  out.url = argv[optind];
  if (out.rate > 0 && out.session_rate > 0) {
    error = "-R and --session-rate select different modes; give one";
    return 2;
  }
  if (out.mode == run_mode::sessions) {
    if (requests_given) {
      error = "in session mode give --sessions N (or -d), not -n";
      return 2;
    }
    if (out.sessions == 0 && out.duration == 0) {
      error = "give --sessions N or -d DURATION: every run must be bounded";
      return 2;
    }
    out.keep_alive = true;  // a session is one persistent connection
  } else if (out.requests == 0 && out.duration == 0) {
    error = "give -n N or -d DURATION: every run must be bounded";
    return 2;
  }
  if (out.pipeline > 1 && !out.keep_alive) {
    error = "--pipeline needs -k (pipelining is only possible on persistent connections)";
    return 2;
  }
  if (out.pipeline > 1 && out.mode != run_mode::closed) {
    error = "--pipeline applies to the closed loop only";
    return 2;
  }
  if (out.duration > 0) out.planned_span = out.duration;
  if (out.mode == run_mode::open && out.requests > 0) {
    const auto arrivals = static_cast<nanos>(static_cast<double>(out.requests) / out.rate * 1e9);
    out.planned_span = out.planned_span > 0 ? std::min(out.planned_span, arrivals) : arrivals;
  }
  if (cooldown_given && out.planned_span == 0) {
    error = "--cooldown needs a planned end: -d, or -R with -n";
    return 2;
  }
  if (out.planned_span > 0 && out.warmup + out.cooldown >= out.planned_span) {
    error = "--warmup and --cooldown leave nothing of the run";
    return 2;
  }
  if (out.mode == run_mode::open && !discard_given && !warmup_given && !cooldown_given) {
    // Where the rate is known, warm-up and cool-down are times, not sample counts: 1,000
    // samples are 1,000/RATE seconds, but at most 5% of the run each, so a 4 s run at 1,000/s
    // keeps 3.6 s (--discard 1000 dropped 2 s of it).
    const auto samples_time = static_cast<nanos>(1000.0 / out.rate * 1e9);
    out.warmup = std::min(samples_time, out.planned_span / 20);
    out.cooldown = out.warmup;
    out.discard = 0;
  }
  if ((out.warmup > 0 || out.cooldown > 0) && !discard_given) out.discard = 0;
  return 0;
}

}  // namespace httpbench::loadgen
