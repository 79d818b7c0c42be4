// GNU Pth: a round trip between two Pth threads, and pth_spawn + pth_join with 0, 1,000 and
// 4,000 Pth threads alive (blocked on a condition variable). Pth's scheduler visits every
// waiting thread's events on each pass (O(threads)) and polls descriptors with select() when
// threads wait, so both numbers are expected to be far above ST's; this program measures by
// how much. Not 10,000 alive: each new thread must run once to park, and every run costs a pass
// over all the threads already waiting, so parking N threads is O(N²) — about 50 s for 10,000
// here (8 s for 4,000), while one spawn among 4,000 already takes ~12 ms. A program of its own because Pth owns the process: pth_init() turns main() into a
// Pth thread.
#include <benchmark/benchmark.h>
#include <pth.h>

#include <string>
#include <vector>

#include "bench_support.hpp"

namespace {

using namespace httpbench::microbench;

constexpr unsigned int small_stack = 64 * 1024;

pth_attr_t joinable_small_stack() {
  pth_attr_t attr = pth_attr_new();
  pth_attr_set(attr, PTH_ATTR_JOINABLE, TRUE);
  pth_attr_set(attr, PTH_ATTR_STACK_SIZE, small_stack);
  return attr;
}

/// Pth threads parked on one condition variable until released. Pth threads are never
/// preempted; the mutex is there because pth_cond_await wants one.
class pth_population final : public population {
 public:
  pth_population() : attr_(joinable_small_stack()) {}
  ~pth_population() override {
    end_all();
    pth_attr_destroy(attr_);
  }
  bool resize(size_t n, std::string& error) override {
    if (n < threads_.size()) end_all();
    target_ = n;
    while (threads_.size() < n) {
      pth_t t = pth_spawn(attr_, park, this);
      if (t == nullptr) {
        error = "only " + std::to_string(threads_.size()) + " of " + std::to_string(n) +
                " Pth threads could be created: " + std::strerror(errno);
        return false;
      }
      threads_.push_back(t);
    }
    pth_mutex_acquire(&lock_, FALSE, nullptr);
    while (parked_ < n) pth_cond_await(&all_parked_, &lock_, nullptr);
    pth_mutex_release(&lock_);
    return true;
  }

 private:
  static void* park(void* arg) {
    auto* self = static_cast<pth_population*>(arg);
    pth_mutex_acquire(&self->lock_, FALSE, nullptr);
    if (++self->parked_ == self->target_) pth_cond_notify(&self->all_parked_, FALSE);
    while (!self->release_) pth_cond_await(&self->park_, &self->lock_, nullptr);
    pth_mutex_release(&self->lock_);
    return nullptr;
  }
  void end_all() {
    pth_mutex_acquire(&lock_, FALSE, nullptr);
    release_ = true;
    pth_cond_notify(&park_, TRUE);
    pth_mutex_release(&lock_);
    for (pth_t t : threads_) pth_join(t, nullptr);
    threads_.clear();
    parked_ = 0;
    release_ = false;
  }

  pth_attr_t attr_;
  pth_mutex_t lock_ = PTH_MUTEX_INIT;
  pth_cond_t park_ = PTH_COND_INIT;
  pth_cond_t all_parked_ = PTH_COND_INIT;
  std::vector<pth_t> threads_;
  size_t parked_ = 0;
  size_t target_ = 0;
  bool release_ = false;
};

void* return_at_once(void*) { return nullptr; }

void spawn_pth(benchmark::State& state) {
  if (!alive<pth_population>(state)) return;
  pth_attr_t attr = joinable_small_stack();
  for (auto _ : state) {
    pth_t t = pth_spawn(attr, return_at_once, nullptr);
    if (t == nullptr) {
      state.SkipWithError("pth_spawn failed");
      break;
    }
    pth_join(t, nullptr);
  }
  pth_attr_destroy(attr);
  state.SetItemsProcessed(state.iterations());
}

/// Main and a partner Pth thread hand a turn back and forth through two condition variables.
struct ping_pong {
  pth_mutex_t lock = PTH_MUTEX_INIT;
  pth_cond_t to_partner = PTH_COND_INIT;
  pth_cond_t to_main = PTH_COND_INIT;
  enum { main_turn, partner_turn, stop } turn = main_turn;

  static void* partner(void* arg) {
    auto* p = static_cast<ping_pong*>(arg);
    pth_mutex_acquire(&p->lock, FALSE, nullptr);
    for (;;) {
      while (p->turn == main_turn) pth_cond_await(&p->to_partner, &p->lock, nullptr);
      if (p->turn == stop) break;
      p->turn = main_turn;
      pth_cond_notify(&p->to_main, FALSE);
    }
    pth_mutex_release(&p->lock);
    return nullptr;
  }
};

void switch_pth(benchmark::State& state) {
  ping_pong p;
  pth_attr_t attr = joinable_small_stack();
  pth_t partner = pth_spawn(attr, ping_pong::partner, &p);
  pth_attr_destroy(attr);
  if (partner == nullptr) {
    state.SkipWithError("pth_spawn failed");
    return;
  }
  pth_mutex_acquire(&p.lock, FALSE, nullptr);
  for (auto _ : state) {
    p.turn = ping_pong::partner_turn;
    pth_cond_notify(&p.to_partner, FALSE);
    while (p.turn != ping_pong::main_turn) pth_cond_await(&p.to_main, &p.lock, nullptr);
  }
  p.turn = ping_pong::stop;
  pth_cond_notify(&p.to_partner, FALSE);
  pth_mutex_release(&p.lock);
  pth_join(partner, nullptr);
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

int main(int argc, char** argv) {
  if (!pth_init()) die("pth_init");
  benchmark::RegisterBenchmark("switch/pth", switch_pth)->UseRealTime();
  for (int64_t count : {0, 1000, 4000}) register_alive("spawn/pth_thread", spawn_pth, count);
  int status = run_benchmarks(argc, argv);
  pth_kill();
  return status;
}
