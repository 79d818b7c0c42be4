// Session workloads: httperf's --wsesslog file format and the built-in generator.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace httpbench::loadgen {

/// One request of a session.
struct session_request {
  std::string path;            ///< the request-URI as written in the file
  std::string method = "GET";  ///< DELETE, GET, HEAD, OPTIONS, POST, PUT or TRACE
  std::string contents;        ///< request body (sent with a Content-Length when not empty)
};

/// A burst: a page and its embedded objects. The first request is sent; when its response is
/// in, the others are sent concurrently (as httperf does).
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

/// Parses httperf's --wsesslog file as httperf's own parser (src/gen/wsesslog.c) reads it:
///   - a line whose first character is '#' is a comment ('#' anywhere else is data);
///   - a line of only whitespace ends the current session (several make no empty session);
///   - otherwise the line's first word is a request-URI, sent as written. The first line of a
///     session starts its first burst, indented or not; after it, a line starting with a
///     non-blank character starts a new burst and an indented one adds to the current burst;
///   - then words `method=M` (the first of DELETE, GET, HEAD, OPTIONS, POST, PUT, TRACE that M
///     starts with), `think=SECONDS` (the burst's think time, on any of its lines) and
///     `contents=VALUE`: quotes '...' and "..." (concatenated), escapes \n \r \t and \c for
///     any other c, and a backslash at the end of a line, which adds a newline and continues
///     the value (and the line's attributes) on the next line. Unquoted whitespace ends it.
/// Differences, all on files httperf cannot run: a line over 9,999 bytes, a negative or
/// non-finite think time, and a file without sessions are refused; there is no limit of
/// 1,000 sessions. Returns nullopt and a message naming the line on error.
std::optional<std::vector<session_definition>> parse_wsesslog(std::string_view text,
                                                              std::string& error);

}  // namespace httpbench::loadgen
