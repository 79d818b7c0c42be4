// steady_loop CPU SECONDS WINDOW_S [WORKING_SET_KIB]: how steady is this CPU? A fixed loop pinned
// to CPU, counted per window; prints one rate (iterations per second) per window on one line.
// harness/steadiness.py turns the rates into the machine's own variation, the floor under every
// interval a run can give.
//
// Without WORKING_SET_KIB (or 0) the loop is integer arithmetic: no system calls, no memory
// traffic, so it sees the clock and the time the host takes away. With it, the loop chases
// pointers through a random cycle over that many KiB, one cache line per step, so every step
// waits for the cache: it also sees what a server's kernel work feels and arithmetic does not
// (a host sharing the core's caches with other guests, a virtual CPU moved to a cold core).
// On the 2-core VM this project is developed on, the arithmetic loop varied 0.7–1.1 % while a
// 1 MiB chase varied 7–23 % in the same minutes (docs/methodology.md, "How steady the machine is").
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <random>
#include <vector>

namespace {

struct alignas(64) cache_line {
  std::size_t next;
};

// A single random cycle through `lines` cache lines: each step's address depends on the last
// load, so the hardware prefetcher cannot run ahead and every step costs one cache access.
std::vector<cache_line> random_cycle(std::size_t lines) {
  std::vector<std::size_t> order(lines);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(20091));
  std::vector<cache_line> cycle(lines);
  for (std::size_t i = 0; i < lines; ++i) cycle[order[i]].next = order[(i + 1) % lines];
  return cycle;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4 && argc != 5) {
    std::fprintf(stderr, "usage: steady_loop CPU SECONDS WINDOW_S [WORKING_SET_KIB]\n");
    return 2;
  }
  const int cpu = std::atoi(argv[1]);
  const double seconds = std::strtod(argv[2], nullptr);
  const double window = std::strtod(argv[3], nullptr);
  const long working_set_kib = argc == 5 ? std::atol(argv[4]) : 0;
  if (cpu < 0 || seconds <= 0 || window <= 0 || window > seconds || working_set_kib < 0 ||
      working_set_kib > (1L << 22)) {
    std::fprintf(stderr, "steady_loop: bad arguments\n");
    return 2;
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) {
    std::perror("steady_loop: sched_setaffinity");
    return 1;
  }
  const std::size_t lines = std::size_t(working_set_kib) * 1024 / sizeof(cache_line);
  std::vector<cache_line> cycle = random_cycle(std::max<std::size_t>(lines, 1));
  // A thousand steps of the loop, from x; returns where it ended.
  auto thousand_steps = [&](std::size_t x) {
    if (lines == 0) {
      for (int i = 0; i < 1000; ++i) x = x * 1103515245u + 12345u;
    } else {
      for (int i = 0; i < 1000; ++i) x = cycle[x].next;
    }
    return x;
  };
  using clock = std::chrono::steady_clock;
  volatile std::size_t sink = 1;
  std::size_t x = sink;
  // One untimed window first: the first timed window was the slowest in every probe (by 3-10 %),
  // a virtual CPU coming out of idle rather than the machine's variation.
  for (auto warm = clock::now() + std::chrono::duration<double>(window); clock::now() < warm;)
    x = thousand_steps(x);
  std::vector<double> rates;
  const auto end = clock::now() + std::chrono::duration<double>(seconds);
  while (clock::now() < end) {
    const auto t0 = clock::now();
    unsigned long n = 0;
    while (std::chrono::duration<double>(clock::now() - t0).count() < window) {
      x = thousand_steps(x);
      ++n;
    }
    rates.push_back(double(n) / std::chrono::duration<double>(clock::now() - t0).count());
  }
  sink = x;
  for (std::size_t i = 0; i < rates.size(); ++i) std::printf(i ? " %.1f" : "%.1f", rates[i]);
  std::printf("\n");
  return 0;
}
