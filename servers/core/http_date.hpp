#pragma once
#include <cstddef>
#include <ctime>
#include <string_view>

namespace httpbench::core {

inline constexpr size_t date_line_max = 48;  ///< the line is always 37 bytes

/// "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n" (RFC 9110's IMF-fixdate) for `seconds` since the
/// epoch, written to `line`; returns its length (37).
size_t format_date_line(time_t seconds, char (&line)[date_line_max]);

/// The date line for the current second. Formatted at most once per second per thread; the view
/// stays valid until the next call on the same thread.
std::string_view date_line();

}  // namespace httpbench::core
