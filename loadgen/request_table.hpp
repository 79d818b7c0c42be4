// The requests a run sends, built once at start so the hot path only copies bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace httpbench::loadgen {

/// One distinct request of the workload, pre-serialised.
struct request_target {
  std::string method;  ///< GET, HEAD or POST
  std::string path;    ///< as sent on the request line
  std::string wire;    ///< the complete request bytes
  std::string batch;   ///< `wire` repeated --pipeline times (closed-loop keep-alive only)
  bool head = false;   ///< response carries no body
  std::int64_t expected_size = -1;  ///< body size from the --expect manifest; -1 if unknown
};

/// All request targets of a run; index 0 is the URL given on the command line.
class request_table {
 public:
  /// `keep_alive` false builds HTTP/1.0 requests without keep-alive, as ab sends; true builds
  /// HTTP/1.1 requests (persistent by default). `host_header` is the Host header value.
  request_table(std::string host_header, bool keep_alive, std::uint32_t pipeline)
      : host_header_(std::move(host_header)), keep_alive_(keep_alive), pipeline_(pipeline) {}

  /// Index of the target for (method, path, contents), adding it if new.
  std::size_t add(std::string_view method, std::string_view path, std::string_view contents = {});

  const request_target& operator[](std::size_t i) const { return targets_[i]; }
  request_target& operator[](std::size_t i) { return targets_[i]; }
  std::size_t size() const { return targets_.size(); }

  /// Applies an --expect manifest: `PATH-or-URL SIZE` per line, '#' comments. Paths not yet
  /// in the table are added (so per-URL counts list them). Returns false with a message on a
  /// syntax error.
  bool apply_manifest(std::string_view text, std::string& error);

 private:
  std::string host_header_;
  bool keep_alive_;
  std::uint32_t pipeline_;
  std::vector<request_target> targets_;
  std::vector<std::string> contents_;  // request bodies, parallel to targets_
};

}  // namespace httpbench::loadgen
