#pragma once
/// Fixed-size stacks for user-level threads, carved from large anonymous mappings and reused.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <vector>

namespace httpbench::core {

/// Stacks of one size, carved `stacks_per_mapping` at a time from MAP_NORESERVE mappings
/// (untouched pages cost nothing) and never unmapped. The free list is LIFO, so the next
/// connection gets the stack whose pages are already resident and warm in the cache. No guard
/// pages: a guard is a second mapping per stack, and two mappings per fiber hit
/// vm.max_map_count (65,530) near 32,000 fibers. Not thread-safe: one pool per scheduler.
class stack_pool {
 public:
  static constexpr size_t stacks_per_mapping = 64;

  /// `size` is rounded up to whole pages, and to at least 16 KiB.
  explicit stack_pool(size_t size) {
    size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    size_ = (std::max<size_t>(size, 16 * 1024) + page - 1) / page * page;
  }
  stack_pool(const stack_pool&) = delete;
  stack_pool& operator=(const stack_pool&) = delete;

  /// Bytes per stack.
  size_t stack_size() const { return size_; }
  /// True when take() will succeed; false (errno from mmap) when no stack can be had.
  bool reserve() { return !free_.empty() || grow(); }
  /// The top (highest address) of a free stack; stacks grow down from it. Call reserve() first.
  void* take() {
    void* top = free_.back();
    free_.pop_back();
    return top;
  }
  /// Gives back a stack obtained from take().
  void give(void* top) { free_.push_back(top); }
  /// Stacks mapped so far (free or in use).
  size_t mapped() const { return mapped_; }

 private:
  bool grow() {
    void* base = ::mmap(nullptr, size_ * stacks_per_mapping, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) return false;
    // Pushed in reverse so that the lowest stack is taken first.
    for (size_t i = stacks_per_mapping; i > 0; --i)
      free_.push_back(static_cast<char*>(base) + i * size_);
    mapped_ += stacks_per_mapping;
    return true;
  }

  size_t size_;
  size_t mapped_ = 0;
  std::vector<void*> free_;
};

}  // namespace httpbench::core
