// The thread set-up thread and threadpool share: a worker created with the attributes has the
// stop signals blocked (the stop is the acceptor's business), and its creator's mask is left
// as it was, with no blocking around pthread_create.
#include "core/worker_threads.hpp"

#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>

#include "test_server.hpp"

namespace httpbench::core {
namespace {

struct masks {
  sigset_t in_worker;
};

void* record_mask(void* arg) {
  pthread_sigmask(SIG_SETMASK, nullptr, &static_cast<masks*>(arg)->in_worker);
  return nullptr;
}

TEST(WorkerThreads, AWorkerStartsWithTheStopSignalsBlockedAndItsCreatorsOtherBlocksKept) {
  test_support::test_server server;
  server.config.stack_size = 256 * 1024;
  server_context ctx = server.context();

  sigset_t usr1, before;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &usr1, &before);  // a block of the creator's own

  pthread_attr_t attr;
  ASSERT_TRUE(worker_thread_attributes(ctx, attr, /*detached=*/false));
  masks m{};
  pthread_t tid;
  ASSERT_EQ(pthread_create(&tid, &attr, record_mask, &m), 0);
  pthread_join(tid, nullptr);
  pthread_attr_destroy(&attr);

  EXPECT_EQ(sigismember(&m.in_worker, SIGTERM), 1);
  EXPECT_EQ(sigismember(&m.in_worker, SIGINT), 1);
  EXPECT_EQ(sigismember(&m.in_worker, SIGUSR1), 1);
  sigset_t creator;
  pthread_sigmask(SIG_SETMASK, nullptr, &creator);
  EXPECT_EQ(sigismember(&creator, SIGTERM), 0) << "the creator must still take the stop";
  EXPECT_EQ(sigismember(&creator, SIGINT), 0);
  pthread_sigmask(SIG_SETMASK, &before, nullptr);
}

TEST(WorkerThreads, AStackBelowTheSystemsMinimumIsRefused) {
  test_support::test_server server;
  server.config.stack_size = 1024;
  server_context ctx = server.context();
  pthread_attr_t attr;
  testing::internal::CaptureStderr();
  EXPECT_FALSE(worker_thread_attributes(ctx, attr, /*detached=*/true));
  EXPECT_NE(testing::internal::GetCapturedStderr().find("--stack-size 1024"), std::string::npos);
}

}  // namespace
}  // namespace httpbench::core
