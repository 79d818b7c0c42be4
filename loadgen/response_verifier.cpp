#include "response_verifier.hpp"

#include <cstring>

namespace httpbench::loadgen {

bool response_verifier::body_matches(std::size_t target, std::uint64_t offset, const char* data,
                                     std::size_t length) const {
  const auto& ref = references_[target];
  if (!verify_body_ || !ref) return true;
  if (offset + length > ref->size()) return false;
  return std::memcmp(ref->data() + offset, data, length) == 0;
}

std::optional<error_kind> response_verifier::check(std::size_t target,
                                                   const http_response_parser& response,
                                                   bool body_mismatch, std::string* captured) {
  const int status = response.status_code();
  if (status < 200 || status > 299) return error_kind::bad_status;
  const request_target& t = (*targets_)[target];
  const auto length = static_cast<std::int64_t>(response.body_received());
  if (t.head) return std::nullopt;
  if (response.content_length() >= 0 && response.content_length() != length)
    return error_kind::wrong_length;
  if (t.expected_size >= 0 && t.expected_size != length) return error_kind::wrong_length;
  if (lengths_[target] >= 0 && lengths_[target] != length) return error_kind::wrong_length;
  if (body_mismatch) return error_kind::wrong_body;
  if (lengths_[target] < 0) {
    lengths_[target] = length;
  } else if (captured != nullptr && references_[target] && *captured != *references_[target]) {
    // Captured before the reference existed: compare it now.
    return error_kind::wrong_body;
  }
  if (captured != nullptr && verify_body_ && !references_[target] && !length_only_[target]) {
    if (!response.chunked() && captured->size() == static_cast<std::size_t>(length) &&
        static_cast<std::size_t>(length) <= max_reference_bytes) {
      references_[target] = std::move(*captured);
    } else {
      length_only_[target] = true;
    }
  }
  return std::nullopt;
}

}  // namespace httpbench::loadgen
