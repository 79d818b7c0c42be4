// The write side of a response (von Leitner 2003, "writev, TCP_CORK and TCP_NOPUSH"): the
// core's header for the built-in 305-byte page and its body, sent over a loopback TCP
// connection and read back by the peer in the same thread. The sender has TCP_NODELAY set, as
// a keep-alive server's socket does, so two writes leave as two segments; writev, TCP_CORK and
// one copied buffer make one. The "segments" counter is the sender's tcpi_segs_out per
// response (ACKs included when the kernel sends any), read from TCP_INFO before and after.
#include <benchmark/benchmark.h>
#include <linux/tcp.h>  // TCP_CORK, TCP_NODELAY and the tcp_info with tcpi_segs_out
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "bench_support.hpp"
#include "core/content.hpp"

namespace {

using namespace httpbench::microbench;

/// A connected loopback pair (sender: the accepted socket, as in a server), the response's
/// header and body, and the body also in an unlinked temporary file for sendfile.
struct response_path {
  unique_fd sender, receiver, body_file;
  std::string header, body;

  response_path() {
    httpbench::core::content_store content = httpbench::core::content_store::builtin();
    const httpbench::core::static_file* page = content.find("/");
    if (page == nullptr || !page->in_memory()) die("the built-in page is missing");
    header = page->head + "Date: Mon, 01 Dec 2025 00:00:00 GMT\r\nConnection: keep-alive\r\n\r\n";
    body = page->body;

    unique_fd listener = loopback_listener(16);
    sockaddr_in addr = local_address(listener.get());
    receiver.reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!receiver || connect(receiver.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
      die("connect 127.0.0.1");
    sender.reset(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!sender) die("accept");
    int one = 1;
    setsockopt(sender.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    const char* dir = std::getenv("TMPDIR");
    std::string path = std::string(dir != nullptr ? dir : "/tmp") + "/write_bench.XXXXXX";
    body_file.reset(mkstemp(path.data()));
    if (!body_file) die("mkstemp");
    unlink(path.c_str());
    if (write(body_file.get(), body.data(), body.size()) != static_cast<ssize_t>(body.size()))
      die("write body file");
  }

  /// The sender's segments sent so far.
  uint64_t segments_out() const {
    tcp_info info{};
    socklen_t len = sizeof info;
    if (getsockopt(sender.get(), IPPROTO_TCP, TCP_INFO, &info, &len) != 0) die("TCP_INFO");
    return info.tcpi_segs_out;
  }

  void cork(int on) const { setsockopt(sender.get(), IPPROTO_TCP, TCP_CORK, &on, sizeof on); }

  bool write_all(const std::string& s) const {
    return write(sender.get(), s.data(), s.size()) == static_cast<ssize_t>(s.size());
  }
  bool send_body_file() const {
    off_t off = 0;
    return sendfile(sender.get(), body_file.get(), &off, body.size()) ==
           static_cast<ssize_t>(body.size());
  }

  /// Reads the whole response on the receiving side.
  bool receive() const {
    char buf[4096];
    size_t want = header.size() + body.size();
    while (want > 0) {
      ssize_t n = read(receiver.get(), buf, sizeof buf);
      if (n <= 0) return false;
      want -= static_cast<size_t>(n);
    }
    return true;
  }
};

/// Runs `send` once per iteration and reads the response back; reports segments per response.
template <class Send>
void measure(benchmark::State& state, Send send) {
  response_path path;
  uint64_t before = path.segments_out();
  for (auto _ : state) {
    if (!send(path) || !path.receive()) {
      state.SkipWithError("sending or receiving the response failed");
      break;
    }
  }
  state.counters["segments"] = benchmark::Counter(
      static_cast<double>(path.segments_out() - before), benchmark::Counter::kAvgIterations);
  state.SetItemsProcessed(state.iterations());
}

void write_write(benchmark::State& state) {
  measure(state, [](const response_path& p) { return p.write_all(p.header) && p.write_all(p.body); });
}

void write_writev(benchmark::State& state) {
  measure(state, [](const response_path& p) {
    iovec iov[2] = {{const_cast<char*>(p.header.data()), p.header.size()},
                    {const_cast<char*>(p.body.data()), p.body.size()}};
    return writev(p.sender.get(), iov, 2) == static_cast<ssize_t>(p.header.size() + p.body.size());
  });
}

void write_cork_write_write(benchmark::State& state) {
  measure(state, [](const response_path& p) {
    p.cork(1);
    bool ok = p.write_all(p.header) && p.write_all(p.body);
    p.cork(0);
    return ok;
  });
}

void write_write_sendfile(benchmark::State& state) {
  measure(state, [](const response_path& p) { return p.write_all(p.header) && p.send_body_file(); });
}

void write_cork_write_sendfile(benchmark::State& state) {
  measure(state, [](const response_path& p) {
    p.cork(1);
    bool ok = p.write_all(p.header) && p.send_body_file();
    p.cork(0);
    return ok;
  });
}

/// The copying alternative von Leitner names: header and body into one buffer, one write.
void write_copy_write(benchmark::State& state) {
  std::string buffer;
  measure(state, [&buffer](const response_path& p) {
    buffer.assign(p.header);
    buffer.append(p.body);
    return p.write_all(buffer);
  });
}

}  // namespace

BENCHMARK(write_write)->Name("write/write_write")->UseRealTime();
BENCHMARK(write_writev)->Name("write/writev")->UseRealTime();
BENCHMARK(write_cork_write_write)->Name("write/cork_write_write")->UseRealTime();
BENCHMARK(write_write_sendfile)->Name("write/write_sendfile")->UseRealTime();
BENCHMARK(write_cork_write_sendfile)->Name("write/cork_write_sendfile")->UseRealTime();
BENCHMARK(write_copy_write)->Name("write/copy_write")->UseRealTime();
BENCHMARK_MAIN();
