// libFuzzer target: arbitrary bytes, split at arbitrary points, through the parser and the
// connection state machine. Built with clang++ -fsanitize=fuzzer,address,undefined.
// The first input byte chooses the read size, so the fuzzer explores resumption as well.
#include <cstddef>
#include <cstdint>
#include <string_view>

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

void drain(connection& c) {
  for (pending_output o = c.output(); !o.empty(); o = c.output()) {
    size_t n = 0;
    for (const iovec& v : o.iov) {
      // Touch every byte so ASan sees a bad pointer.
      const volatile char* p = static_cast<const char*>(v.iov_base);
      for (size_t i = 0; i < v.iov_len; ++i) (void)p[i];
      n += v.iov_len;
    }
    if (o.iov.empty()) n = o.file.length;
    c.consumed(n);
  }
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
  server_stats stats;
  connection c(content(), stats);
  while (!in.empty() && c.wants_read()) {
    size_t n = c.feed(in.substr(0, chunk));
    in.remove_prefix(n);
    drain(c);
    if (n == 0) break;
  }
  drain(c);
  return 0;
}
