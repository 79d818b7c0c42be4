// The fiber stack pool: whole pages, distinct stacks, most-recently-freed reused first.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <set>
#include <vector>

#include "core/stack_pool.hpp"

namespace httpbench::core {
namespace {

TEST(StackPool, SizeIsRoundedUpToWholePagesAndAtLeast16KiB) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  EXPECT_EQ(stack_pool(1).stack_size(), 16u * 1024);
  EXPECT_EQ(stack_pool(64 * 1024 + 1).stack_size(), 64u * 1024 + page);
  EXPECT_EQ(stack_pool(64 * 1024).stack_size(), 64u * 1024);
}

TEST(StackPool, StacksAreDistinctPageAlignedAndWritableThroughout) {
  stack_pool pool(32 * 1024);
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  std::vector<char*> tops;
  for (size_t i = 0; i < stack_pool::stacks_per_mapping + 3; ++i) {
    ASSERT_TRUE(pool.reserve());
    tops.push_back(static_cast<char*>(pool.take()));
  }
  EXPECT_EQ(pool.mapped(), 2 * stack_pool::stacks_per_mapping);  // grew in two batches
  std::set<char*> unique(tops.begin(), tops.end());
  EXPECT_EQ(unique.size(), tops.size());
  for (char* top : tops) {
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(top) % page, 0u);
    std::memset(top - pool.stack_size(), 0x5a, pool.stack_size());  // crashes if not mapped
  }
  // No two stacks overlap: each whole stack still holds its own fill after all are written.
  for (size_t i = 0; i < tops.size(); ++i) {
    std::memset(tops[i] - pool.stack_size(), static_cast<int>(i & 0x7f), pool.stack_size());
  }
  for (size_t i = 0; i < tops.size(); ++i) {
    EXPECT_EQ(*(tops[i] - 1), static_cast<char>(i & 0x7f));
    EXPECT_EQ(*(tops[i] - pool.stack_size()), static_cast<char>(i & 0x7f));
  }
  for (char* top : tops) pool.give(top);
}

TEST(StackPool, TheMostRecentlyFreedStackIsReusedFirst) {
  stack_pool pool(16 * 1024);
  ASSERT_TRUE(pool.reserve());
  void* a = pool.take();
  ASSERT_TRUE(pool.reserve());
  void* b = pool.take();
  pool.give(a);
  pool.give(b);
  EXPECT_EQ(pool.take(), b);
  EXPECT_EQ(pool.take(), a);
  pool.give(a);
  pool.give(b);
  EXPECT_EQ(pool.mapped(), stack_pool::stacks_per_mapping);  // reuse maps nothing new
}

}  // namespace
}  // namespace httpbench::core
