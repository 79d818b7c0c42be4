// Cost of the shared core per request, with no I/O: parsing alone (the smallest request a
// client can send, von Leitner's "GET / HTTP/1.0"; what wrk sends; what a browser sends), and a
// whole keep-alive request through the connection state machine (parse, route, build the
// response, consume).
#include <benchmark/benchmark.h>

#include <string>

#include "core/connection.hpp"
#include "core/content.hpp"
#include "core/parser.hpp"
#include "core/stats.hpp"

using namespace httpbench::core;

namespace {

// The smallest complete request, what wrk sends, and what a browser sends.
const std::string minimal_request = "GET / HTTP/1.0\r\n\r\n";
const std::string wrk_request = "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
const std::string browser_request =
    "GET /index.html HTTP/1.1\r\nHost: example.org\r\nUser-Agent: Mozilla/5.0 (X11; Linux "
    "x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\nAccept: text/html,application/xhtml+xml,"
    "application/xml;q=0.9,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: "
    "gzip, deflate, br\r\nConnection: keep-alive\r\nUpgrade-Insecure-Requests: 1\r\n\r\n";

void parse(benchmark::State& state, const std::string& input) {
  request_parser parser;
  request req;
  // A benchmark of a request the parser rejects or waits on would measure the wrong path.
  if (parser.parse(input, req).status != parse_status::complete) {
    state.SkipWithError("the parser does not find this request complete");
    return;
  }
  for (auto _ : state) {
    parser.reset();
    parse_result r = parser.parse(input, req);
    benchmark::DoNotOptimize(r);
    benchmark::DoNotOptimize(req);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * input.size()));
}

void BM_parse_minimal_request(benchmark::State& state) { parse(state, minimal_request); }
void BM_parse_wrk_request(benchmark::State& state) { parse(state, wrk_request); }
void BM_parse_browser_request(benchmark::State& state) { parse(state, browser_request); }

void BM_connection_keepalive_request(benchmark::State& state) {
  content_store content = content_store::builtin();
  server_stats stats;
  connection c(content, stats);
  for (auto _ : state) {
    c.feed(wrk_request);
    size_t n = 0;
    for (const iovec& v : c.output().iov) n += v.iov_len;
    c.consumed(n);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_connection_hello_page(benchmark::State& state) {
  content_store content = content_store::builtin();
  server_stats stats;
  connection c(content, stats);
  const std::string req = "GET /hello?name=%3Cworld%3E HTTP/1.1\r\nHost: x\r\n\r\n";
  for (auto _ : state) {
    c.feed(req);
    size_t n = 0;
    for (const iovec& v : c.output().iov) n += v.iov_len;
    c.consumed(n);
  }
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

BENCHMARK(BM_parse_minimal_request)->Name("parse/minimal_request");
BENCHMARK(BM_parse_wrk_request)->Name("parse/wrk_request");
BENCHMARK(BM_parse_browser_request)->Name("parse/browser_request");
BENCHMARK(BM_connection_keepalive_request)->Name("connection/keepalive_request");
BENCHMARK(BM_connection_hello_page)->Name("connection/hello_page");
BENCHMARK_MAIN();
