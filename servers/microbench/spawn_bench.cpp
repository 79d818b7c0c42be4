// What it costs to start one unit of concurrency, run it to its end and reclaim it — the price a
// server pays per connection when it spawns per connection — and von Leitner's (2003) question
// "does it get slower as more are alive?": every primitive is measured with 0, 1,000, 4,000
// and 10,000 units of its own kind already alive (blocked, as idle connections' units would be).
//
// Processes: fork+_exit+waitpid from a small parent and from one with 1 GiB touched (fork copies
// the page tables: 262,144 of 4-KiB pages), vfork+_exit, posix_spawn of a static do-nothing
// program. The alive processes are children of a small helper forked at start, so a 1 GiB
// parent does not make each of them cost 2 MiB of page tables.
// Threads: pthread_create+join with glibc's default stack (RLIMIT_STACK, 8 MiB, recycled by
// glibc's stack cache) and with a 64 KiB stack.
// User-level: a Boost.Context fiber created, run to its end and destroyed, with Boost's default
// fixedsize_stack (malloc), protected_fixedsize_stack (mmap + guard page) and the core's
// stack_pool (reused stacks, no system call); a C++20 coroutine frame (heap) created, resumed to
// its end and destroyed. ST and Pth threads are in st_bench and pth_bench (separate programs,
// each library wants to own the process).
#include <benchmark/benchmark.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/context/fiber.hpp>
#include <boost/context/fixedsize_stack.hpp>
#include <boost/context/protected_fixedsize_stack.hpp>
#include <coroutine>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "bench_support.hpp"
#include "core/stack_pool.hpp"

extern char** environ;

namespace {

using namespace httpbench::microbench;
namespace bctx = boost::context;

/// Stack size of every small-stack unit (the measured ones and the 10,000 alive ones).
constexpr size_t small_stack = 64 * 1024;

// ---------------------------------------------------------------------------------- processes

/// A helper process, forked at start while we are small, that keeps N children alive (each
/// blocked in pause()). Commands are counts over a socket; the answer is the count reached and
/// an errno when fork failed (pid or memory limits).
class process_helper {
 public:
  static process_helper& instance() {
    static process_helper h;
    return h;
  }
  /// Makes the helper hold exactly `n` children; returns the count reached and the errno.
  std::pair<uint32_t, int> resize(uint32_t n) {
    if (write(helper_.channel(), &n, sizeof n) != sizeof n) die("process helper: write");
    uint32_t answer[2];
    if (read(helper_.channel(), answer, sizeof answer) != sizeof answer) die("process helper: read");
    return {answer[0], static_cast<int>(answer[1])};
  }

 private:
  process_helper() : helper_("process helper", serve) {}

  /// The helper's loop: a count in, that many children kept, (count, errno) out; on EOF (our
  /// destructor) it kills and reaps its children and exits.
  [[noreturn]] static void serve(int channel) {
    std::vector<pid_t> children;
    pid_t self = getpid();
    auto shrink_to = [&](size_t n) {
      for (size_t i = n; i < children.size(); ++i) kill(children[i], SIGKILL);
      for (size_t i = n; i < children.size(); ++i) waitpid(children[i], nullptr, 0);
      children.resize(std::min(n, children.size()));
    };
    for (;;) {
      uint32_t n;
      if (read(channel, &n, sizeof n) != sizeof n) {
        shrink_to(0);
        _exit(0);
      }
      uint32_t err = 0;
      shrink_to(n);
      while (children.size() < n) {
        pid_t pid = fork();
        if (pid < 0) {
          err = static_cast<uint32_t>(errno);
          break;
        }
        if (pid == 0) {
          prctl(PR_SET_PDEATHSIG, SIGKILL);
          if (getppid() != self) _exit(0);  // the helper died between fork and prctl
          for (;;) pause();
        }
        children.push_back(pid);
      }
      uint32_t answer[2] = {static_cast<uint32_t>(children.size()), err};
      if (write(channel, answer, sizeof answer) != sizeof answer) _exit(1);
    }
  }

  helper_process helper_;
};

class process_population final : public population {
 public:
  ~process_population() override { process_helper::instance().resize(0); }
  bool resize(size_t n, std::string& error) override {
    auto [reached, err] = process_helper::instance().resize(static_cast<uint32_t>(n));
    if (reached == n) return true;
    error = "only " + std::to_string(reached) + " of " + std::to_string(n) +
            " processes could be kept alive: fork: " + std::strerror(err) +
            " (pid_max, RLIMIT_NPROC or memory)";
    return false;
  }
};

/// 1 GiB of touched anonymous memory in 4-KiB pages, present only while fork_1gib_parent runs
/// (every other benchmark releases it first).
class ballast {
 public:
  static constexpr size_t size = size_t(1) << 30;
  static void ensure() {
    if (base_ != nullptr) return;
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) die("mmap 1 GiB");
    madvise(p, size, MADV_NOHUGEPAGE);  // a server's heap as von Leitner knew it: small pages
    for (size_t off = 0; off < size; off += 4096) static_cast<volatile char*>(p)[off] = 1;
    base_ = p;
  }
  static void release() {
    if (base_ != nullptr) munmap(base_, size);
    base_ = nullptr;
  }

 private:
  static inline void* base_ = nullptr;
};

void fork_exit_wait(benchmark::State& state) {
  for (auto _ : state) {
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    if (pid < 0) {
      state.SkipWithError("fork failed");
      break;
    }
    waitpid(pid, nullptr, 0);
  }
  state.SetItemsProcessed(state.iterations());
}

void spawn_fork(benchmark::State& state) {
  ballast::release();
  if (alive<process_population>(state)) fork_exit_wait(state);
}

void spawn_fork_1gib_parent(benchmark::State& state) {
  if (!alive<process_population>(state)) return;
  ballast::ensure();
  fork_exit_wait(state);
}

void spawn_vfork(benchmark::State& state) {
  ballast::release();
  if (!alive<process_population>(state)) return;
  for (auto _ : state) {
    pid_t pid = vfork();
    if (pid == 0) _exit(0);
    if (pid < 0) {
      state.SkipWithError("vfork failed");
      break;
    }
    waitpid(pid, nullptr, 0);
  }
  state.SetItemsProcessed(state.iterations());
}

/// spawn_exit, the statically linked do-nothing program built next to this one.
std::string spawn_exit_path() {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) die("readlink /proc/self/exe");
  std::string path(self, static_cast<size_t>(n));
  return path.substr(0, path.rfind('/') + 1) + "spawn_exit";
}

void spawn_posix_spawn(benchmark::State& state) {
  ballast::release();
  if (!alive<process_population>(state)) return;
  static const std::string path = spawn_exit_path();
  if (access(path.c_str(), X_OK) != 0) {
    state.SkipWithError(("cannot execute " + path).c_str());
    return;
  }
  char* argv[] = {const_cast<char*>(path.c_str()), nullptr};
  for (auto _ : state) {
    pid_t pid;
    if (posix_spawn(&pid, path.c_str(), nullptr, nullptr, argv, environ) != 0) {
      state.SkipWithError("posix_spawn failed");
      break;
    }
    waitpid(pid, nullptr, 0);
  }
  state.SetItemsProcessed(state.iterations());
}

// ------------------------------------------------------------------------------------ threads

void* return_at_once(void*) { return nullptr; }

/// Threads with 64 KiB stacks, each blocked on one futex (std::atomic::wait) until released.
class thread_population final : public population {
 public:
  ~thread_population() override { end_all(); }
  bool resize(size_t n, std::string& error) override {
    if (n < threads_.size()) end_all();
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, small_stack);
    int rc = 0;
    while (threads_.size() < n) {
      pthread_t t;
      if ((rc = pthread_create(&t, &attr, park, &release_)) != 0) break;
      threads_.push_back(t);
    }
    pthread_attr_destroy(&attr);
    if (rc == 0) return true;
    error = "only " + std::to_string(threads_.size()) + " of " + std::to_string(n) +
            " threads could be kept alive: pthread_create: " + std::strerror(rc);
    return false;
  }

 private:
  static void* park(void* arg) {
    auto* release = static_cast<std::atomic<bool>*>(arg);
    while (!release->load()) release->wait(false);
    return nullptr;
  }
  void end_all() {
    release_.store(true);
    release_.notify_all();
    for (pthread_t t : threads_) pthread_join(t, nullptr);
    threads_.clear();
    release_.store(false);
  }

  std::atomic<bool> release_{false};
  std::vector<pthread_t> threads_;
};

void create_join(benchmark::State& state, const pthread_attr_t* attr) {
  for (auto _ : state) {
    pthread_t t;
    if (pthread_create(&t, attr, return_at_once, nullptr) != 0) {
      state.SkipWithError("pthread_create failed");
      break;
    }
    pthread_join(t, nullptr);
  }
  state.SetItemsProcessed(state.iterations());
}

void spawn_pthread_default_stack(benchmark::State& state) {
  ballast::release();
  if (alive<thread_population>(state)) create_join(state, nullptr);
}

void spawn_pthread_64kib_stack(benchmark::State& state) {
  ballast::release();
  if (!alive<thread_population>(state)) return;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, small_stack);
  create_join(state, &attr);
  pthread_attr_destroy(&attr);
}

// ------------------------------------------------------------------------------------- fibers

/// Boost.Context's StackAllocator over the core's stack_pool (as the fiber backend uses it).
struct pooled_stack {
  httpbench::core::stack_pool* pool;
  bctx::stack_context allocate() {
    if (!pool->reserve()) throw std::bad_alloc();
    bctx::stack_context sc;
    sc.size = pool->stack_size();
    sc.sp = pool->take();
    return sc;
  }
  void deallocate(bctx::stack_context& sc) noexcept { pool->give(sc.sp); }
};

struct fixedsize_kind {
  static bctx::fixedsize_stack allocator() { return bctx::fixedsize_stack(small_stack); }
};
struct protected_kind {
  static bctx::protected_fixedsize_stack allocator() {
    return bctx::protected_fixedsize_stack(small_stack);
  }
};
struct pooled_kind {
  static pooled_stack allocator() {
    static httpbench::core::stack_pool pool(small_stack);
    return pooled_stack{&pool};
  }
};

/// Fibers suspended half-way (each has run once and switched back), holding their stacks.
template <class Kind>
class fiber_population final : public population {
 public:
  ~fiber_population() override { end_all(); }
  bool resize(size_t n, std::string& error) override {
    if (n < fibers_.size()) end_all();
    try {
      while (fibers_.size() < n) {
        bctx::fiber f(std::allocator_arg, Kind::allocator(), [](bctx::fiber&& caller) {
          caller = std::move(caller).resume();  // park here until ended
          return std::move(caller);
        });
        fibers_.push_back(std::move(f).resume());
      }
    } catch (const std::exception& e) {
      error = "only " + std::to_string(fibers_.size()) + " of " + std::to_string(n) +
              " fibers could be kept alive: " + e.what();
      return false;
    }
    return true;
  }

 private:
  void end_all() {
    for (auto& f : fibers_) f = std::move(f).resume();  // each runs to its end
    fibers_.clear();
  }
  std::vector<bctx::fiber> fibers_;
};

template <class Kind>
void spawn_fiber(benchmark::State& state) {
  ballast::release();
  if (!alive<fiber_population<Kind>>(state)) return;
  for (auto _ : state) {
    bctx::fiber f(std::allocator_arg, Kind::allocator(),
                  [](bctx::fiber&& caller) { return std::move(caller); });
    f = std::move(f).resume();  // runs to its end; the stack goes back to the allocator
    benchmark::DoNotOptimize(f);
  }
  state.SetItemsProcessed(state.iterations());
}

// --------------------------------------------------------------------------------- coroutines

manual_coroutine finish_at_once() { co_return; }
manual_coroutine park_once() { co_await std::suspend_always{}; }

class coroutine_population final : public population {
 public:
  ~coroutine_population() override { end_all(); }
  bool resize(size_t n, std::string&) override {
    if (n < frames_.size()) end_all();
    while (frames_.size() < n) {
      manual_coroutine t = park_once();
      t.handle.resume();  // now suspended in the middle, as a connection's coroutine would be
      frames_.push_back(t.handle);
    }
    return true;
  }

 private:
  void end_all() {
    for (auto h : frames_) h.destroy();
    frames_.clear();
  }
  std::vector<std::coroutine_handle<manual_coroutine::promise_type>> frames_;
};

void spawn_coroutine(benchmark::State& state) {
  ballast::release();
  if (!alive<coroutine_population>(state)) return;
  for (auto _ : state) {
    manual_coroutine t = finish_at_once();  // GCC allocates the frame on the heap (no elision here)
    t.handle.resume();
    benchmark::DoNotOptimize(t.handle);
    t.handle.destroy();
  }
  state.SetItemsProcessed(state.iterations());
}

struct primitive {
  const char* name;
  void (*fn)(benchmark::State&);
};

/// Kind by kind, alive counts ascending, so each population only grows until the kind changes.
void register_all() {
  const std::vector<std::vector<primitive>> kinds = {
      {{"spawn/fork", spawn_fork},
       {"spawn/vfork", spawn_vfork},
       {"spawn/posix_spawn", spawn_posix_spawn},
       {"spawn/fork_1gib_parent", spawn_fork_1gib_parent}},
      {{"spawn/pthread_default_stack", spawn_pthread_default_stack},
       {"spawn/pthread_64kib_stack", spawn_pthread_64kib_stack}},
      {{"spawn/fiber_fixedsize_stack", spawn_fiber<fixedsize_kind>}},
      {{"spawn/fiber_protected_stack", spawn_fiber<protected_kind>}},
      {{"spawn/fiber_pooled_stack", spawn_fiber<pooled_kind>}},
      {{"spawn/coroutine", spawn_coroutine}},
  };
  for (const auto& kind : kinds)
    for (int64_t count : alive_counts)
      for (const primitive& p : kind) register_alive(p.name, p.fn, count);
}

}  // namespace

int main(int argc, char** argv) {
  process_helper::instance();  // forked now, while this process is small
  register_all();
  int status = run_benchmarks(argc, argv);
  ballast::release();
  return status;
}
