// The Date header line: RFC 9110's IMF-fixdate, GMT whatever the local time zone, formatted
// without strftime().
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <string>

#include "core/http_date.hpp"

namespace httpbench::core {
namespace {

std::string formatted(time_t seconds) {
  char line[date_line_max];
  size_t n = format_date_line(seconds, line);
  return std::string(line, n);
}

TEST(HttpDate, FormatsTheRfcExampleAsImfFixdate) {
  EXPECT_EQ(formatted(784111777), "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n");
}

TEST(HttpDate, PadsEveryFieldAndCoversEveryWeekdayAndMonth) {
  EXPECT_EQ(formatted(0), "Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n");
  EXPECT_EQ(formatted(951782400), "Date: Tue, 29 Feb 2000 00:00:00 GMT\r\n");
  EXPECT_EQ(formatted(1798761599), "Date: Thu, 31 Dec 2026 23:59:59 GMT\r\n");
  for (time_t day = 0; day < 400; ++day) {  // every weekday and month name, same length
    std::string line = formatted(day * 86400 + 3661);
    char expected[64];
    struct tm tm {};
    time_t t = day * 86400 + 3661;
    gmtime_r(&t, &tm);
    strftime(expected, sizeof expected, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
    EXPECT_EQ(line, expected);
  }
}

TEST(HttpDate, IsGmtWhateverTheLocalTimeZone) {
  ::setenv("TZ", "Pacific/Kiritimati", 1);  // UTC+14
  ::tzset();
  EXPECT_EQ(formatted(784111777), "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n");
  ::unsetenv("TZ");
  ::tzset();
}

TEST(HttpDate, DateLineIsForTheCurrentSecond) {
  time_t before = ::time(nullptr);
  std::string line(date_line());  // from the coarse clock, which may lag time() by a tick
  time_t after = ::time(nullptr);
  EXPECT_TRUE(line == formatted(before - 1) || line == formatted(before) || line == formatted(after)) << line;
}

}  // namespace
}  // namespace httpbench::core
