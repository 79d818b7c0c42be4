#include "stop.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

namespace httpbench::core {

volatile std::sig_atomic_t stop_flag = 0;

// ---- live_count ----

live_count::live_count() : wake_(make_eventfd()) {}

void live_count::closed() {
  int now = count_.fetch_sub(1) - 1;
  if (now < waiting_below_.load()) signal_eventfd(wake_.get());
}

bool live_count::wait_below(int limit, int stop_fd) {
  return wait_until_below(limit, stop_fd, nullptr);
}

bool live_count::drain(const grace_period& grace) { return wait_until_below(1, -1, &grace); }

bool live_count::wait_until_below(int limit, int stop_fd, const grace_period* grace) {
  // Announce first, then look: a closed() that comes after the look sees the announcement and
  // signals; one that came before it is seen by the look.
  waiting_below_.store(limit);
  bool below = false;
  for (;;) {
    if (count_.load() < limit) {
      below = true;
      break;
    }
    if (grace != nullptr && grace->over()) break;
    pollfd fds[2] = {{wake_.get(), POLLIN, 0}, {stop_fd, POLLIN, 0}};
    int n = ::poll(fds, stop_fd >= 0 ? 2 : 1, grace != nullptr ? grace->ms_left(1000) : -1);
    if (n > 0 && fds[0].revents != 0) clear_eventfd(wake_.get());
    if (n > 0 && stop_fd >= 0 && fds[1].revents != 0) break;
  }
  waiting_below_.store(INT_MIN);
  return below;
}

// ---- served_sockets ----

served_sockets::entry::entry(served_sockets& set, int fd) : set_(set), fd_(fd) {
  std::lock_guard lock(set_.mutex_);
  if (set_.ended_) ::shutdown(fd_, SHUT_RD);  // the stop came first
  next_ = set_.first_;
  if (next_ != nullptr) next_->prev_ = this;
  set_.first_ = this;
}

served_sockets::entry::~entry() {
  // Unlinked before the socket is closed, so end_reading() never touches a reused number.
  std::lock_guard lock(set_.mutex_);
  (prev_ != nullptr ? prev_->next_ : set_.first_) = next_;
  if (next_ != nullptr) next_->prev_ = prev_;
}

void served_sockets::end_reading() {
  std::lock_guard lock(mutex_);
  ended_ = true;
  for (entry* e = first_; e != nullptr; e = e->next_) ::shutdown(e->fd_, SHUT_RD);
}

}  // namespace httpbench::core
