// The ways a request can fail, as counted in the report and the JSON `errors` object.
#pragma once

#include <array>
#include <cerrno>
#include <cstdint>
#include <string_view>

namespace httpbench::loadgen {

/// Why one request failed. Every started request ends as exactly one of: a good response,
/// one error of these kinds, or "incomplete" (still in flight when the run ended).
enum class error_kind : std::uint8_t {
  connect_refused,      ///< ECONNREFUSED: nothing listens, or the accept queue overflowed
  connect_timeout,      ///< connect did not finish within --connect-timeout
  reset,                ///< ECONNRESET / EPIPE while writing or reading
  read_timeout,         ///< no complete response within --timeout of the send
  bad_status,           ///< the status code was not 2xx (e.g. a 404)
  wrong_length,         ///< body length differs from Content-Length, the manifest or the reference
  wrong_body,           ///< body bytes differ from the first good response for that URL
  address_unavailable,  ///< EADDRNOTAVAIL: ephemeral ports exhausted
  fd_unavailable,       ///< EMFILE / ENFILE: out of file descriptors
  bad_response,         ///< the response could not be parsed as HTTP/1.x
  closed_early,         ///< the server closed the connection before any byte of the response
  dropped,              ///< open loop: an arrival found no connection and a full --max-pending
  other,                ///< any other errno; see the message printed once
  count_,
};

inline constexpr std::size_t error_kind_count = static_cast<std::size_t>(error_kind::count_);

/// JSON / report name of each kind; the names are part of docs/interfaces.md.
inline constexpr std::array<std::string_view, error_kind_count> error_kind_names = {
    "connect_refused", "connect_timeout", "reset",        "read_timeout",
    "bad_status",      "wrong_length",    "wrong_body",   "address_unavailable",
    "fd_unavailable",  "bad_response",    "closed_early", "dropped",
    "other",
};

inline std::string_view name_of(error_kind kind) {
  return error_kind_names[static_cast<std::size_t>(kind)];
}

/// Error counters of one thread, merged at the end.
struct error_counts {
  std::array<std::uint64_t, error_kind_count> by_kind{};

  void add(error_kind kind) { ++by_kind[static_cast<std::size_t>(kind)]; }
  std::uint64_t total() const {
    std::uint64_t sum = 0;
    for (auto n : by_kind) sum += n;
    return sum;
  }
  void merge(const error_counts& other) {
    for (std::size_t i = 0; i < error_kind_count; ++i) by_kind[i] += other.by_kind[i];
  }
};

/// Maps an errno from socket/connect/read/write to the error kind it is counted as.
inline error_kind error_kind_from_errno(int err) {
  switch (err) {
    case ECONNREFUSED:
      return error_kind::connect_refused;
    case ECONNRESET:
    case EPIPE:
      return error_kind::reset;
    case ETIMEDOUT:
      return error_kind::connect_timeout;
    case EADDRNOTAVAIL:
      return error_kind::address_unavailable;
    case EMFILE:
    case ENFILE:
      return error_kind::fd_unavailable;
    default:
      return error_kind::other;
  }
}

}  // namespace httpbench::loadgen
