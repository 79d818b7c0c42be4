#include "wsesslog.hpp"

#include <cstdlib>

namespace httpbench::loadgen {

namespace {

bool is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\r';
}

/// Splits one line into the path and its attributes; returns false with a reason on error.
bool parse_line(std::string_view line, session_request& request, double& think, std::string& why) {
  std::size_t i = 0;
  auto skip_blanks = [&] {
    while (i < line.size() && is_blank(line[i])) ++i;
  };
  skip_blanks();
  const std::size_t path_start = i;
  while (i < line.size() && !is_blank(line[i])) ++i;
  request.path = std::string(line.substr(path_start, i - path_start));
  if (request.path.empty() || request.path.front() != '/') {
    why = "a request must start with a path beginning with '/'";
    return false;
  }
  while (true) {
    skip_blanks();
    if (i >= line.size()) break;
    const std::size_t eq = line.find('=', i);
    if (eq == std::string_view::npos) {
      why = "expected attr=value, got '" + std::string(line.substr(i)) + "'";
      return false;
    }
    const std::string_view name = line.substr(i, eq - i);
    i = eq + 1;
    std::string value;
    if (i < line.size() && (line[i] == '\'' || line[i] == '"')) {
      const char quote = line[i++];
      const std::size_t close = line.find(quote, i);
      if (close == std::string_view::npos) {
        why = "unterminated quote";
        return false;
      }
      value = std::string(line.substr(i, close - i));
      i = close + 1;
    } else {
      const std::size_t start = i;
      while (i < line.size() && !is_blank(line[i])) ++i;
      value = std::string(line.substr(start, i - start));
    }
    if (name == "method") {
      if (value != "GET" && value != "HEAD" && value != "POST") {
        why = "unsupported method '" + value + "'";
        return false;
      }
      request.method = value;
    } else if (name == "contents") {
      request.contents = value;
    } else if (name == "think") {
      char* end = nullptr;
      think = std::strtod(value.c_str(), &end);
      if (value.empty() || *end != '\0' || think < 0) {
        why = "bad think time '" + value + "'";
        return false;
      }
    } else {
      why = "unknown attribute '" + std::string(name) + "'";
      return false;
    }
  }
  return true;
}

}  // namespace

std::optional<std::vector<session_definition>> parse_wsesslog(std::string_view text,
                                                              std::string& error) {
  std::vector<session_definition> sessions;
  bool in_session = false;
  std::size_t line_number = 0;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_number;
    if (!line.empty() && line.front() == '#') continue;
    std::size_t first = 0;
    while (first < line.size() && is_blank(line[first])) ++first;
    if (first == line.size()) {  // blank: ends the current session
      in_session = false;
      continue;
    }
    if (line[first] == '#') continue;
    session_request request;
    double think = -1;
    std::string why;
    if (!parse_line(line, request, think, why)) {
      error = "wsesslog line " + std::to_string(line_number) + ": " + why;
      return std::nullopt;
    }
    const bool continues_burst = first > 0;
    if (continues_burst) {
      if (!in_session) {
        error = "wsesslog line " + std::to_string(line_number) +
                ": an indented request must follow a burst's first request";
        return std::nullopt;
      }
      if (think >= 0) {
        error = "wsesslog line " + std::to_string(line_number) +
                ": think= belongs on the burst's first line";
        return std::nullopt;
      }
      sessions.back().bursts.back().requests.push_back(std::move(request));
      continue;
    }
    if (!in_session) {
      sessions.emplace_back();
      in_session = true;
    }
    session_burst burst;
    burst.think_s = think;
    burst.requests.push_back(std::move(request));
    sessions.back().bursts.push_back(std::move(burst));
  }
  if (sessions.empty()) {
    error = "wsesslog: no sessions in the file";
    return std::nullopt;
  }
  return sessions;
}

}  // namespace httpbench::loadgen
