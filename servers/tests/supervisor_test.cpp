// The supervisor of child processes, run in the test process: pool children restarted with
// back-off, per-slot shared counters, the parent-death signal, a crashed one-shot child counted
// as an error, and the stop: SIGTERM, then SIGKILL after the grace period.
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <future>
#include <thread>

#include "core/connection.hpp"
#include "core/supervisor.hpp"
#include "test_server.hpp"

namespace httpbench::core {
namespace {

using namespace test_support;
using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// In a child: wait to be signalled.
int sleep_until_signalled() {
  for (;;) ::pause();
}

// Reaps and refills until `done()` or `ms` pass.
template <class Done>
bool supervise_until(supervisor& s, Done done, int ms = 3000) {
  auto give_up = clock::now() + milliseconds(ms);
  while (!done() && clock::now() < give_up) {
    std::this_thread::sleep_for(milliseconds(10));
    s.reap();
    s.refill();
  }
  return done();
}

class Supervisor : public ::testing::Test {
 protected:
  void SetUp() override { server_.config.grace_ms = 300; }
  test_server server_;
  server_context ctx_ = server_.context();
};

TEST_F(Supervisor, PoolChildrenShareCountersWithTheParentAndKnowTheirDeathSignal) {
  supervisor s(ctx_, SIGTERM);
  ASSERT_TRUE(s.start_pool(2, [&](size_t slot) {
    int death = 0;
    ::prctl(PR_GET_PDEATHSIG, &death);
    s.slot_counter(slot).store(100 + slot * 10 + static_cast<uint64_t>(death));
    return sleep_until_signalled();
  }));
  EXPECT_EQ(s.live(), 2u);
  auto filled = [&] { return s.slot_counter(0).load() != 0 && s.slot_counter(1).load() != 0; };
  ASSERT_TRUE(supervise_until(s, filled));
  EXPECT_EQ(s.slot_counter(0).load(), 100u + SIGTERM);
  EXPECT_EQ(s.slot_counter(1).load(), 110u + SIGTERM);
  s.stop();
  EXPECT_EQ(s.live(), 0u);
}

TEST_F(Supervisor, APoolChildThatDiesIsRestartedInItsSlot) {
  supervisor s(ctx_, SIGKILL);
  ASSERT_TRUE(s.start_pool(1, [&](size_t slot) {
    s.slot_counter(slot).store(static_cast<uint64_t>(::getpid()));
    return sleep_until_signalled();
  }));
  ASSERT_TRUE(supervise_until(s, [&] { return s.slot_counter(0).load() != 0; }));
  auto first = static_cast<pid_t>(s.slot_counter(0).load());
  ASSERT_EQ(::kill(first, SIGKILL), 0);  // a child of this test
  auto replaced = [&] {
    auto pid = static_cast<pid_t>(s.slot_counter(0).load());
    return pid != first && s.live() == 1;
  };
  ASSERT_TRUE(supervise_until(s, replaced));
  EXPECT_EQ(s.restarts(), 1u);
  s.stop();
  EXPECT_EQ(s.restarts(), 1u) << "children ended by stop() are not restarted";
  EXPECT_EQ(s.live(), 0u);
}

TEST_F(Supervisor, AChildThatKeepsDyingYoungIsRestartedAfterGrowingPauses) {
  supervisor s(ctx_, SIGKILL);
  ASSERT_TRUE(s.start_pool(1, [](size_t) { return 3; }));  // dies at once, every time
  auto began = clock::now();
  ASSERT_TRUE(supervise_until(s, [&] { return s.restarts() >= 3; }));
  // Pauses of 0.1 s and 0.2 s before the second and third restarts: it does not spin.
  EXPECT_GE(clock::now() - began, milliseconds(250));
  EXPECT_GT(s.refill(), 0) << "the next restart should be pending after a pause";
  s.stop();
}

TEST_F(Supervisor, AOneShotChildThatCrashesCountsACutConnectionAndOneThatExitsDoesNot) {
  supervisor s(ctx_, SIGTERM);
  ASSERT_TRUE(s.spawn_one([] { return 0; }));
  ASSERT_TRUE(s.spawn_one([]() -> int { std::abort(); }));
  EXPECT_EQ(s.live(), 2u);
  ASSERT_TRUE(supervise_until(s, [&] { return s.live() == 0; }));
  EXPECT_EQ(server_.stats.errors.load(), 1u);
  EXPECT_EQ(server_.stats.errors_cut.load(), 1u);
  s.stop();
}

TEST_F(Supervisor, StopEndsChildrenWithSigtermAndKillsThoseThatIgnoreItAfterTheGrace) {
  supervisor polite(ctx_, SIGTERM);
  ASSERT_TRUE(polite.spawn_one([] { return sleep_until_signalled(); }));
  std::this_thread::sleep_for(milliseconds(50));
  auto start = clock::now();
  polite.stop();
  EXPECT_LT(clock::now() - start, milliseconds(250)) << "a child ending at SIGTERM was waited for";

  supervisor stubborn(ctx_, SIGTERM);
  ASSERT_TRUE(stubborn.spawn_one([] {
    std::signal(SIGTERM, SIG_IGN);
    return sleep_until_signalled();
  }));
  std::this_thread::sleep_for(milliseconds(50));
  start = clock::now();
  stubborn.stop();
  auto took = clock::now() - start;
  EXPECT_GE(took, milliseconds(300));
  EXPECT_LT(took, milliseconds(2000));
  EXPECT_EQ(stubborn.live(), 0u);
  // A child per connection that dies of a signal, ours included, never closed its connection:
  // each is one connection cut (fork's children handle SIGTERM and finish instead).
  EXPECT_EQ(server_.stats.errors_cut.load(), 2u);
}

TEST_F(Supervisor, ConnectionsHeldByAPoolChildThatDiesAreCountedAsCut) {
  supervisor s(ctx_, SIGTERM);
  ASSERT_TRUE(s.start_pool(1, [&](size_t slot) {
    if (s.slot_counter(slot).load() != 0) return sleep_until_signalled();  // the restarted one
    // Two connections open in this worker (an idle one counts too: its state dies with it).
    connection a(ctx_.content, ctx_.stats, ctx_.limits()), b(ctx_.content, ctx_.stats, ctx_.limits());
    s.slot_counter(slot).store(1);
    ::raise(SIGKILL);
    return 0;
  }));
  ASSERT_TRUE(supervise_until(s, [&] { return s.restarts() >= 1; }));
  EXPECT_EQ(server_.stats.errors_cut.load(), 2u);
  EXPECT_EQ(server_.stats.errors.load(), 2u);
  EXPECT_EQ(server_.stats.closed.load(), 2u);  // accounted: the exit-time count finds none
  s.stop();
  EXPECT_EQ(server_.stats.errors_cut.load(), 2u);  // the restarted worker held nothing
}

TEST_F(Supervisor, SuperviseReturnsAtTheStopAndExitsAreSeenOnTheExitFd) {
  supervisor s(ctx_, SIGTERM);
  ASSERT_TRUE(s.start_pool(1, [](size_t) { return sleep_until_signalled(); }));
  auto stopper = std::async(std::launch::async, [&] {
    std::this_thread::sleep_for(milliseconds(100));
    server_.request_stop();
  });
  s.supervise();
  s.stop();
  EXPECT_EQ(s.live(), 0u);
}

TEST_F(Supervisor, ManyOneShotChildrenAreAllReapedAndStopFindsNoneLeft) {
  // More than the page the list starts with (1,024 pids), fewer alive at once.
  supervisor s(ctx_, SIGTERM);
  for (int i = 0; i < 1500; ++i) {
    ASSERT_TRUE(s.spawn_one([] { return 0; }));
    if (i % 100 == 99) s.reap();
  }
  ASSERT_TRUE(supervise_until(s, [&] { return s.live() == 0; }));
  EXPECT_EQ(server_.stats.errors.load(), 0u);
  s.stop();
  EXPECT_EQ(s.live(), 0u);
}

// The parent's bookkeeping of its children is not shared with them (no copy-on-write fault when
// the parent writes it while a child lives): a child does not have that memory at all.
TEST(UnforkedAllocator, AForkedChildDoesNotInheritTheMemory) {
  unforked_allocator<int> alloc;
  int* p = alloc.allocate(16);
  p[0] = 42;
  pid_t pid = ::fork();
  if (pid == 0) {
    // Reading it would crash; look it up in the child's own map instead.
    FILE* maps = std::fopen("/proc/self/maps", "r");
    unsigned long lo, hi;
    char line[512];
    bool mapped = false;
    while (std::fgets(line, sizeof line, maps))
      if (std::sscanf(line, "%lx-%lx", &lo, &hi) == 2 && reinterpret_cast<unsigned long>(p) >= lo &&
          reinterpret_cast<unsigned long>(p) < hi)
        mapped = true;
    _exit(mapped ? 1 : 0);
  }
  ASSERT_GT(pid, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the child had the memory";
  EXPECT_EQ(p[0], 42);  // the parent still has it
  alloc.deallocate(p, 16);
}

}  // namespace
}  // namespace httpbench::core
