#include "unique_fd.hpp"

#include <sys/eventfd.h>

#include <cstdint>

namespace httpbench::core {

unique_fd make_eventfd() { return unique_fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)); }

void signal_eventfd(int fd) noexcept {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(fd, &one, sizeof one);
}

void clear_eventfd(int fd) noexcept {
  uint64_t value;
  [[maybe_unused]] ssize_t n = ::read(fd, &value, sizeof value);
}

}  // namespace httpbench::core
