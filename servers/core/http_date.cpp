#include "http_date.hpp"

#include <ctime>

namespace httpbench::core {

std::string_view date_line() {
  // Per-thread, so threaded backends neither lock nor race on it.
  thread_local time_t cached_second = -1;
  thread_local char line[64];
  thread_local size_t length = 0;
  struct timespec now {};
  clock_gettime(CLOCK_REALTIME_COARSE, &now);
  if (now.tv_sec != cached_second) {
    struct tm tm {};
    gmtime_r(&now.tv_sec, &tm);
    length = strftime(line, sizeof line, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
    cached_second = now.tv_sec;
  }
  return {line, length};
}

}  // namespace httpbench::core
