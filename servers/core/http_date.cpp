#include "http_date.hpp"

#include <cstring>
#include <ctime>

namespace httpbench::core {

namespace {

char* two_digits(char* p, int v) {
  *p++ = static_cast<char>('0' + v / 10);
  *p++ = static_cast<char>('0' + v % 10);
  return p;
}

}  // namespace

size_t format_date_line(time_t seconds, char (&line)[date_line_max]) {
  // Formatted by hand, not with strftime(): glibc's strftime() calls tzset(), which stats
  // /etc/localtime on every call and reads it whole in a freshly forked process — 6 system
  // calls per connection of the fork backend, for a date that is always GMT.
  static constexpr char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  struct tm tm {};
  gmtime_r(&seconds, &tm);
  char* p = line;
  std::memcpy(p, "Date: ", 6), p += 6;
  std::memcpy(p, days[tm.tm_wday], 3), p += 3;
  *p++ = ',', *p++ = ' ';
  p = two_digits(p, tm.tm_mday);
  *p++ = ' ';
  std::memcpy(p, months[tm.tm_mon], 3), p += 3;
  *p++ = ' ';
  int year = (tm.tm_year + 1900) % 10000;
  p = two_digits(p, year / 100);
  p = two_digits(p, year % 100);
  *p++ = ' ';
  p = two_digits(p, tm.tm_hour);
  *p++ = ':';
  p = two_digits(p, tm.tm_min);
  *p++ = ':';
  p = two_digits(p, tm.tm_sec);
  std::memcpy(p, " GMT\r\n", 6), p += 6;
  return static_cast<size_t>(p - line);
}

std::string_view date_line() {
  // Per-thread, so threaded backends neither lock nor race on it.
  thread_local time_t cached_second = -1;
  thread_local char line[date_line_max];
  thread_local size_t length = 0;
  struct timespec now {};
  clock_gettime(CLOCK_REALTIME_COARSE, &now);
  if (now.tv_sec != cached_second) {
    length = format_date_line(now.tv_sec, line);
    cached_second = now.tv_sec;
  }
  return {line, length};
}

}  // namespace httpbench::core
