// Event notification cost against the number of watched descriptors (von Leitner 2003's
// select/poll/epoll graph): N idle socketpairs plus one that becomes readable each iteration.
// select() and poll() scan all N; epoll does not.
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

#include "core/poller.hpp"

using namespace httpbench::core;

namespace {

template <class Poller>
void BM_notify_one_of_n(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  std::vector<int> fds;
  Poller poller;
  int active[2] = {-1, -1};
  for (int i = 0; i < n; ++i) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 || !poller.add(sv[0], poll_read)) {
      state.SkipWithError("cannot create or watch enough descriptors");
      for (int fd : fds) close(fd);
      return;
    }
    fds.push_back(sv[0]);
    fds.push_back(sv[1]);
    if (i == n / 2) active[0] = sv[0], active[1] = sv[1];
  }
  ready_event events[16];
  char byte = 'x';
  for (auto _ : state) {
    if (write(active[1], &byte, 1) != 1) break;
    int got = poller.wait(events, -1);
    benchmark::DoNotOptimize(got);
    if (read(active[0], &byte, 1) != 1) break;
  }
  for (int fd : fds) close(fd);
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

// Each descriptor is a socketpair (two fds): 5,000 stays under the usual 20,000 hard limit.
BENCHMARK_TEMPLATE(BM_notify_one_of_n, epoll_poller)->Arg(10)->Arg(100)->Arg(1000)->Arg(5000);
BENCHMARK_TEMPLATE(BM_notify_one_of_n, poll_poller)->Arg(10)->Arg(100)->Arg(1000)->Arg(5000);
// select() cannot watch descriptors beyond FD_SETSIZE (1024).
BENCHMARK_TEMPLATE(BM_notify_one_of_n, select_poller)->Arg(10)->Arg(100)->Arg(500);
BENCHMARK_MAIN();
