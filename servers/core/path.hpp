#pragma once
/// Turning a request target into a document-root path, safely.
#include <cstddef>
#include <span>
#include <string_view>

namespace httpbench::core {

enum class path_status {
  ok,
  bad,        ///< malformed escape, NUL byte, or not an origin-form path: 400
  forbidden,  ///< ".." would leave the document root: 403
};

/// Splits a request target into path and query (without the '?'). Absolute-form targets
/// ("http://host/p") are reduced to their path; "http://host" gives an empty path, which means
/// "/". Both views point into `target`.
void split_target(std::string_view target, std::string_view& path, std::string_view& query);

/// Percent-decodes `raw` (which must start with '/') and resolves "", "." and ".." segments into
/// `out`. The result always starts with '/', never contains "." or ".." segments, and keeps a
/// trailing '/' when the request named a directory. On success `out_len` is its length.
/// `out` may be the very bytes of `raw` (in-place decoding): the result is never longer.
path_status normalize_path(std::string_view raw, std::span<char> out, size_t& out_len);

/// Finds `key` in an application/x-www-form-urlencoded query and decodes its value ('+' is a
/// space) into `out`, which may start at the query's own bytes (in place). Returns the decoded
/// length; -1 when the key is absent; -2 when the value is badly encoded or does not fit.
long query_param(std::string_view query, std::string_view key, std::span<char> out);

}  // namespace httpbench::core
