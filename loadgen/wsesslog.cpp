#include "wsesslog.hpp"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace httpbench::loadgen {

namespace {

// The methods httperf knows, in its order: `method=X` takes the first whose name X starts with.
constexpr const char* methods[] = {"DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT", "TRACE"};

// httperf reads the file with fgets into a 10,000-byte buffer: a longer line (its '\n'
// included) would be cut in two, which no file means, so it is refused.
constexpr std::size_t max_line = 9999;

bool is_space(char c) {
  return std::isspace(static_cast<unsigned char>(c)) != 0;
}

/// The file as httperf's fgets sees it: one line at a time, each with its '\n' (if any).
class line_reader {
 public:
  explicit line_reader(std::string_view text) : text_(text) {}
  /// Next line including its '\n'; false at the end of the file.
  bool next(std::string_view& line) {
    if (text_.empty()) return false;
    const std::size_t nl = text_.find('\n');
    const std::size_t n = nl == std::string_view::npos ? text_.size() : nl + 1;
    line = text_.substr(0, n);
    text_.remove_prefix(n);
    ++number_;
    // sscanf and the contents scanner stop at a NUL byte, as C strings do.
    if (const std::size_t nul = line.find('\0'); nul != std::string_view::npos)
      line = line.substr(0, nul);
    return true;
  }
  std::size_t number() const { return number_; }

 private:
  std::string_view text_;
  std::size_t number_ = 0;
};

/// sscanf(" %s"): skips whitespace from `pos`, returns the next token (empty if none) and
/// moves `pos` past it.
std::string_view next_token(std::string_view line, std::size_t& pos) {
  while (pos < line.size() && is_space(line[pos])) ++pos;
  const std::size_t start = pos;
  while (pos < line.size() && !is_space(line[pos])) ++pos;
  return line.substr(start, pos - start);
}

/// httperf's contents= scanner, from the first '=' after `pos`: quotes ('...' and "...",
/// concatenated), backslash escapes (\n, \r, \t, any other character as itself) and a
/// backslash at the end of a line, which puts a newline in the contents and goes on with the
/// next line of the file. Unquoted whitespace ends the value. On return `line` and `pos` are
/// where attribute parsing resumes (possibly on a continuation line).
bool scan_contents(line_reader& reader, std::string_view& line, std::size_t& pos,
                   std::string& out, std::string& why) {
  std::size_t from = line.find('=', pos) + 1;
  bool single_quoted = false, double_quoted = false, escaped = false;
  while (from < line.size()) {
    const char ch = line[from++];
    if (escaped) {
      escaped = false;
      switch (ch) {
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case '\n':
          // "\<newline>": the value goes on with the next line.
          out += '\n';
          if (!reader.next(line)) {
            why = "premature end of file in contents= continued with a backslash";
            return false;
          }
          if (line.size() > max_line) {
            why = "line longer than httperf's 9,999 characters";
            return false;
          }
          from = 0;
          break;
        default:
          out += ch;
          break;
      }
    } else if (ch == '"' && double_quoted) {
      double_quoted = false;
    } else if (ch == '\'' && single_quoted) {
      single_quoted = false;
    } else {
      switch (ch) {
        case '\t':
        case '\n':
        case ' ':
          if (!single_quoted && !double_quoted) {
            pos = from;  // resume after the whitespace that ended the value
            return true;
          }
          out += ch;
          break;
        case '\\':
          escaped = true;
          break;
        case '"':
          if (single_quoted)
            out += ch;
          else
            double_quoted = true;
          break;
        case '\'':
          if (double_quoted)
            out += ch;
          else
            single_quoted = true;
          break;
        default:
          out += ch;
          break;
      }
    }
  }
  pos = line.size();
  return true;
}

}  // namespace

std::optional<std::vector<session_definition>> parse_wsesslog(std::string_view text,
                                                              std::string& error) {
  std::vector<session_definition> sessions;
  bool session_has_requests = false;
  line_reader reader(text);
  std::string_view line;
  auto fail = [&](std::size_t line_number, const std::string& why) {
    error = "wsesslog line " + std::to_string(line_number) + ": " + why;
    return std::nullopt;
  };
  while (reader.next(line)) {
    const std::size_t line_number = reader.number();
    if (line.size() > max_line)
      return fail(line_number, "line longer than httperf's 9,999 characters");
    if (!line.empty() && line.front() == '#') continue;  // a comment only with '#' first
    std::size_t pos = 0;
    const std::string_view uri = next_token(line, pos);
    if (uri.empty()) {
      // Only whitespace: ends the session (several such lines make no empty session).
      session_has_requests = false;
      continue;
    }
    session_request request;
    request.path = std::string(uri);  // sent as written, whatever it is ('#' included)
    if (!session_has_requests) {
      // A session's first line starts its first burst, indented or not.
      sessions.emplace_back();
      sessions.back().bursts.emplace_back();
      session_has_requests = true;
    } else if (!is_space(line.front())) {
      sessions.back().bursts.emplace_back();
    }
    session_burst& burst = sessions.back().bursts.back();
    burst.requests.push_back(std::move(request));
    session_request& current = burst.requests.back();
    // Attributes: httperf tries method=, think=, contents= in this order on each token.
    while (true) {
      const std::size_t token_start = pos;
      const std::string_view token = next_token(line, pos);
      if (token.empty()) break;
      if (token.starts_with("method=") && token.size() > 7) {
        const std::string_view name = token.substr(7);
        const char* found = nullptr;
        for (const char* m : methods)
          if (name.starts_with(m)) {
            found = m;
            break;
          }
        if (found == nullptr)
          return fail(line_number, "did not recognize method '" + std::string(name) + "'");
        current.method = found;
      } else if (token.starts_with("think=") && token.size() > 6) {
        // sscanf("%lf") takes the longest number at the start of the value.
        const std::string value(token.substr(6));
        char* end = nullptr;
        const double think = std::strtod(value.c_str(), &end);
        if (end == value.c_str())
          return fail(line_number, "did not recognize arg '" + std::string(token) + "'");
        if (!std::isfinite(think) || think < 0)
          return fail(line_number, "think time must be a non-negative number: '" + value + "'");
        burst.think_s = think;  // the burst's, on whichever of its lines it stands
      } else if (token.starts_with("contents=") && token.size() > 9) {
        current.contents.clear();
        pos = token_start;
        std::string why;
        if (!scan_contents(reader, line, pos, current.contents, why))
          return fail(reader.number(), why);
      } else {
        return fail(line_number, "did not recognize arg '" + std::string(token) + "'");
      }
    }
  }
  if (sessions.empty()) {
    error = "wsesslog: no sessions in the file";
    return std::nullopt;
  }
  return sessions;
}

}  // namespace httpbench::loadgen
