#include "listener.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "stats.hpp"

namespace httpbench::core {

unique_fd open_listener(const listen_options& options, std::string& error) {
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
  std::string host = options.bind;
  if (host == "localhost") host = "127.0.0.1";
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(options.port);
    addr_len = sizeof *v4;
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(options.port);
    addr_len = sizeof *v6;
  } else {
    error = "--bind " + options.bind + " is not an IPv4 or IPv6 address";
    return {};
  }
  unique_fd fd(::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) {
    error = std::string("socket: ") + std::strerror(errno);
    return {};
  }
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  set_nodelay(fd.get());  // every accepted socket inherits it: no setsockopt per connection
  if (options.reuseport) ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (options.defer_accept_s > 0 &&
      ::setsockopt(fd.get(), IPPROTO_TCP, TCP_DEFER_ACCEPT, &options.defer_accept_s,
                   sizeof options.defer_accept_s) != 0) {
    error = std::string("setsockopt TCP_DEFER_ACCEPT: ") + std::strerror(errno);
    return {};
  }
  std::string where = (addr.ss_family == AF_INET6 ? "[" + host + "]" : host) + ":" +
                      std::to_string(options.port);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), addr_len) != 0) {
    error = "cannot bind " + where + ": " + std::strerror(errno);
    return {};
  }
  if (::listen(fd.get(), options.backlog) != 0) {
    error = "cannot listen on " + where + ": " + std::strerror(errno);
    return {};
  }
  return fd;
}

std::string local_address(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "?";
  char host[INET6_ADDRSTRLEN] = "?";
  if (addr.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    std::string out = "[";
    out += host;
    out += "]:";
    out += std::to_string(ntohs(a->sin6_port));
    return out;
  }
  auto* a = reinterpret_cast<sockaddr_in*>(&addr);
  inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
  return std::string(host) + ":" + std::to_string(ntohs(a->sin_port));
}

uint16_t local_port(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  return ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                                          : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
}

bool set_nonblocking(int fd, bool nonblocking) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return false;
  flags = nonblocking ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
  return ::fcntl(fd, F_SETFL, flags) == 0;
}

void set_nodelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

acceptor::acceptor(int listen_fd, server_stats* stats)
    : listen_fd_(listen_fd), stats_(stats), spare_(::open("/dev/null", O_RDONLY | O_CLOEXEC)) {}

accept_status acceptor::accept_one(unique_fd& fd, bool nonblocking) {
  for (;;) {
    fd.reset(::accept4(listen_fd_, nullptr, nullptr,
                       SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0)));
    if (fd) return accept_status::accepted;  // TCP_NODELAY inherited from the listener
    switch (errno) {
      case EINTR: continue;
      case EAGAIN: return accept_status::again;
      // The peer gave up while queued: not our error, try the next one.
      case ECONNABORTED: case EPROTO: continue;
      case EMFILE: case ENFILE:
        // Out of descriptors: free the spare, accept and close the connection (the client
        // sees it closed rather than hanging), take the spare back.
        if (spare_) {
          spare_.reset();
          unique_fd victim(::accept(listen_fd_, nullptr, nullptr));
          if (victim && stats_ != nullptr) stats_->count_refused();
          victim.reset();
          spare_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
          if (dropped_++ == 0)
            std::fprintf(stderr, "httpbench: out of file descriptors; dropping connections "
                                 "(raise ulimit -n or lower --max-conns)\n");
          return accept_status::again;
        }
        return accept_status::error;
      default:
        return accept_status::error;
    }
  }
}

accept_status acceptor::accept_blocking(unique_fd& fd, bool nonblocking, int stop_fd) {
  for (;;) {
    accept_status s = accept_one(fd, nonblocking);
    if (s != accept_status::again) return s;
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) return accept_status::error;
    if (fds[1].revents != 0) return accept_status::stopped;
  }
}

}  // namespace httpbench::core
