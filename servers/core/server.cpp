// main() of every httpd-<backend> binary: the process contract of docs/interfaces.md.
#include "server.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>

#include "json.hpp"
#include "listener.hpp"

namespace httpbench::core {

namespace {

int stop_event_fd = -1;  ///< for the signal handler; owned by main()

extern "C" void on_stop_signal(int) {
  int saved = errno;
  stop_flag = 1;
  signal_eventfd(stop_event_fd);
  errno = saved;
}

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: blocking calls return EINTR so loops can notice the stop
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  // A peer that resets while we write must cost an EPIPE, not the process.
  signal(SIGPIPE, SIG_IGN);
}

bool write_ready_file(const std::string& path, const std::string& address) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << address << '\n';
    if (!out) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

std::string stats_json(const server_context& ctx, double uptime_s) {
  std::string out = "{\"stats\": {\"backend\": ";
  append_json_string(out, ctx.info.name);
  char buf[counters_json_max + 64];
  size_t n = format_counters(ctx.stats, buf, sizeof buf);
  out += ", ";
  out.append(buf, n);
  std::snprintf(buf, sizeof buf, ", \"uptime_s\": %.3f", uptime_s);
  out += buf;
  if (!ctx.extra_stats_json.empty()) out += ", " + ctx.extra_stats_json;
  out += "}}";
  return out;
}

}  // namespace

long raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  getrlimit(RLIMIT_NOFILE, &rl);
  return static_cast<long>(rl.rlim_cur);
}

void resident_memory(long& rss_kb, long& peak_kb) {
  rss_kb = peak_kb = -1;
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "VmRSS:") status >> rss_kb;
    else if (key == "VmHWM:") status >> peak_kb;
    status.ignore(1 << 20, '\n');
  }
}

}  // namespace httpbench::core

int main(int argc, char** argv) {
  using namespace httpbench;
  using namespace httpbench::core;
  const backend_info& info = backend::info;
  if (info.category == backend_category::unset) {
    // Caught when the build runs --describe for backends.json, so it never reaches a run.
    std::fprintf(stderr, "httpd-%.*s: backend_info.category is not set (see backend.hpp)\n",
                 static_cast<int>(info.name.size()), info.name.data());
    return 1;
  }
  parse_outcome parsed = parse_options(argc, argv, info);
  if (!parsed.ok) {
    std::fputs(parsed.message.c_str(), parsed.exit_code == 0 ? stdout : stderr);
    std::fputc('\n', parsed.exit_code == 0 ? stdout : stderr);
    return parsed.exit_code;
  }
  const server_config& config = parsed.config;
  if (config.describe) {
    std::printf("%s\n", describe_json(info).c_str());
    return 0;
  }
  std::string prog = "httpd-" + std::string(info.name);
  long fd_limit = raise_fd_limit();
  if (fd_limit > 0 && fd_limit < config.max_conns + 64L)
    std::fprintf(stderr, "%s: warning: the file limit (%ld) is below --max-conns %d\n",
                 prog.c_str(), fd_limit, config.max_conns);

  content_store content = content_store::builtin();
  if (!config.docroot.empty()) {
    try {
      content = content_store::from_directory(config.docroot, config.sendfile_threshold);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: %s\n", prog.c_str(), e.what());
      return 1;
    }
  }

  unique_fd stop_event = make_eventfd();
  if (!stop_event) {
    std::fprintf(stderr, "%s: eventfd: %s\n", prog.c_str(), std::strerror(errno));
    return 1;
  }
  stop_event_fd = stop_event.get();
  install_signal_handlers();

  std::string error;
  bool reuseport = info.listen_reuseport != nullptr && info.listen_reuseport(config);
  listen_options lo{config.bind, config.port, config.backlog, reuseport, config.defer_accept_s};
  unique_fd listener = open_listener(lo, error);
  if (!listener) {
    std::fprintf(stderr, "%s: %s\n", prog.c_str(), error.c_str());
    return 1;
  }
  std::string address = local_address(listener.get());
  server_context ctx{config,        info, content, *make_shared_stats(), std::move(listener),
                     stop_event_fd, {}};

  if (!config.ready_file.empty() && !write_ready_file(config.ready_file, address)) {
    std::fprintf(stderr, "%s: cannot write --ready-file %s: %s\n", prog.c_str(),
                 config.ready_file.c_str(), std::strerror(errno));
    return 1;
  }
  std::printf("listening on %s\n", address.c_str());
  std::fflush(stdout);

  ctx.stats.pid = ::getpid();
  ctx.stats.started_ns = monotonic_ns();
  int rc = backend::run(ctx);
  // Connections still open now are cut: the grace period is over (docs/interfaces.md).
  ctx.stats.count_unclosed_as_cut();
  double uptime = static_cast<double>(monotonic_ns() - ctx.stats.started_ns) / 1e9;
  std::printf("%s\n", stats_json(ctx, uptime).c_str());
  std::fflush(stdout);
  // Threads of a backend may still be blocked in a read: leave without running destructors
  // under their feet.
  std::fflush(stderr);
  _exit(rc);
}
