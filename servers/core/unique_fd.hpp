#pragma once
/// Owned file descriptors: every descriptor the core and the backends open belongs to exactly
/// one unique_fd (or to a library object that closes it, such as an ST netfd), so every close is
/// automatic and none is forgotten or done twice.
#include <unistd.h>

#include <utility>

namespace httpbench::core {

/// Owns one file descriptor and closes it on destruction. Move-only; -1 means "none".
class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& other) noexcept : fd_(other.release()) {}
  unique_fd& operator=(unique_fd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }

  /// The descriptor, still owned by this object (-1 when none).
  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return valid(); }
  /// Closes the current descriptor (if any) and takes ownership of `fd`.
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }
  /// Gives up ownership without closing: the caller now owns the returned descriptor.
  [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }

 private:
  int fd_ = -1;
};

/// A new non-blocking, close-on-exec eventfd (invalid, errno set, on failure).
unique_fd make_eventfd();

/// Makes the eventfd `fd` readable (adds 1 to its counter), waking a thread asleep on it in
/// epoll or poll. Errors are ignored: the only one possible on a non-blocking eventfd is a
/// counter about to overflow, which is readable already. Async-signal-safe.
void signal_eventfd(int fd) noexcept;

/// Makes the non-blocking eventfd `fd` unreadable again (reads and discards its counter).
void clear_eventfd(int fd) noexcept;

}  // namespace httpbench::core
