#pragma once
/// The command line shared by every httpd-<backend> binary (see docs/interfaces.md).
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "backend.hpp"

namespace httpbench::core {

/// Everything the common command line sets. Defaults are those of docs/interfaces.md.
struct server_config {
  std::string bind = "127.0.0.1";
  uint16_t port = 8080;
  std::string docroot;  ///< empty: the built-in docroot
  int workers = 1;
  int max_conns = 16384;
  size_t stack_size = 64 * 1024;
  int idle_timeout_s = 30;
  /// --header-timeout: a request head must arrive whole within this long of its first byte
  /// (and within --idle-timeout, if that is shorter).
  int header_timeout_ms = 10'000;
  /// --send-timeout: a response that makes no progress for this long is abandoned.
  int send_timeout_ms = 30'000;
  int grace_ms = 2000;  ///< --grace: how long connections inside a request may finish at stop
  int backlog = 4096;
  /// --defer-accept: TCP_DEFER_ACCEPT on the listening socket for this many seconds (0: off).
  int defer_accept_s = 0;
  size_t sendfile_threshold = 64 * 1024;
  size_t max_header_bytes = 8 * 1024;  ///< request line + headers
  size_t max_request_line = 8 * 1024;
  std::string ready_file;
  /// The status page's path (--status-path), answered by the core; empty: no status page
  /// (--no-status), the path is then an ordinary docroot path. Always a normalised path.
  std::string status_path = "/server-status";
  std::vector<std::pair<std::string, std::string>> settings;  ///< from --set, validated
  bool describe = false;
};

/// Result of parsing argv: either a config, or a message and an exit code (0 for --help).
struct parse_outcome {
  server_config config;
  bool ok = true;
  int exit_code = 0;
  std::string message;  ///< usage text or error, printed by the caller
};

/// Parses argv against the common options and the backend's tunables.
parse_outcome parse_options(int argc, char** argv, const backend_info& info);

/// The value of a tunable: from --set, else its default. `key` must be one of info.tunables.
std::string_view setting(const server_config& config, const backend_info& info,
                         std::string_view key);

/// The value of an integer tunable (one declared with a max), already range-checked by
/// parse_options. A default that does not parse is a bug: it aborts naming the tunable.
size_t setting_number(const server_config& config, const backend_info& info,
                      std::string_view key);

/// `--describe` output: one JSON object.
std::string describe_json(const backend_info& info);

/// Parses "65536", "64k", "1m", "2g". Returns false on anything else.
bool parse_size(std::string_view text, size_t& out);

}  // namespace httpbench::core
