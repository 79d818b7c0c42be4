#pragma once
#include <string_view>

namespace httpbench::core {

/// "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n" for the current second. Formatted at most once
/// per second per thread; the view stays valid until the next call on the same thread.
std::string_view date_line();

}  // namespace httpbench::core
