// A minimal streaming JSON writer for the one object loadgen emits.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace httpbench::loadgen {

/// Appends JSON to a string. Keys and commas are managed per nesting level; numbers that are
/// not finite are written as null (JSON has no NaN).
class json_writer {
 public:
  void begin_object(std::string_view key = {}) { open(key, '{'); }
  void end_object() { close('}'); }

  void field(std::string_view key, std::string_view value) {
    prefix(key);
    quote(value);
  }
  void field(std::string_view key, const char* value) { field(key, std::string_view(value)); }
  void field(std::string_view key, bool value) {
    prefix(key);
    out_ += value ? "true" : "false";
  }
  void field(std::string_view key, double value) {
    prefix(key);
    if (!std::isfinite(value)) {
      out_ += "null";
      return;
    }
    char buf[64];
    // 12 significant digits: elapsed_s then agrees with the window's nanosecond bounds to
    // 1e-12 relative (a one-hour window to the nanosecond), and a load compared with another
    // is not rounded by the writer.
    std::snprintf(buf, sizeof buf, "%.12g", value);
    if (std::fabs(value) >= 1e12) std::snprintf(buf, sizeof buf, "%.3f", value);
    out_ += buf;
  }
  void field(std::string_view key, std::uint64_t value) {
    prefix(key);
    out_ += std::to_string(value);
  }
  void field(std::string_view key, std::int64_t value) {
    prefix(key);
    out_ += std::to_string(value);
  }
  void field(std::string_view key, std::uint32_t value) { field(key, std::uint64_t{value}); }
  void null_field(std::string_view key) {
    prefix(key);
    out_ += "null";
  }

  const std::string& str() const { return out_; }

 private:
  void open(std::string_view key, char bracket) {
    prefix(key);
    out_ += bracket;
    first_ = true;
  }
  void close(char bracket) {
    out_ += bracket;
    first_ = false;
  }
  void prefix(std::string_view key) {
    if (!first_) out_ += ", ";
    first_ = false;
    if (!key.empty()) {
      quote(key);
      out_ += ": ";
    }
  }
  void quote(std::string_view s) {
    out_ += '"';
    for (char c : s) {
      switch (c) {
        case '"':
          out_ += "\\\"";
          break;
        case '\\':
          out_ += "\\\\";
          break;
        case '\n':
          out_ += "\\n";
          break;
        case '\r':
          out_ += "\\r";
          break;
        case '\t':
          out_ += "\\t";
          break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out_ += buf;
          } else {
            out_ += c;
          }
      }
    }
    out_ += '"';
  }

  std::string out_;
  bool first_ = true;
};

}  // namespace httpbench::loadgen
