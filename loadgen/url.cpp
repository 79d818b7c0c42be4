#include "url.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>

namespace httpbench::loadgen {

std::optional<url> parse_url(std::string_view text, std::string& error) {
  constexpr std::string_view scheme = "http://";
  if (text.size() < scheme.size() || text.substr(0, scheme.size()) != scheme) {
    const auto colon = text.find("://");
    error = colon == std::string_view::npos
                ? "bad URL '" + std::string(text) + "': expected http://HOST[:PORT]/PATH"
                : "bad URL '" + std::string(text) + "': only http:// is supported";
    return std::nullopt;
  }
  std::string_view rest = text.substr(scheme.size());
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  url result;
  result.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (authority.find('@') != std::string_view::npos) {
    error = "bad URL '" + std::string(text) + "': user info is not supported";
    return std::nullopt;
  }
  result.host_header = std::string(authority);
  std::string_view host = authority;
  std::string_view port_text;
  if (!host.empty() && host.front() == '[') {
    const auto close = host.find(']');
    if (close == std::string_view::npos) {
      error = "bad URL '" + std::string(text) + "': unterminated IPv6 literal";
      return std::nullopt;
    }
    if (close + 1 < host.size()) {
      if (host[close + 1] != ':') {
        error = "bad URL '" + std::string(text) + "': junk after IPv6 literal";
        return std::nullopt;
      }
      port_text = host.substr(close + 2);
    }
    host = host.substr(1, close - 1);
  } else if (const auto colon = host.rfind(':'); colon != std::string_view::npos) {
    port_text = host.substr(colon + 1);
    host = host.substr(0, colon);
  }
  if (host.empty()) {
    error = "bad URL '" + std::string(text) + "': no host";
    return std::nullopt;
  }
  if (!port_text.empty() || authority.ends_with(":")) {
    unsigned value = 0;
    const auto [end, ec] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (ec != std::errc{} || end != port_text.data() + port_text.size() || value == 0 ||
        value > 65535) {
      error = "bad URL '" + std::string(text) + "': bad port '" + std::string(port_text) + "'";
      return std::nullopt;
    }
    result.port = static_cast<std::uint16_t>(value);
  }
  for (char c : result.path) {
    if (c <= ' ' || c == 0x7f) {
      error = "bad URL '" + std::string(text) + "': spaces or control characters in the path";
      return std::nullopt;
    }
  }
  result.host = std::string(host);
  return result;
}

std::optional<resolved_address> resolve(const url& target, std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* list = nullptr;
  const std::string port = std::to_string(target.port);
  int rc = getaddrinfo(target.host.c_str(), port.c_str(), &hints, &list);
  if (rc == EAI_NONAME || rc == EAI_ADDRFAMILY) {
    // AI_ADDRCONFIG hides ::1 / 127.0.0.1 on hosts with only a loopback interface.
    hints.ai_flags = 0;
    rc = getaddrinfo(target.host.c_str(), port.c_str(), &hints, &list);
  }
  if (rc != 0) {
    error = "cannot resolve host '" + target.host + "': " + gai_strerror(rc);
    return std::nullopt;
  }
  // Prefer IPv4: servers in this project bind 127.0.0.1 by default.
  const addrinfo* chosen = list;
  for (const addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family == AF_INET) {
      chosen = ai;
      break;
    }
  }
  resolved_address out;
  std::memcpy(&out.address, chosen->ai_addr, chosen->ai_addrlen);
  out.length = chosen->ai_addrlen;
  char buf[INET6_ADDRSTRLEN] = {};
  if (chosen->ai_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(chosen->ai_addr);
    out.loopback = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
  } else {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(chosen->ai_addr);
    out.loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
  }
  out.text = buf;
  freeaddrinfo(list);
  return out;
}

}  // namespace httpbench::loadgen
