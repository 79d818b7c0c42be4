#include "handoff_queue.hpp"

#include <unistd.h>

namespace httpbench::core {

void signal_eventfd(int fd) noexcept {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(fd, &one, sizeof one);
}

void clear_eventfd(int fd) noexcept {
  uint64_t value;
  [[maybe_unused]] ssize_t n = ::read(fd, &value, sizeof value);
}

}  // namespace httpbench::core
