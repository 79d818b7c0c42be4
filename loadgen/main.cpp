// loadgen: the benchmark client. Parses the command line, checks the target, runs one worker
// per thread, merges their results and reports them.
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "closed_loop.hpp"
#include "config.hpp"
#include "open_loop.hpp"
#include "report.hpp"
#include "request_table.hpp"
#include "sessions.hpp"
#include "unique_fd.hpp"
#include "url.hpp"
#include "wsesslog.hpp"

using namespace httpbench::loadgen;

namespace {

std::atomic<bool> stop_requested{false};

void on_stop_signal(int) {
  stop_requested.store(true, std::memory_order_relaxed);
}

int fail(const std::string& message, int code = 1) {
  std::fprintf(stderr, "loadgen: %s\n", message.c_str());
  return code;
}

bool read_file(const std::string& path, std::string& out, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot read " + path + ": " + std::strerror(errno);
    return false;
  }
  std::ostringstream s;
  s << in.rdbuf();
  out = s.str();
  return true;
}

/// Raises RLIMIT_NOFILE's soft limit to the hard limit; returns the new soft limit.
rlim_t raise_fd_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return 1024;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
    getrlimit(RLIMIT_NOFILE, &lim);
  }
  return lim.rlim_cur;
}

/// One blocking-with-timeout connect before the run, so that a closed port or a firewalled
/// host gives one clear line instead of a run full of errors. Returns "" or the reason.
std::string probe(const resolved_address& address, nanos timeout) {
  unique_fd fd(::socket(address.address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return std::string("socket: ") + std::strerror(errno);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address.address), address.length) == 0)
    return "";
  if (errno != EINPROGRESS) return std::strerror(errno);
  pollfd p{fd.get(), POLLOUT, 0};
  const int rc = ::poll(&p, 1, static_cast<int>(timeout / ns_per_ms));
  if (rc == 0) return "connect timed out";
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  return err == 0 ? "" : std::strerror(err);
}

/// The i-th of `parts` shares of `total`, distributed so that no remainder is lost.
std::uint64_t share(std::uint64_t total, std::uint32_t parts, std::uint32_t i) {
  return total / parts + (i < total % parts ? 1 : 0);
}

double seconds_of(const timeval& tv) {
  return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  config cfg;
  bool help = false;
  std::string error;
  if (const int rc = parse_command_line(argc, argv, cfg, help, error); rc != 0)
    return fail(error, rc);
  if (help) return 0;

  const auto target = parse_url(cfg.url, error);
  if (!target) return fail(error, 2);
  const auto address = resolve(*target, error);
  if (!address) return fail(error);
  if (!address->loopback && !cfg.allow_remote)
    return fail("refusing non-loopback target " + address->text +
                " (benchmarks run on loopback; pass --allow-remote to override)");

  // Request table: the URL, then session paths, then the manifest.
  request_table targets(target->host_header, cfg.keep_alive, cfg.pipeline);
  targets.add(cfg.method, target->path);
  std::vector<session_plan> plans;
  if (cfg.mode == run_mode::sessions) {
    if (!cfg.wsesslog_path.empty()) {
      std::string text;
      if (!read_file(cfg.wsesslog_path, text, error)) return fail(error);
      const auto sessions = parse_wsesslog(text, error);
      if (!sessions) return fail(error);
      plans = plans_from_wsesslog(*sessions, targets);
    } else {
      plans = generated_plan(cfg.session_bursts, cfg.burst_length);
    }
  }
  if (!cfg.expect_path.empty()) {
    std::string text;
    if (!read_file(cfg.expect_path, text, error)) return fail(error);
    if (!targets.apply_manifest(text, error)) return fail(error);
  }

  // File descriptors: each connection needs one, plus an epoll fd per thread and stdio.
  const rlim_t fd_limit = raise_fd_limit();
  // The open loop keeps -c connections, as wrk2 does; without -c, up to --max-connections.
  // Sessions: --max-connections concurrent sessions of --session-connections connections.
  const std::uint32_t connections =
      cfg.mode == run_mode::closed || (cfg.mode == run_mode::open && cfg.concurrency_given)
          ? cfg.concurrency
          : cfg.max_connections;
  const std::uint64_t sockets =
      std::uint64_t{connections} * (cfg.mode == run_mode::sessions ? cfg.session_connections : 1);
  if (sockets + cfg.threads + 16 > fd_limit) {
    std::fprintf(stderr,
                 "loadgen: warning: %llu connections need more file descriptors than the limit "
                 "%llu (ulimit -Hn); expect fd_unavailable errors\n",
                 static_cast<unsigned long long>(sockets),
                 static_cast<unsigned long long>(fd_limit));
  }

  if (const std::string why = probe(*address, cfg.connect_timeout); !why.empty())
    return fail("cannot connect to " + address->text + ":" + std::to_string(target->port) + ": " +
                why);

  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // Threads: never more than there are connections, requests or sessions to give them, since a
  // thread's quota of 0 would mean "unlimited" (the run would go on to -d or the hard cap).
  std::uint32_t threads = cfg.threads;
  auto at_most = [&threads](std::uint64_t limit) {
    if (limit > 0 && threads > limit) threads = static_cast<std::uint32_t>(limit);
  };
  at_most(connections);
  at_most(cfg.mode == run_mode::sessions ? cfg.sessions : cfg.requests);

  run_context context;
  context.cfg = &cfg;
  context.address = &*address;
  context.targets = &targets;
  context.stop = &stop_requested;
  // A common start slightly in the future: every thread is running before the first request.
  context.start = now_ns() + 20 * ns_per_ms;
  const nanos cap = context.start + cfg.hard_cap;
  context.deadline = cfg.duration > 0 ? std::min(context.start + cfg.duration, cap) : cap;
  if (cfg.cooldown > 0) context.cooldown_start = context.start + cfg.planned_span - cfg.cooldown;

  std::vector<std::unique_ptr<worker>> workers;
  std::vector<session_worker*> session_workers;
  for (std::uint32_t i = 0; i < threads; ++i) {
    switch (cfg.mode) {
      case run_mode::closed:
        workers.push_back(std::make_unique<closed_loop_worker>(
            context, i, share(cfg.concurrency, threads, i), share(cfg.requests, threads, i)));
        break;
      case run_mode::open: {
        // Constant streams of the threads are offset so that together they are evenly spaced.
        const nanos first = context.start + static_cast<nanos>(i * 1e9 / cfg.rate);
        workers.push_back(std::make_unique<open_loop_worker>(
            context, i, share(connections, threads, i), cfg.rate / threads,
            share(cfg.requests, threads, i), cfg.seed + i, first));
        break;
      }
      case run_mode::sessions: {
        // Offset like the open loop's streams, so the threads' sessions interleave evenly
        // instead of arriving in groups of `threads`.
        const nanos first = context.start + static_cast<nanos>(i * 1e9 / cfg.session_rate);
        auto w = std::make_unique<session_worker>(
            context, i, share(cfg.max_connections, threads, i), plans, cfg.wsesslog_path.empty(),
            cfg.session_rate / threads, share(cfg.sessions, threads, i), cfg.seed + i, first);
        session_workers.push_back(w.get());
        workers.push_back(std::move(w));
        break;
      }
    }
  }

  rusage usage_before{};
  getrusage(RUSAGE_SELF, &usage_before);
  std::vector<std::thread> pool;
  for (std::uint32_t i = 0; i < threads; ++i) {
    pool.emplace_back([&, i] {
      if (!cfg.cpus.empty()) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cfg.cpus[i % cfg.cpus.size()], &set);
        if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0)
          std::fprintf(stderr, "loadgen: warning: cannot pin thread %u to CPU %d\n", i,
                       cfg.cpus[i % cfg.cpus.size()]);
      }
      workers[i]->run();
    });
  }
  for (auto& t : pool) t.join();
  rusage usage_after{};
  getrusage(RUSAGE_SELF, &usage_after);

  // Merge.
  run_result result;
  result.threads = threads;
  result.connections = connections;
  result.start = context.start;
  result.cpu_user_s = seconds_of(usage_after.ru_utime) - seconds_of(usage_before.ru_utime);
  result.cpu_sys_s = seconds_of(usage_after.ru_stime) - seconds_of(usage_before.ru_stime);
  result.client_max_rss_kib = usage_after.ru_maxrss;
  result.voluntary_switches = usage_after.ru_nvcsw - usage_before.ru_nvcsw;
  result.per_url.resize(targets.size());
  std::vector<const sample_recorder*> recorders;
  for (const auto& w : workers) {
    recorders.push_back(&w->samples());
    add_worker(result, *w, *workers.front(), targets.size());
  }
  for (const auto* s : session_workers) result.sessions_in_progress += s->sessions_in_progress();
  result.hard_cap_reached = !result.interrupted && result.end >= cap;
  const nanos origin = cfg.warmup > 0 ? context.start + cfg.warmup : context.start;
  result.window = merge_windows(recorders, cfg.discard, origin, context.cooldown_start);
  result.window.clamp_to(result.start, result.end);
  std::vector<const in_service_recorder*> loads;
  for (const auto& w : workers) loads.push_back(&w->in_service());
  result.mean_in_service =
      mean_in_service(loads, result.window.window_start, result.window.window_end);
  result.finish(cfg);

  if (!cfg.quiet) print_summary(stdout, cfg, *target, targets, result);
  // A run without a single kept good response has no result to report (every request failed,
  // or a silent server left them all incomplete): scripts must not take its zeros as data.
  int rc = 0;
  if (result.interrupted) {
    rc = 130;
  } else if (result.window.completed == 0) {
    std::fprintf(stderr,
                 "loadgen: no valid result: no good response in the kept window "
                 "(%llu good in all, %llu errors, %llu incomplete)\n",
                 static_cast<unsigned long long>(result.window.completed_total),
                 static_cast<unsigned long long>(result.errors.total()),
                 static_cast<unsigned long long>(result.incomplete));
    rc = 3;
  }
  if (!cfg.json_path.empty() && !write_json(cfg.json_path, cfg, targets, result, error))
    rc = fail(error);
  if (!cfg.hdr_log_path.empty() && !write_hdr_log(cfg.hdr_log_path, result, error))
    rc = fail(error);
  return rc;
}
