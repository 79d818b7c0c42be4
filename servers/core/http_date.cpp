#include "http_date.hpp"

#include <chrono>
#include <cstring>
#include <ctime>

#include "hot.hpp"

namespace httpbench::core {

namespace {

char* two_digits(char* p, int v) {
  *p++ = static_cast<char>('0' + v / 10);
  *p++ = static_cast<char>('0' + v % 10);
  return p;
}

}  // namespace

size_t format_date_line(time_t seconds, char (&line)[date_line_max]) {
  // Calendar arithmetic (<chrono>), not gmtime_r() or strftime(): glibc initialises its time
  // zone on their first call in a process, reading /etc/localtime whole — in a freshly forked
  // child that was 7 system calls per connection of the fork backend, for a date that is GMT.
  using namespace std::chrono;
  static constexpr char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  sys_seconds t{std::chrono::seconds{seconds}};
  sys_days day = floor<std::chrono::days>(t);
  year_month_day ymd{day};
  hh_mm_ss time{t - day};
  char* p = line;
  std::memcpy(p, "Date: ", 6), p += 6;
  std::memcpy(p, days[weekday{day}.c_encoding()], 3), p += 3;
  *p++ = ',', *p++ = ' ';
  p = two_digits(p, static_cast<int>(static_cast<unsigned>(ymd.day())));
  *p++ = ' ';
  std::memcpy(p, months[static_cast<unsigned>(ymd.month()) - 1], 3), p += 3;
  *p++ = ' ';
  int year = static_cast<int>(ymd.year()) % 10000;
  p = two_digits(p, year / 100);
  p = two_digits(p, year % 100);
  *p++ = ' ';
  p = two_digits(p, static_cast<int>(time.hours().count()));
  *p++ = ':';
  p = two_digits(p, static_cast<int>(time.minutes().count()));
  *p++ = ':';
  p = two_digits(p, static_cast<int>(time.seconds().count()));
  std::memcpy(p, " GMT\r\n", 6), p += 6;
  return static_cast<size_t>(p - line);
}

HTTPBENCH_HOT std::string_view date_line() {
  // Per-thread, so threaded backends neither lock nor race on it; one cache line, which a
  // worker woken among a hundred others finds cold once, not three times.
  struct alignas(64) cache {
    time_t second = -1;
    uint32_t length = 0;
    char line[date_line_max];
  };
  static_assert(sizeof(cache) == 64);
  thread_local cache c;
  struct timespec now {};
  clock_gettime(CLOCK_REALTIME_COARSE, &now);
  if (now.tv_sec != c.second) {
    c.length = static_cast<uint32_t>(format_date_line(now.tv_sec, c.line));
    c.second = now.tv_sec;
  }
  return {c.line, c.length};
}

}  // namespace httpbench::core
