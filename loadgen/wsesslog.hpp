// Session workloads: httperf's --wsesslog file format and the built-in generator.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace httpbench::loadgen {

/// One request of a session.
struct session_request {
  std::string path;            ///< starts with '/'
  std::string method = "GET";  ///< GET, HEAD or POST
  std::string contents;        ///< request body (POST)
};

/// A burst: a page and its embedded objects. The first request is sent, then the others one
/// after another on the same connection as each response arrives.
struct session_burst {
  std::vector<session_request> requests;
  /// Think time after this burst in seconds (httperf's `think=`); negative: use the default
  /// (a fixed --think-time, or a draw from the inactive off-period distribution).
  double think_s = -1;
};

/// A user session: bursts separated by think times, all on one persistent connection.
struct session_definition {
  std::vector<session_burst> bursts;
};

/// Parses httperf's wsesslog format:
///   - '#' starts a comment line; lines of only whitespace separate sessions (several blank
///     lines do not make empty sessions);
///   - a line starting with a non-blank character starts a burst: `PATH [attr=value]...`;
///   - a line starting with a blank adds a request to the current burst;
///   - attributes: `method=GET|HEAD|POST`, `contents=TEXT` ('...' or "..." quoted, or a bare
///     word), `think=SECONDS` (think time after the burst; only on a burst's first line).
/// Returns nullopt and a message naming the line on error.
std::optional<std::vector<session_definition>> parse_wsesslog(std::string_view text,
                                                              std::string& error);

}  // namespace httpbench::loadgen
