#include "buffer_pool.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <new>

#include "hot.hpp"

namespace httpbench::core {
namespace {

// A per-thread list needs no lock. Bounded so a burst does not pin memory for ever.
constexpr size_t max_free_buffers = 256;

// Buffers move between a thread's list and the shared one this many at a time: one lock per
// batch, and after a move the thread has room (or buffers) for a whole batch before it needs
// the lock again, so a thread at the boundary does not take the lock on every call.
constexpr size_t transfer_batch = 32;

struct free_list {
  void* items[max_free_buffers];
  size_t count = 0;
  ~free_list() {
    while (count > 0) std::free(items[--count]);
  }
};
thread_local free_list pool;
size_t cache_limit = max_free_buffers;  // written before threads start, then only read

// The overflow list. `count` changes only under the mutex, but threads also read it without
// the mutex to skip the lock when the list cannot help (empty on acquire, full on release): a
// stale read costs at most one malloc or free that could have been avoided, or one lock taken
// for nothing. No destructor work: threads may still release buffers while the process exits.
struct shared_list {
  std::mutex mutex;
  std::atomic<size_t> count{0};
  void* items[shared_free_buffers_limit] = {};
};
constinit shared_list shared;

// Moves buffers from the end of the `n` at `items` to the shared list, as many as fit while it
// holds fewer than `limit`; returns how many moved (the caller forgets that many from its end).
size_t put_shared(void* const* items, size_t n, size_t limit) noexcept {
  if (shared.count.load(std::memory_order_relaxed) >= limit) return 0;
  std::lock_guard lock(shared.mutex);
  size_t have = shared.count.load(std::memory_order_relaxed);
  size_t k = have < limit ? std::min(n, limit - have) : 0;
  std::copy(items + (n - k), items + n, shared.items + have);
  shared.count.store(have + k, std::memory_order_relaxed);
  return k;
}

// Moves up to `n` buffers from the top of the shared list to `to`; returns how many.
size_t take_shared(void** to, size_t n) noexcept {
  if (shared.count.load(std::memory_order_relaxed) == 0) return 0;
  std::lock_guard lock(shared.mutex);
  size_t have = shared.count.load(std::memory_order_relaxed);
  size_t k = std::min(n, have);
  std::copy(shared.items + (have - k), shared.items + have, to);
  shared.count.store(have - k, std::memory_order_relaxed);
  return k;
}

// With the per-thread lists off, the last few buffers given back wait in these slots, each
// taken or given with one atomic exchange instead of the shared list's lock. A thread per
// connection takes and gives back two buffers per request (its input and its output): four
// lock round trips were ~480 instructions a request (scripts/footprint.py threadpool). The
// slots count against shared_free_buffers_without_cache.
constinit std::atomic<void*> quick[quick_free_buffers] = {};

void* take_quick() noexcept {
  for (auto& slot : quick)
    if (slot.load(std::memory_order_relaxed) != nullptr)
      if (void* p = slot.exchange(nullptr, std::memory_order_acquire)) return p;
  return nullptr;
}

bool put_quick(void* buffer) noexcept {
  for (auto& slot : quick) {
    void* empty = nullptr;
    if (slot.load(std::memory_order_relaxed) == nullptr &&
        slot.compare_exchange_strong(empty, buffer, std::memory_order_release,
                                     std::memory_order_relaxed))
      return true;
  }
  return false;
}

// Moves up to a batch from the top of `from` to the shared list, as far as it has room.
void spill(free_list& from) noexcept {
  size_t n = std::min(transfer_batch, from.count);
  from.count -= put_shared(from.items + (from.count - n), n, shared_free_buffers_limit);
}

// Moves up to a batch from the top of the shared list to the empty list `to`.
void refill(free_list& to) noexcept { to.count = take_shared(to.items, std::min(transfer_batch, cache_limit)); }

}  // namespace

HTTPBENCH_HOT char* acquire_buffer() {
  if (cache_limit > 0) {
    if (pool.count == 0) refill(pool);
    if (pool.count > 0) return static_cast<char*>(pool.items[--pool.count]);
  } else {
    // The per-thread lists off (a thread per connection): the thread's list is never touched,
    // since its first use would register its destructor for the thread's exit, once per
    // connection there. A quick slot, else one lock per buffer.
    if (void* reused = take_quick()) return static_cast<char*>(reused);
    void* reused = nullptr;
    if (take_shared(&reused, 1) == 1) return static_cast<char*>(reused);
  }
  void* p = std::malloc(buffer_size);
  if (p == nullptr) throw std::bad_alloc();
  return static_cast<char*>(p);
}

HTTPBENCH_HOT void release_buffer(char* buffer) noexcept {
  if (buffer == nullptr) return;
  if (cache_limit == 0) {
    if (put_quick(buffer)) return;
    void* given = buffer;
    if (put_shared(&given, 1, shared_free_buffers_without_cache - quick_free_buffers) == 0)
      std::free(buffer);
    return;
  }
  if (pool.count >= cache_limit) spill(pool);
  if (pool.count < cache_limit) pool.items[pool.count++] = buffer;
  else std::free(buffer);
}

void prime_buffer_pool(size_t buffers) {
  char* taken[max_free_buffers];
  size_t n = std::min(buffers, max_free_buffers);
  for (size_t i = 0; i < n; ++i) taken[i] = acquire_buffer();
  for (size_t i = n; i > 0; --i) release_buffer(taken[i - 1]);
}

void set_buffer_cache_limit(size_t buffers_per_thread) {
  cache_limit = buffers_per_thread < max_free_buffers ? buffers_per_thread : max_free_buffers;
}

}  // namespace httpbench::core
