// One round trip between two execution contexts (A hands control to B, B hands it back): the
// cost a server pays each time a connection blocks and another one runs. User-level switches
// (a Boost.Context fiber, a C++20 coroutine) stay in user space; the kernel ones wake the other
// side through a condition variable (two threads), a pipe (two processes) or a futex word in
// shared memory (two processes). Pinned to one CPU (`make microbench` runs under taskset -c 0),
// each kernel round trip is two sleeps, two wake-ups and two scheduler switches; on two CPUs it
// would instead measure cross-CPU wake-up latency. ST and Pth round trips are in st_bench and
// pth_bench.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/context/fiber.hpp>
#include <condition_variable>
#include <coroutine>
#include <cstdint>
#include <mutex>
#include <thread>

#include "bench_support.hpp"

namespace {

using namespace httpbench::microbench;
namespace bctx = boost::context;

void switch_fiber(benchmark::State& state) {
  bool stop = false;
  bctx::fiber other([&stop](bctx::fiber&& caller) {
    while (!stop) caller = std::move(caller).resume();
    return std::move(caller);
  });
  for (auto _ : state) other = std::move(other).resume();  // there and back
  stop = true;
  other = std::move(other).resume();  // lets it return
  state.SetItemsProcessed(state.iterations());
}

/// Suspends at every resume(): each resume() is one round trip.
manual_coroutine suspend_for_ever() {
  for (;;) co_await std::suspend_always{};
}

void switch_coroutine(benchmark::State& state) {
  manual_coroutine co = suspend_for_ever();
  for (auto _ : state) co.handle.resume();
  co.handle.destroy();
  state.SetItemsProcessed(state.iterations());
}

/// Two threads taking turns under one mutex, each waiting on its own condition variable.
void switch_pthread_condvar(benchmark::State& state) {
  std::mutex m;
  std::condition_variable to_partner, to_main;
  enum { main_turn, partner_turn, stop } turn = main_turn;
  std::thread partner([&] {
    std::unique_lock lock(m);
    for (;;) {
      to_partner.wait(lock, [&] { return turn != main_turn; });
      if (turn == stop) return;
      turn = main_turn;
      to_main.notify_one();
    }
  });
  {
    std::unique_lock lock(m);
    for (auto _ : state) {
      turn = partner_turn;
      to_partner.notify_one();
      to_main.wait(lock, [&] { return turn == main_turn; });
    }
    turn = stop;
    to_partner.notify_one();
  }
  partner.join();
  state.SetItemsProcessed(state.iterations());
}

/// A child that dies with us and is always reaped.
class partner_process {
 public:
  template <class Fn>
  explicit partner_process(Fn body) {
    pid_ = fork();
    if (pid_ < 0) die("fork");
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      body();
      _exit(0);
    }
  }
  ~partner_process() {
    int status;
    waitpid(pid_, &status, 0);
  }

 private:
  pid_t pid_;
};

void switch_pipe_processes(benchmark::State& state) {
  int there[2], back[2];
  if (pipe2(there, O_CLOEXEC) != 0 || pipe2(back, O_CLOEXEC) != 0) die("pipe");
  unique_fd there_r(there[0]), there_w(there[1]), back_r(back[0]), back_w(back[1]);
  {
    partner_process echo([&] {
      there_w.reset();
      back_r.reset();
      char byte;
      while (read(there_r.get(), &byte, 1) == 1)
        if (write(back_w.get(), &byte, 1) != 1) break;
    });
    there_r.reset();
    back_w.reset();
    char byte = 'x';
    for (auto _ : state) {
      if (write(there_w.get(), &byte, 1) != 1 || read(back_r.get(), &byte, 1) != 1) {
        state.SkipWithError("pipe round trip failed");
        break;
      }
    }
    there_w.reset();  // EOF ends the echo loop
  }
  state.SetItemsProcessed(state.iterations());
}

long futex(std::atomic<uint32_t>* word, int op, uint32_t value) {
  // Not FUTEX_PRIVATE_FLAG: the word is shared between two processes.
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), op, value, nullptr, nullptr, 0);
}

/// Waits until *word != value (the futex only sleeps while the word still holds it).
void wait_while(std::atomic<uint32_t>* word, uint32_t value) {
  while (word->load(std::memory_order_acquire) == value) futex(word, FUTEX_WAIT, value);
}

void switch_futex_processes(benchmark::State& state) {
  static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));
  void* shared = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared == MAP_FAILED) die("mmap shared");
  auto* turn = new (shared) std::atomic<uint32_t>(0);  // 0: ours, 1: partner's, 2: stop
  {
    partner_process partner([turn] {
      for (;;) {
        wait_while(turn, 0);
        if (turn->load(std::memory_order_acquire) == 2) return;
        turn->store(0, std::memory_order_release);
        futex(turn, FUTEX_WAKE, 1);
      }
    });
    for (auto _ : state) {
      turn->store(1, std::memory_order_release);
      futex(turn, FUTEX_WAKE, 1);
      wait_while(turn, 1);
    }
    turn->store(2, std::memory_order_release);
    futex(turn, FUTEX_WAKE, 1);
  }
  munmap(shared, 4096);
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

BENCHMARK(switch_fiber)->Name("switch/fiber")->UseRealTime();
BENCHMARK(switch_coroutine)->Name("switch/coroutine")->UseRealTime();
BENCHMARK(switch_pthread_condvar)->Name("switch/pthread_condvar")->UseRealTime();
BENCHMARK(switch_pipe_processes)->Name("switch/pipe_processes")->UseRealTime();
BENCHMARK(switch_futex_processes)->Name("switch/futex_processes")->UseRealTime();
BENCHMARK_MAIN();
