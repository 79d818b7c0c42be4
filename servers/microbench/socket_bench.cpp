// Von Leitner's (2003) "other reasons for high latency": socket() must return the lowest free
// descriptor, connect() must pick a free ephemeral port, accept() hands over a queued
// connection — each timed alone over loopback with 0, 1,000, 4,000 and 10,000 connections
// already established to the same listener (their server ends held by a helper process, so
// 10,000 fit the descriptor limit). And mmap: a file mapped, read one byte per page and
// unmapped, by size; and one page mapped, read and unmapped with 0 to 30,000 other mappings
// present (his question: do page-table and mapping structures scale?).
//
// socket/connect/accept use manual timing: only the named call is between the two clock reads
// (two vDSO clock_gettime calls, ~40 ns, are included); the rest of each iteration (the other
// calls of the handshake, closing with a reset so no TIME_WAIT accumulates) is not timed.
#include <benchmark/benchmark.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench_support.hpp"

namespace {

using namespace httpbench::microbench;

/// A loopback listener with N established connections: client ends here, server ends in a
/// keeper process.
class connection_population final : public population {
 public:
  connection_population() : listener_(loopback_listener()), address_(local_address(listener_.get())) {
    raise_fd_limit();
  }
  ~connection_population() override { end_all(); }
  bool resize(size_t n, std::string& error) override {
    if (n < clients_.size()) end_all();
    std::vector<int> accepted;
    while (clients_.size() < n) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0 || connect(fd, reinterpret_cast<const sockaddr*>(&address_), sizeof address_) != 0) {
        error = "only " + std::to_string(clients_.size()) + " of " + std::to_string(n) +
                " connections could be established: " + std::strerror(errno);
        if (fd >= 0) close(fd);
        break;
      }
      clients_.push_back(fd);
      int server_end = accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (server_end < 0) die("accept");
      accepted.push_back(server_end);
      if (accepted.size() == 250 || clients_.size() == n) {
        keeper_->keep(accepted);
        for (int a : accepted) close(a);
        accepted.clear();
      }
    }
    for (int a : accepted) close(a);
    return clients_.size() == n;
  }
  int listener() const { return listener_.get(); }
  const sockaddr_in& address() const { return address_; }

 private:
  void end_all() {
    for (int fd : clients_) close_with_reset(fd);
    clients_.clear();
    keeper_.reset();  // the keeper exits, closing the server ends
    keeper_ = std::make_unique<fd_keeper>();
  }

  unique_fd listener_;
  sockaddr_in address_;
  std::vector<int> clients_;
  std::unique_ptr<fd_keeper> keeper_ = std::make_unique<fd_keeper>();
};

double seconds_between(int64_t start_ns, int64_t end_ns) { return double(end_ns - start_ns) * 1e-9; }

void socket_socket(benchmark::State& state) {
  if (!alive<connection_population>(state)) return;
  for (auto _ : state) {
    int64_t t0 = monotonic_ns();
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int64_t t1 = monotonic_ns();
    if (fd < 0) {
      state.SkipWithError("socket failed");
      break;
    }
    close(fd);
    state.SetIterationTime(seconds_between(t0, t1));
  }
  state.SetItemsProcessed(state.iterations());
}

enum class timed_call { connect, accept };

template <timed_call which>
void socket_handshake(benchmark::State& state) {
  auto* pop = alive<connection_population>(state);
  if (pop == nullptr) return;
  const sockaddr* to = reinterpret_cast<const sockaddr*>(&pop->address());
  for (auto _ : state) {
    int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int64_t t0 = monotonic_ns();
    int rc = connect(client, to, sizeof(sockaddr_in));
    int64_t t1 = monotonic_ns();
    int server = accept4(pop->listener(), nullptr, nullptr, SOCK_CLOEXEC);
    int64_t t2 = monotonic_ns();
    if (client < 0 || rc != 0 || server < 0) {
      state.SkipWithError("socket, connect or accept failed");
      if (client >= 0) close(client);
      break;
    }
    close_with_reset(client);
    close(server);
    state.SetIterationTime(which == timed_call::connect ? seconds_between(t0, t1)
                                                        : seconds_between(t1, t2));
  }
  state.SetItemsProcessed(state.iterations());
}

/// An unlinked temporary file of `size` bytes, in the page cache.
unique_fd temporary_file(size_t size) {
  const char* dir = std::getenv("TMPDIR");
  std::string path = std::string(dir != nullptr ? dir : "/tmp") + "/socket_bench.XXXXXX";
  unique_fd fd(mkstemp(path.data()));
  if (!fd) die("mkstemp");
  unlink(path.c_str());
  std::string chunk(1 << 16, 'x');
  for (size_t done = 0; done < size; done += chunk.size())
    if (write(fd.get(), chunk.data(), std::min(chunk.size(), size - done)) < 0) die("write");
  return fd;
}

constexpr size_t page = 4096;

/// Maps `size` bytes of `fd`, reads one byte per page, unmaps; false when mmap fails.
bool map_read_unmap(int fd, size_t size, uint64_t& sum) {
  void* p = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return false;
  for (size_t off = 0; off < size; off += page) sum += static_cast<const volatile char*>(p)[off];
  munmap(p, size);
  return true;
}

void mmap_file(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  unique_fd file = temporary_file(size);
  uint64_t sum = 0;
  for (auto _ : state) {
    if (!map_read_unmap(file.get(), size, sum)) {
      state.SkipWithError("mmap failed");
      break;
    }
  }
  benchmark::DoNotOptimize(sum);
  state.SetBytesProcessed(int64_t(state.iterations()) * state.range(0));
  state.counters["pages"] = double(size / page);
}

void mmap_page_among(benchmark::State& state) {
  unique_fd file = temporary_file(page);
  std::vector<void*> others;
  // Separate mappings of the same file page never merge into one area: each one is its own
  // vm_area_struct, as each mapped file of a server would be.
  for (int64_t i = 0; i < state.range(0); ++i) {
    void* p = mmap(nullptr, page, PROT_READ, MAP_SHARED, file.get(), 0);
    if (p == MAP_FAILED) {
      state.SkipWithError("cannot create that many mappings (vm.max_map_count)");
      break;
    }
    others.push_back(p);
  }
  uint64_t sum = 0;
  if (!state.error_occurred()) {
    for (auto _ : state) {
      if (!map_read_unmap(file.get(), page, sum)) {
        state.SkipWithError("mmap failed");
        break;
      }
    }
  }
  for (void* p : others) munmap(p, page);
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations());
}

void register_all() {
  for (int64_t open : alive_counts) {
    benchmark::RegisterBenchmark("socket/socket", socket_socket)->Arg(open)->ArgName("open")->UseManualTime();
    benchmark::RegisterBenchmark("socket/connect", socket_handshake<timed_call::connect>)
        ->Arg(open)->ArgName("open")->UseManualTime();
    benchmark::RegisterBenchmark("socket/accept", socket_handshake<timed_call::accept>)
        ->Arg(open)->ArgName("open")->UseManualTime();
  }
  for (int64_t size : {int64_t(4) << 10, int64_t(64) << 10, int64_t(1) << 20, int64_t(16) << 20})
    benchmark::RegisterBenchmark("mmap/file", mmap_file)->Arg(size)->ArgName("bytes")->UseRealTime();
  for (int64_t n : {0, 1000, 10000, 30000})
    benchmark::RegisterBenchmark("mmap/page", mmap_page_among)->Arg(n)->ArgName("mappings")->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  return run_benchmarks(argc, argv);
}
