#pragma once
// Test helper: bytes that end exactly at a PROT_NONE page, so any read past the end crashes
// (picohttpparser's trick for catching over-reads without a sanitizer).
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>
#include <string_view>

class guarded_buffer {
 public:
  explicit guarded_buffer(std::string_view bytes) {
    page_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    size_t data_pages = (bytes.size() + page_ - 1) / page_ + 1;
    total_ = (data_pages + 1) * page_;
    base_ = static_cast<char*>(
        mmap(nullptr, total_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (base_ == MAP_FAILED) throw std::runtime_error("mmap");
    char* guard = base_ + data_pages * page_;
    mprotect(guard, page_, PROT_NONE);
    data_ = guard - bytes.size();
    std::memcpy(data_, bytes.data(), bytes.size());
    size_ = bytes.size();
  }
  ~guarded_buffer() { munmap(base_, total_); }
  guarded_buffer(const guarded_buffer&) = delete;
  guarded_buffer& operator=(const guarded_buffer&) = delete;
  std::string_view view() const { return {data_, size_}; }
  char* data() { return data_; }

 private:
  size_t page_, total_, size_;
  char *base_, *data_;
};
