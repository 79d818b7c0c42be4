// State Threads (libst, the library of Kerneis & Chroboczek's fastest toy server): a round trip
// between two ST threads, and st_thread_create + st_thread_join with 0, 1,000, 4,000 and 10,000
// ST threads alive (blocked on a condition variable, as idle connections' threads would be).
// A program of its own because ST owns the process: st_init() turns main() into an ST thread.
#include <benchmark/benchmark.h>
#include <st.h>

#include <string>
#include <vector>

#include "bench_support.hpp"

namespace {

using namespace httpbench::microbench;

constexpr int small_stack = 64 * 1024;

/// ST threads parked on one condition variable until released.
class st_population final : public population {
 public:
  st_population() : park_(st_cond_new()), all_parked_(st_cond_new()) {}
  ~st_population() override {
    end_all();
    st_cond_destroy(park_);
    st_cond_destroy(all_parked_);
  }
  bool resize(size_t n, std::string& error) override {
    if (n < threads_.size()) end_all();
    target_ = n;
    while (threads_.size() < n) {
      st_thread_t t = st_thread_create(park, this, 1, small_stack);
      if (t == nullptr) {
        error = "only " + std::to_string(threads_.size()) + " of " + std::to_string(n) +
                " ST threads could be created: " + std::strerror(errno);
        return false;
      }
      threads_.push_back(t);
    }
    // New threads only run when we block: wait until every one has parked.
    while (parked_ < n) st_cond_wait(all_parked_);
    return true;
  }

 private:
  static void* park(void* arg) {
    auto* self = static_cast<st_population*>(arg);
    if (++self->parked_ == self->target_) st_cond_signal(self->all_parked_);
    while (!self->release_) st_cond_wait(self->park_);
    return nullptr;
  }
  void end_all() {
    release_ = true;
    st_cond_broadcast(park_);
    for (st_thread_t t : threads_) st_thread_join(t, nullptr);
    threads_.clear();
    parked_ = 0;
    release_ = false;
  }

  st_cond_t park_;
  st_cond_t all_parked_;
  std::vector<st_thread_t> threads_;
  size_t parked_ = 0;
  size_t target_ = 0;
  bool release_ = false;
};

void* return_at_once(void*) { return nullptr; }

void spawn_st_thread(benchmark::State& state) {
  if (!alive<st_population>(state)) return;
  for (auto _ : state) {
    st_thread_t t = st_thread_create(return_at_once, nullptr, 1, small_stack);
    if (t == nullptr) {
      state.SkipWithError("st_thread_create failed");
      break;
    }
    st_thread_join(t, nullptr);  // blocks us, so the new thread runs to its end
  }
  state.SetItemsProcessed(state.iterations());
}

/// Main and a partner ST thread signal each other's condition variable in turn. ST threads are
/// never preempted, so a signal cannot be lost between the check and the wait.
struct ping_pong {
  st_cond_t to_partner = st_cond_new();
  st_cond_t to_main = st_cond_new();
  bool stop = false;

  static void* partner(void* arg) {
    auto* p = static_cast<ping_pong*>(arg);
    for (;;) {
      st_cond_wait(p->to_partner);
      if (p->stop) return nullptr;
      st_cond_signal(p->to_main);
    }
  }
};

void switch_st(benchmark::State& state) {
  ping_pong p;
  st_thread_t partner = st_thread_create(ping_pong::partner, &p, 1, small_stack);
  if (partner == nullptr) {
    state.SkipWithError("st_thread_create failed");
    return;
  }
  st_usleep(0);  // lets the partner run until it waits
  for (auto _ : state) {
    st_cond_signal(p.to_partner);
    st_cond_wait(p.to_main);
  }
  p.stop = true;
  st_cond_signal(p.to_partner);
  st_thread_join(partner, nullptr);
  st_cond_destroy(p.to_partner);
  st_cond_destroy(p.to_main);
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

int main(int argc, char** argv) {
  // Debian's libst is built without epoll; its default select() would also lower
  // RLIMIT_NOFILE to FD_SETSIZE.
  if (st_set_eventsys(ST_EVENTSYS_POLL) < 0 || st_init() < 0) die("st_init (poll event system)");
  benchmark::RegisterBenchmark("switch/st", switch_st)->UseRealTime();
  for (int64_t count : alive_counts) register_alive("spawn/st_thread", spawn_st_thread, count);
  return run_benchmarks(argc, argv);
}
