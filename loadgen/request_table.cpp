#include "request_table.hpp"

#include <charconv>

namespace httpbench::loadgen {

std::size_t request_table::add(std::string_view method, std::string_view path,
                               std::string_view contents) {
  for (std::size_t i = 0; i < targets_.size(); ++i)
    if (targets_[i].method == method && targets_[i].path == path && contents_[i] == contents)
      return i;
  request_target t;
  t.method = std::string(method);
  t.path = std::string(path);
  t.head = method == "HEAD";
  t.wire = t.method + " " + t.path + (keep_alive_ ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n");
  t.wire += "Host: " + host_header_ + "\r\nUser-Agent: httpbench-loadgen\r\nAccept: */*\r\n";
  if (!contents.empty() || method == "POST")
    t.wire += "Content-Length: " + std::to_string(contents.size()) + "\r\n";
  t.wire += "\r\n";
  t.wire += contents;
  for (std::uint32_t i = 0; i < pipeline_; ++i) t.batch += t.wire;
  targets_.push_back(std::move(t));
  contents_.emplace_back(contents);
  return targets_.size() - 1;
}

bool request_table::apply_manifest(std::string_view text, std::string& error) {
  std::size_t line_number = 0;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_number;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
      line.remove_suffix(1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.empty() || line.front() == '#') continue;
    const std::size_t space = line.find_first_of(" \t");
    if (space == std::string_view::npos) {
      error = "--expect line " + std::to_string(line_number) + ": expected 'PATH SIZE'";
      return false;
    }
    std::string_view path = line.substr(0, space);
    std::string_view size_text = line.substr(line.find_first_not_of(" \t", space));
    if (path.starts_with("http://")) {
      const std::size_t slash = path.find('/', 7);
      path = slash == std::string_view::npos ? std::string_view("/") : path.substr(slash);
    }
    std::int64_t size = -1;
    const auto [end, ec] =
        std::from_chars(size_text.data(), size_text.data() + size_text.size(), size);
    if (ec != std::errc{} || end != size_text.data() + size_text.size() || size < 0 ||
        path.empty() || path.front() != '/') {
      error = "--expect line " + std::to_string(line_number) + ": expected 'PATH SIZE'";
      return false;
    }
    bool found = false;
    for (auto& t : targets_) {
      if (t.path == path) {
        t.expected_size = size;
        found = true;
      }
    }
    if (!found) targets_[add("GET", path)].expected_size = size;
  }
  return true;
}

}  // namespace httpbench::loadgen
