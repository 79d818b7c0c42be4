// The pool: per-thread free lists, the shared overflow list between them, and limit 0 (no
// per-thread lists: the shared list directly, keeping a handful).
// The pool is process-wide state, so each test first empties the shared list (see
// emptied_shared_list) and restores the default limit when it changes it.
#include "core/buffer_pool.hpp"

#include <gtest/gtest.h>
#include <malloc.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <utility>
#include <vector>

// Sanitizers replace malloc, so mallinfo2() says nothing; they keep their own count.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define HTTPBENCH_SANITIZER_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define HTTPBENCH_SANITIZER_MALLOC 1
#endif
#endif
#if defined(HTTPBENCH_SANITIZER_MALLOC)
// From <sanitizer/allocator_interface.h>, which GCC does not install.
extern "C" size_t __sanitizer_get_current_allocated_bytes();
#endif

using namespace httpbench::core;

namespace {

constexpr size_t default_cache_limit = 256;

// Bytes malloc has handed out and not taken back.
size_t allocated_bytes() {
#if defined(HTTPBENCH_SANITIZER_MALLOC)
  return __sanitizer_get_current_allocated_bytes();
#else
  struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
#endif
}

// How many buffers' worth of memory went back to malloc between two allocated_bytes() readings.
// Approximate: malloc counts its chunk headers too, and starting a thread allocates a few small
// things of its own; compare with a tolerance of a few buffers.
double buffers_freed(size_t before, size_t after) {
  return (double(before) - double(after)) / double(buffer_size);
}
constexpr double tolerance = 4;

// Runs `f` on a new thread (whose free list starts empty and is freed when it ends) and waits.
template <class F>
void on_new_thread(F f) {
  std::thread t(f);
  t.join();
}

struct cache_limit_set {
  explicit cache_limit_set(size_t limit) { set_buffer_cache_limit(limit); }
  ~cache_limit_set() { set_buffer_cache_limit(default_cache_limit); }
};

// Buffers taken out of the shared list so that a test starts with it empty; given back at the
// end of the test.
struct emptied_shared_list {
  std::vector<char*> held;
  emptied_shared_list() {
    // A new thread's list is empty, so each acquire refills from the shared list until it is
    // empty: after this many acquires it must be.
    on_new_thread([&] {
      for (size_t i = 0; i < shared_free_buffers_limit; ++i) held.push_back(acquire_buffer());
    });
    // The quick slots are taken only with the per-thread lists off.
    cache_limit_set no_cache(0);
    on_new_thread([&] {
      for (size_t i = 0; i < quick_free_buffers; ++i) held.push_back(acquire_buffer());
    });
  }
  ~emptied_shared_list() {
    for (char* b : held) release_buffer(b);
  }
};

TEST(BufferPool, AcquiredBuffersAreDistinctAndWritable) {
  std::vector<char*> buffers;
  for (int i = 0; i < 64; ++i) {
    buffers.push_back(acquire_buffer());
    std::memset(buffers.back(), i, buffer_size);
  }
  EXPECT_EQ(std::set<char*>(buffers.begin(), buffers.end()).size(), buffers.size());
  for (char* b : buffers) release_buffer(b);
  release_buffer(nullptr);  // ignored
}

TEST(BufferPool, BuffersReleasedByAnotherThreadAreReusedByTheAcquiringThread) {
  emptied_shared_list emptied;
  constexpr size_t n = 1024;
  std::vector<char*> acquired, reacquired;
  on_new_thread([&] {
    for (size_t i = 0; i < n; ++i) acquired.push_back(acquire_buffer());
    // The releasing thread keeps at most its cache limit and passes the rest on.
    on_new_thread([&] {
      for (char* b : acquired) release_buffer(b);
    });
    for (size_t i = 0; i < n - default_cache_limit; ++i) reacquired.push_back(acquire_buffer());
    for (char* b : reacquired) release_buffer(b);
  });
  std::set<char*> released(acquired.begin(), acquired.end());
  size_t reused = 0;
  for (char* b : reacquired) reused += released.count(b);
  EXPECT_EQ(reused, reacquired.size()) << "buffers newly allocated instead of reused";
  EXPECT_EQ(std::set<char*>(reacquired.begin(), reacquired.end()).size(), reacquired.size());
}

TEST(BufferPool, SharedListIsBoundedSoSurplusBuffersGoBackToMalloc) {
  emptied_shared_list emptied;
  constexpr size_t surplus = 512;
  constexpr size_t n = default_cache_limit + shared_free_buffers_limit + surplus;
  std::vector<char*> buffers;
  size_t before_release = 0, after_release = 0;
  on_new_thread([&] {
    for (size_t i = 0; i < n; ++i) buffers.push_back(acquire_buffer());
    before_release = allocated_bytes();
    // The releasing thread's own list is freed when it ends; the shared list keeps its limit.
    on_new_thread([&] {
      for (char* b : buffers) release_buffer(b);
    });
    after_release = allocated_bytes();
  });
  // The releasing thread's whole list and the surplus; the shared list keeps exactly its limit.
  EXPECT_NEAR(buffers_freed(before_release, after_release), double(default_cache_limit + surplus),
              tolerance);
}

TEST(BufferPool, LimitZeroKeepsOnlyTheSharedHandful) {
  emptied_shared_list emptied;
  cache_limit_set no_cache(0);
  constexpr size_t n = 200;
  size_t before_release = 0, after_release = 0;
  on_new_thread([&] {
    std::vector<char*> buffers;
    for (size_t i = 0; i < n; ++i) buffers.push_back(acquire_buffer());
    before_release = allocated_bytes();
    for (char* b : buffers) release_buffer(b);
    after_release = allocated_bytes();
  });
  // No per-thread list: all but the shared list's handful went back to malloc at once, while
  // the thread was still running.
  EXPECT_NEAR(buffers_freed(before_release, after_release),
              double(n - shared_free_buffers_without_cache), tolerance);
  // The handful is still there for any thread.
  on_new_thread([&] {
    size_t before = allocated_bytes();
    std::vector<char*> again;
    for (size_t i = 0; i < shared_free_buffers_without_cache; ++i) again.push_back(acquire_buffer());
    EXPECT_NEAR(buffers_freed(allocated_bytes(), before), 0, tolerance) << "malloc'd instead of reused";
    for (char* b : again) release_buffer(b);
  });
}

TEST(BufferPool, LimitZeroKeepsExactlyTheHandfulQuickSlotsIncluded) {
  emptied_shared_list emptied;
  cache_limit_set no_cache(0);
  on_new_thread([] {
    std::vector<char*> buffers;
    for (size_t i = 0; i < 100; ++i) buffers.push_back(acquire_buffer());
    for (char* b : buffers) release_buffer(b);
  });
  on_new_thread([] {
    // The handful (slots and list together) comes back without malloc; the next one is new.
    std::vector<char*> again;
    size_t before = allocated_bytes();
    for (size_t i = 0; i < shared_free_buffers_without_cache; ++i)
      again.push_back(acquire_buffer());
    EXPECT_NEAR(buffers_freed(before, allocated_bytes()), 0, 0.5) << "malloc'd instead of reused";
    before = allocated_bytes();
    again.push_back(acquire_buffer());
    EXPECT_NEAR(buffers_freed(before, allocated_bytes()), -1, 0.5)
        << "more than the handful was kept";
    for (char* b : again) release_buffer(b);
  });
}

TEST(BufferPool, LimitZeroHandsTheBufferJustReleasedToTheNextThread) {
  emptied_shared_list emptied;
  cache_limit_set no_cache(0);
  char* released = nullptr;
  char* taken = nullptr;
  on_new_thread([&] {
    released = acquire_buffer();
    release_buffer(released);
  });
  on_new_thread([&] {
    size_t before = allocated_bytes();
    taken = acquire_buffer();
    EXPECT_NEAR(buffers_freed(before, allocated_bytes()), 0, 0.5) << "malloc'd instead of reused";
    release_buffer(taken);
  });
  EXPECT_EQ(taken, released);
}

// A forking parent primes its list once; each child (here: the same thread afterwards) then
// takes those buffers without calling malloc.
TEST(BufferPool, PrimedBuffersAreTheNextOnesAcquired) {
  emptied_shared_list emptied;
  on_new_thread([] {
    prime_buffer_pool(2);
    char* first = acquire_buffer();
    char* second = acquire_buffer();
    size_t before = allocated_bytes();
    release_buffer(second);
    release_buffer(first);
    prime_buffer_pool(2);  // both are in the list already: no malloc
    EXPECT_NEAR(buffers_freed(before, allocated_bytes()), 0, 0.5);
    EXPECT_EQ(acquire_buffer(), first);
    EXPECT_EQ(acquire_buffer(), second);
    release_buffer(second);
    release_buffer(first);
  });
}

// Threads acquire buffers and hand most of them to other threads to release, as the pipeline
// backend's stages do. Each buffer carries its owner's tag at both ends; a buffer handed out
// twice at once would have its tag overwritten by the second owner. Run under ASan as well:
// a buffer freed while still in a list would show up as a use after free.
TEST(BufferPool, ConcurrentCrossThreadAcquireAndReleaseNeverShareABuffer) {
  for (size_t limit : {size_t(0), size_t(4), default_cache_limit}) {
    SCOPED_TRACE(limit);
    cache_limit_set cache(limit);
    constexpr int threads = 4;
    constexpr int rounds = 2000;
    std::mutex exchange_mutex;
    std::vector<std::pair<char*, uint64_t>> exchange;  // (buffer, tag) waiting for a releaser
    std::atomic<int> corrupted{0};
    auto check_and_release = [&](char* b, uint64_t tag) {
      uint64_t head, tail;
      std::memcpy(&head, b, sizeof head);
      std::memcpy(&tail, b + buffer_size - sizeof tail, sizeof tail);
      if (head != tag || tail != tag) corrupted.fetch_add(1);
      release_buffer(b);
    };
    auto work = [&](int index) {
      std::minstd_rand random(static_cast<unsigned>(index + 1));
      std::vector<std::pair<char*, uint64_t>> mine, theirs;
      uint64_t sequence = 0;
      for (int round = 0; round < rounds; ++round) {
        size_t count = 1 + random() % 48;
        for (size_t i = 0; i < count; ++i) {
          char* b = acquire_buffer();
          uint64_t tag = (uint64_t(index) << 48) | ++sequence;
          std::memcpy(b, &tag, sizeof tag);
          std::memcpy(b + buffer_size - sizeof tag, &tag, sizeof tag);
          mine.emplace_back(b, tag);
        }
        // Take what the others handed on; keep every fourth of ours, hand on the rest.
        {
          std::lock_guard lock(exchange_mutex);
          theirs.swap(exchange);
          for (size_t i = 0; i < mine.size(); ++i)
            if (i % 4 != 0) exchange.push_back(mine[i]);
        }
        for (size_t i = 0; i < mine.size(); i += 4)
          check_and_release(mine[i].first, mine[i].second);
        for (auto& [b, tag] : theirs) check_and_release(b, tag);
        mine.clear();
        theirs.clear();
      }
    };
    std::vector<std::thread> running;
    for (int i = 0; i < threads; ++i) running.emplace_back(work, i);
    for (std::thread& t : running) t.join();
    for (auto& [b, tag] : exchange) check_and_release(b, tag);
    EXPECT_EQ(corrupted.load(), 0);
  }
}

}  // namespace
