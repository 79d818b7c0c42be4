// steady_loop CPU SECONDS WINDOW_S: how steady is this CPU? A fixed loop of integer arithmetic
// (no system calls, no memory traffic) pinned to CPU, counted per window; prints one rate
// (iterations per second) per window on one line. harness/steadiness.py turns the rates into the
// machine's own variation, the floor under every interval a run can give.
#include <sched.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: steady_loop CPU SECONDS WINDOW_S\n");
    return 2;
  }
  const int cpu = std::atoi(argv[1]);
  const double seconds = std::strtod(argv[2], nullptr);
  const double window = std::strtod(argv[3], nullptr);
  if (cpu < 0 || seconds <= 0 || window <= 0 || window > seconds) {
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
  using clock = std::chrono::steady_clock;
  const auto end = clock::now() + std::chrono::duration<double>(seconds);
  std::vector<double> rates;
  volatile unsigned sink = 1;
  while (clock::now() < end) {
    const auto t0 = clock::now();
    unsigned long n = 0;
    unsigned x = sink;
    while (std::chrono::duration<double>(clock::now() - t0).count() < window) {
      for (int i = 0; i < 1000; ++i) x = x * 1103515245u + 12345u;
      ++n;
    }
    sink = x;
    rates.push_back(double(n) / std::chrono::duration<double>(clock::now() - t0).count());
  }
  for (std::size_t i = 0; i < rates.size(); ++i) std::printf(i ? " %.1f" : "%.1f", rates[i]);
  std::printf("\n");
  return 0;
}
