#pragma once
/// The contract between the shared core and one concurrency backend.
///
/// A backend is one .cpp file in servers/backends/ that defines `httpbench::backend::info` and
/// `httpbench::backend::run`. The core's main() parses the command line, loads the content,
/// opens the listening socket, prints the ready line, calls run(), and prints the stats line
/// when run() returns. Each backend is linked into its own binary, so nothing dispatches at run
/// time.
#include <string_view>
#include <vector>

namespace httpbench::core {

struct server_context;
struct server_config;

/// One backend-specific option, set with `--set name=value`.
struct tunable {
  std::string_view name;
  std::string_view default_value;
  std::vector<std::string_view> choices;  ///< empty: any value is accepted
  std::string_view help;
  /// max > 0: the value must be an integer in [min, max] (checked when the options are parsed;
  /// read it with server_context::number).
  size_t min = 0, max = 0;
};

/// The family of concurrency models a backend belongs to: how the harness and the report group
/// backends. `--describe` prints category_name().
enum class backend_category {
  unset,        ///< not a category: a backend that leaves it unset does not start
  process,      ///< a process per connection, or a pool of processes each serving one (fork)
  thread,       ///< a kernel thread per connection, or a pool of them (thread, threadpool)
  user_thread,  ///< user-level threads scheduled by the process itself (fiber, st, pth)
  event,        ///< readiness loops over non-blocking sockets (sped, symped)
  pipeline,     ///< stages of threads handing connections on through queues (pipeline)
};

/// "process", "thread", "user-thread", "event", "pipeline"; "" for unset.
std::string_view category_name(backend_category category);

/// What `--describe` prints and `backends.json` lists.
struct backend_info {
  std::string_view name;        ///< binary is httpd-<name>
  std::string_view model;       ///< e.g. "event-driven, single process (SPED)"
  std::string_view summary;     ///< one line
  std::string_view paper;       ///< the paper section the backend reproduces
  backend_category category = backend_category::unset;
  int default_workers = 1;      ///< default of --workers
  /// True when --workers sizes a pool whose members each serve one connection at a time
  /// (prefork, threadpool): to hold N connections at once, run it with --workers N or more.
  bool workers_bound_connections = false;
  int max_connections = 10000;  ///< concurrent connections the model is meant to hold here
  std::vector<tunable> tunables;
  /// Optional: returns true when the listening socket the core opens must carry SO_REUSEPORT
  /// (for a backend that adds more sockets on the same port, one per process: symped's
  /// accept=reuseport). Consulted once, before the socket is opened; nullptr means false.
  bool (*listen_reuseport)(const server_config& config) = nullptr;
};

}  // namespace httpbench::core

namespace httpbench::backend {

/// Defined by the backend file.
extern const core::backend_info info;

/// Serves connections from ctx.listener until ctx.stop_requested(); returns the exit code.
/// Called once, on the main thread, with SIGTERM/SIGINT handled by the core.
int run(core::server_context& ctx);

}  // namespace httpbench::backend
