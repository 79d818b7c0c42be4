// Verification of every response: status, length and body (Pariag et al. 2007, §3.4).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "error_kind.hpp"
#include "http_response_parser.hpp"
#include "request_table.hpp"

namespace httpbench::loadgen {

/// Per-URL outcome counts, so a workload can check that every file size was served equally.
struct url_counts {
  std::uint64_t ok = 0;
  std::uint64_t errors = 0;    ///< all error kinds
  std::uint64_t timeouts = 0;  ///< read_timeout + connect_timeout (also counted in errors)
  std::uint64_t body_bytes = 0;
};

/// Checks responses of one thread against its reference for each target:
///   1. the status must be 2xx                                        -> bad_status
///   2. the body length must equal Content-Length (checked by the caller at EOF), the
///      --expect manifest size, and the first good response's length -> wrong_length
///   3. the body bytes must equal the first good response's body       -> wrong_body
/// The first response that passes 1 and 2 becomes the reference. Bodies larger than
/// max_reference_bytes and chunked bodies are checked by length only.
class response_verifier {
 public:
  static constexpr std::size_t max_reference_bytes = 16u << 20;

  response_verifier(const request_table& targets, bool verify_body)
      : targets_(&targets),
        verify_body_(verify_body),
        references_(targets.size()),
        lengths_(targets.size(), -1),
        length_only_(targets.size(), false),
        counts_(targets.size()) {}

  /// Whether a response for `target` must be captured (no reference yet) to become one.
  bool needs_capture(std::size_t target) const {
    return verify_body_ && !references_[target].has_value() && !length_only_[target];
  }

  /// Compares body bytes [offset, offset+length) with the reference; false on mismatch.
  /// With no reference yet (or body checks off) it returns true.
  bool body_matches(std::size_t target, std::uint64_t offset, const char* data,
                    std::size_t length) const;

  /// Final verdict on a complete response. `captured` holds its body when needs_capture() was
  /// true at its start (may be null). Returns nullopt for a good response.
  std::optional<error_kind> check(std::size_t target, const http_response_parser& response,
                                  bool body_mismatch, std::string* captured);

  /// Counts the outcome of one request for per-URL reporting.
  void count_ok(std::size_t target, std::uint64_t body_bytes) {
    ++counts_[target].ok;
    counts_[target].body_bytes += body_bytes;
  }
  /// Takes back a count_ok() (the response turned out to have had a longer body).
  void uncount_ok(std::size_t target, std::uint64_t body_bytes) {
    --counts_[target].ok;
    counts_[target].body_bytes -= body_bytes;
  }
  void count_error(std::size_t target, error_kind kind) {
    ++counts_[target].errors;
    if (kind == error_kind::read_timeout || kind == error_kind::connect_timeout)
      ++counts_[target].timeouts;
  }

  const std::vector<url_counts>& counts() const { return counts_; }
  /// Reference body of `target` if one was taken (for the cross-thread check).
  const std::string* reference(std::size_t target) const {
    return references_[target] ? &*references_[target] : nullptr;
  }
  /// Length of the first good response for `target`, or -1.
  std::int64_t reference_length(std::size_t target) const { return lengths_[target]; }

 private:
  const request_table* targets_;
  bool verify_body_;
  std::vector<std::optional<std::string>> references_;  // body of the first good response
  std::vector<std::int64_t> lengths_;                   // its length (also for length-only checks)
  std::vector<bool> length_only_;  // reference body not kept (chunked or too large)
  std::vector<url_counts> counts_;
};

}  // namespace httpbench::loadgen
