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

/// What `--describe` prints and `backends.json` lists.
struct backend_info {
  std::string_view name;        ///< binary is httpd-<name>
  std::string_view model;       ///< e.g. "event-driven, single process (SPED)"
  std::string_view summary;     ///< one line
  std::string_view paper;       ///< the paper section the backend reproduces
  int default_workers = 1;      ///< default of --workers
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

/// Serves connections from ctx.listen_fd until ctx.stop_requested(); returns the exit code.
/// Called once, on the main thread, with SIGTERM/SIGINT handled by the core.
int run(core::server_context& ctx);

}  // namespace httpbench::backend
