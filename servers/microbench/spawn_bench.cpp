// What it costs to start a unit of concurrency, as von Leitner (2003) measured: fork() and
// pthread_create() — the per-connection price the fork and thread backends pay.
#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

namespace {

void* nothing(void*) { return nullptr; }

void BM_pthread_create_join(benchmark::State& state) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, static_cast<size_t>(state.range(0)));
  for (auto _ : state) {
    pthread_t t;
    if (pthread_create(&t, &attr, nothing, nullptr) != 0) {
      state.SkipWithError("pthread_create failed");
      break;
    }
    pthread_join(t, nullptr);
  }
  pthread_attr_destroy(&attr);
  state.SetItemsProcessed(state.iterations());
}

// fork() cost grows with the parent's mapped memory (page tables are copied), so the parent
// first touches `range(0)` bytes.
void BM_fork_exit_wait(benchmark::State& state) {
  std::vector<char> ballast(static_cast<size_t>(state.range(0)), 1);
  benchmark::DoNotOptimize(ballast.data());
  for (auto _ : state) {
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    if (pid < 0) {
      state.SkipWithError("fork failed");
      break;
    }
    int status;
    waitpid(pid, &status, 0);
  }
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

BENCHMARK(BM_pthread_create_join)->Arg(64 << 10)->Arg(8 << 20)->UseRealTime();
BENCHMARK(BM_fork_exit_wait)->Arg(1 << 20)->Arg(64 << 20)->UseRealTime();
BENCHMARK_MAIN();
