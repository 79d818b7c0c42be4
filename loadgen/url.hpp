// Target URL parsing and address resolution.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace httpbench::loadgen {

/// An http:// URL split into the parts the client needs.
struct url {
  std::string host;         ///< host name or IP literal, without IPv6 brackets
  std::uint16_t port = 80;  ///< explicit port or 80
  std::string path;         ///< starts with '/', includes any query string
  std::string host_header;  ///< value of the Host header: host[:port] as written
};

/// Parses "http://HOST[:PORT][/PATH]". On failure returns nullopt and sets `error` to a
/// one-line reason. https and other schemes are refused (the client speaks plain HTTP/1.x).
std::optional<url> parse_url(std::string_view text, std::string& error);

/// One resolved address of the target.
struct resolved_address {
  sockaddr_storage address{};
  socklen_t length = 0;
  bool loopback = false;  ///< 127.0.0.0/8 or ::1
  std::string text;       ///< numeric form, for messages
};

/// Resolves `target` with getaddrinfo (IPv4 preferred) and returns the first address. On failure
/// returns nullopt and sets `error` ("cannot resolve host 'x': Name or service not known").
std::optional<resolved_address> resolve(const url& target, std::string& error);

}  // namespace httpbench::loadgen
