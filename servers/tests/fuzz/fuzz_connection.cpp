// libFuzzer target: arbitrary bytes, split at arbitrary points, through the parser and the
// connection state machine. Built with clang++ -fsanitize=fuzzer,address,undefined.
// The first input byte chooses the read size, so the fuzzer explores resumption as well. The
// same chunks also go through connection::feed_in_place() from a buffer that is overwritten
// after each call (as core::read_idle's next read does), and both connections must write the
// same bytes.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "core/connection.hpp"
#include "core/content.hpp"
#include "core/parser.hpp"
#include "core/stats.hpp"

using namespace httpbench::core;

namespace {

const content_store& content() {
  static const content_store store = content_store::builtin();
  return store;
}

// Writes everything `c` has queued into `out` (file ranges as their length only), reading every
// byte so that ASan sees a bad pointer; Date values are blanked, since two connections may
// straddle a second.
void drain(connection& c, std::string& out) {
  for (pending_output o = c.output(); !o.empty(); o = c.output()) {
    size_t n = 0;
    for (const iovec& v : o.iov) {
      out.append(static_cast<const char*>(v.iov_base), v.iov_len);
      n += v.iov_len;
    }
    if (o.iov.empty()) {
      n = o.file.length;
      out += "<file " + std::to_string(n) + ">";
    }
    c.consumed(n);
  }
  for (size_t at = out.find("\r\nDate: "); at != std::string::npos; at = out.find("\r\nDate: ", at + 1))
    if (out.size() >= at + 8 + 29) out.replace(at + 8, 29, 29, 'x');
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t chunk = 1 + data[0] % 64;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);

  // The parser alone, on the whole input.
  request_parser p;
  request req;
  (void)p.parse(in, req);

  // The connection, fed in chunks, drained after each.
  std::string copied, in_place;
  {
    server_stats stats;
    connection c(content(), stats);
    for (std::string_view rest = in; !rest.empty() && c.wants_read();) {
      size_t n = c.feed(rest.substr(0, chunk));
      rest.remove_prefix(n);
      drain(c, copied);
      if (n == 0) break;
    }
    drain(c, copied);
  }

  // Two more, without the status page (its counters and uptime differ from one connection to
  // the next): one fed copies, one fed the same chunks in place, and they must agree.
  connection_limits no_status;
  no_status.status_path = {};
  copied.clear();
  for (bool feed_in_place : {false, true}) {
    server_stats stats;
    connection c(content(), stats, no_status);
    std::string& out = feed_in_place ? in_place : copied;
    std::vector<char> scratch(chunk);
    for (std::string_view rest = in; !rest.empty() && c.wants_read();) {
      size_t len = std::min(chunk, rest.size());
      std::copy_n(rest.data(), len, scratch.data());
      size_t n = feed_in_place ? c.feed_in_place({scratch.data(), len})
                               : c.feed({scratch.data(), len});
      std::fill(scratch.begin(), scratch.end(), '#');  // the next read's bytes
      rest.remove_prefix(n);
      drain(c, out);
      if (n == 0) break;
    }
    drain(c, out);
  }
  if (copied != in_place) std::abort();
  return 0;
}
