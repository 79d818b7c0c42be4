#include "buffer_pool.hpp"

#include <cstdlib>
#include <new>

namespace httpbench::core {
namespace {

// A per-thread list needs no lock. Bounded so a burst does not pin memory for ever.
constexpr size_t max_free_buffers = 256;

struct free_list {
  void* items[max_free_buffers];
  size_t count = 0;
  ~free_list() {
    while (count > 0) std::free(items[--count]);
  }
};
thread_local free_list pool;
size_t cache_limit = max_free_buffers;  // written before threads start, then only read

}  // namespace

char* acquire_buffer() {
  if (pool.count > 0) return static_cast<char*>(pool.items[--pool.count]);
  void* p = std::malloc(buffer_size);
  if (p == nullptr) throw std::bad_alloc();
  return static_cast<char*>(p);
}

void release_buffer(char* buffer) noexcept {
  if (buffer == nullptr) return;
  if (pool.count < cache_limit) pool.items[pool.count++] = buffer;
  else std::free(buffer);
}

void set_buffer_cache_limit(size_t buffers_per_thread) {
  cache_limit = buffers_per_thread < max_free_buffers ? buffers_per_thread : max_free_buffers;
}

}  // namespace httpbench::core
