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

}  // namespace

char* acquire_buffer() {
  if (pool.count > 0) return static_cast<char*>(pool.items[--pool.count]);
  void* p = std::malloc(buffer_size);
  if (p == nullptr) throw std::bad_alloc();
  return static_cast<char*>(p);
}

void release_buffer(char* buffer) noexcept {
  if (buffer == nullptr) return;
  if (pool.count < max_free_buffers) pool.items[pool.count++] = buffer;
  else std::free(buffer);
}

}  // namespace httpbench::core
