// libFuzzer target: arbitrary bytes, split at arbitrary points, through the parser and the
// connection state machine. Built with clang++ -fsanitize=fuzzer,address,undefined.
// The first input byte chooses the read size, so the fuzzer explores resumption as well. The
// same chunks also go through connection::feed_in_place() from a buffer that is overwritten
// after each call (as core::read_idle's next read does), and both connections must write the
// same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/connection.hpp"
#include "core/content.hpp"
#include "core/parser.hpp"
#include "core/stats.hpp"
#include "tests/drive_connection.hpp"

using namespace httpbench::core;
using httpbench::core::test_support::serve_in_reads;

namespace {

const content_store& content() {
  static const content_store store = content_store::builtin();
  return store;
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
  {
    server_stats stats;
    connection c(content(), stats);
    (void)serve_in_reads(c, in, chunk, /*in_place=*/false);
  }

  // Two more, without the status page (its counters and uptime differ from one connection to
  // the next): one fed copies, one fed the same chunks in place, and they must agree.
  connection_limits no_status;
  no_status.status_path = {};
  std::string written[2];
  for (bool in_place : {false, true}) {
    server_stats stats;
    connection c(content(), stats, no_status);
    written[in_place] = serve_in_reads(c, in, chunk, in_place);
  }
  if (written[0] != written[1]) std::abort();
  return 0;
}
