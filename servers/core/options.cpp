#include "options.hpp"

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "json.hpp"
#include "path.hpp"

namespace httpbench::core {
namespace {

std::string format_usage(const backend_info& info) {
  std::string out = "usage: httpd-" + std::string(info.name) + " [options]\n  " +
                    std::string(info.summary) + "\n\n";
  out +=
      "  --bind ADDR              address to listen on (default 127.0.0.1)\n"
      "  --port N                 TCP port, 0 = ephemeral (default 8080)\n"
      "  --docroot DIR            document root, cached at start (default: built-in 305-byte "
      "page)\n"
      "  --workers N              processes/threads for pooled backends (default " +
      std::to_string(info.default_workers) +
      ")\n"
      "  --max-conns N            connections open at once (default 16384)\n"
      "  --stack-size BYTES       per-thread/fiber stack, e.g. 64k (default 64k)\n"
      "  --idle-timeout S         close a connection that waits S seconds for a request, or\n"
      "                           for the next bytes of a request body (default 30)\n"
      "  --header-timeout S       a request head must arrive whole within S seconds of its\n"
      "                           first byte (and within --idle-timeout), e.g. 2.5 (default 10)\n"
      "  --send-timeout S         abandon a response that makes no progress for S seconds,\n"
      "                           e.g. 2.5 (default 30)\n"
      "  --grace S                at SIGTERM, connections inside a request get S seconds to\n"
      "                           finish, e.g. 0.5 (default 2)\n"
      "  --backlog N              listen() backlog (default 4096)\n"
      "  --defer-accept S         the kernel hands a connection over only once its first bytes\n"
      "                           arrive, or after about S seconds (TCP_DEFER_ACCEPT; default 0,\n"
      "                           off)\n"
      "  --sendfile-threshold B   bodies >= B bytes go out with sendfile (default 64k)\n"
      "  --ready-file PATH        write HOST:PORT to PATH once accepting\n"
      "  --status-path PATH       where the core serves its counters as JSON (default "
      "/server-status)\n"
      "  --no-status              no status page: its path is an ordinary docroot path\n"
      "  --set KEY=VALUE          backend tunable (see --describe)\n"
      "  --describe               print this backend's description as JSON and exit\n"
      "  --help                   this text\n";
  if (!info.tunables.empty()) {
    out += "\n  tunables (--set):\n";
    for (const auto& t : info.tunables) {
      out += "    ";
      out += t.name;
      out += " (default ";
      out += t.default_value;
      out += ")  ";
      out += t.help;
      out += '\n';
    }
  }
  return out;
}

template <class Int>
bool parse_int(std::string_view text, Int& out, Int min, Int max) {
  Int value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max)
    return false;
  out = value;
  return true;
}

// "/a/b": starts with '/', is not the root, has no query, and normalize_path leaves it as it is.
bool is_normalized_path(std::string_view path) {
  if (path.size() < 2 || path.front() != '/' || path.find_first_of("?#") != std::string_view::npos)
    return false;
  std::string copy(path);
  size_t len = 0;
  return normalize_path(path, {copy.data(), copy.size()}, len) == path_status::ok &&
         std::string_view(copy.data(), len) == path;
}

// "2", "0.5", "10.25": seconds with up to three decimals, as milliseconds.
bool parse_millis(std::string_view text, int& out_ms, int max_ms) {
  size_t dot = text.find('.');
  std::string_view whole = text.substr(0, dot), fraction;
  if (dot != std::string_view::npos) fraction = text.substr(dot + 1);
  if (whole.empty() || fraction.size() > 3 || (dot != std::string_view::npos && fraction.empty()))
    return false;
  int seconds = 0, millis = 0;
  if (!parse_int(whole, seconds, 0, max_ms / 1000)) return false;
  if (!fraction.empty()) {
    if (!parse_int(fraction, millis, 0, 999)) return false;
    for (size_t i = fraction.size(); i < 3; ++i) millis *= 10;
  }
  if (seconds * 1000 + millis > max_ms) return false;
  out_ms = seconds * 1000 + millis;
  return true;
}

const tunable* find_tunable(const backend_info& info, std::string_view key) {
  for (const auto& t : info.tunables)
    if (t.name == key) return &t;
  return nullptr;
}

}  // namespace

size_t setting_number(const server_config& config, const backend_info& info,
                      std::string_view key) {
  const tunable* t = find_tunable(info, key);
  size_t value = 0;
  if (t == nullptr || t->max == 0 ||
      !parse_int<size_t>(setting(config, info, key), value, t->min, t->max)) {
    std::fprintf(stderr, "httpd-%.*s: tunable '%.*s' is not an integer tunable or its default is "
                 "out of range\n", static_cast<int>(info.name.size()), info.name.data(),
                 static_cast<int>(key.size()), key.data());
    std::abort();
  }
  return value;
}

bool parse_size(std::string_view text, size_t& out) {
  if (text.empty()) return false;
  size_t multiplier = 1;
  switch (text.back()) {
    case 'k': case 'K': multiplier = 1024; break;
    case 'm': case 'M': multiplier = 1024 * 1024; break;
    case 'g': case 'G': multiplier = 1024 * 1024 * 1024; break;
    default: break;
  }
  if (multiplier != 1) text.remove_suffix(1);
  size_t value = 0;
  if (!parse_int<size_t>(text, value, 0, SIZE_MAX / multiplier)) return false;
  out = value * multiplier;
  return true;
}

parse_outcome parse_options(int argc, char** argv, const backend_info& info) {
  parse_outcome result;
  server_config& c = result.config;
  c.workers = info.default_workers;
  auto fail = [&](std::string message) {
    result.ok = false;
    result.exit_code = 2;
    result.message = "httpd-" + std::string(info.name) + ": " + message +
                     " (see --help)";
    return result;
  };
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view value;
    bool has_inline_value = false;
    if (auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos &&
                                 arg.substr(0, eq) != "--set") {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_inline_value = true;
    }
    if (arg == "--help" || arg == "-h") {
      result.ok = false;
      result.exit_code = 0;
      result.message = format_usage(info);
      return result;
    }
    if (arg == "--describe") {
      c.describe = true;
      continue;
    }
    if (arg == "--no-status" && !has_inline_value) {
      c.status_path.clear();
      continue;
    }
    auto next_value = [&](std::string_view& out) {
      if (has_inline_value) {
        out = value;
        return true;
      }
      if (i + 1 >= argc) return false;
      out = argv[++i];
      return true;
    };
    std::string_view v;
    if (arg == "--set" && arg.size() == std::string_view(argv[i]).size()) {
      if (!next_value(v)) return fail("--set needs KEY=VALUE");
    } else if (arg.starts_with("--set=")) {
      v = arg.substr(6);
      arg = "--set";
    } else if (!arg.starts_with("--")) {
      return fail("unexpected argument '" + std::string(arg) + "'");
    } else if (!next_value(v)) {
      return fail(std::string(arg) + " needs a value");
    }
    auto bad = [&](const char* what) {
      return fail("bad value '" + std::string(v) + "' for " + std::string(arg) + ": expected " +
                  what);
    };
    if (arg == "--bind") {
      c.bind = v;
    } else if (arg == "--port") {
      if (!parse_int<uint16_t>(v, c.port, 0, 65535)) return bad("a port 0-65535");
    } else if (arg == "--docroot") {
      c.docroot = v;
    } else if (arg == "--workers") {
      if (!parse_int(v, c.workers, 1, 100000)) return bad("an integer >= 1");
    } else if (arg == "--max-conns") {
      if (!parse_int(v, c.max_conns, 1, 10000000)) return bad("an integer >= 1");
    } else if (arg == "--stack-size") {
      if (!parse_size(v, c.stack_size) || c.stack_size < 4096) return bad("a size >= 4k");
    } else if (arg == "--idle-timeout") {
      if (!parse_int(v, c.idle_timeout_s, 1, 86400)) return bad("seconds 1-86400");
    } else if (arg == "--header-timeout") {
      if (!parse_millis(v, c.header_timeout_ms, 86'400'000) || c.header_timeout_ms == 0)
        return bad("seconds 0.001-86400, such as 10 or 2.5");
    } else if (arg == "--send-timeout") {
      if (!parse_millis(v, c.send_timeout_ms, 86'400'000) || c.send_timeout_ms == 0)
        return bad("seconds 0.001-86400, such as 30 or 2.5");
    } else if (arg == "--grace") {
      if (!parse_millis(v, c.grace_ms, 3'600'000)) return bad("seconds 0-3600, such as 2 or 0.5");
    } else if (arg == "--backlog") {
      if (!parse_int(v, c.backlog, 1, 1 << 20)) return bad("an integer >= 1");
    } else if (arg == "--defer-accept") {
      if (!parse_int(v, c.defer_accept_s, 0, 3600)) return bad("seconds 0-3600 (0: off)");
    } else if (arg == "--sendfile-threshold") {
      if (!parse_size(v, c.sendfile_threshold)) return bad("a size such as 64k");
    } else if (arg == "--ready-file") {
      c.ready_file = v;
    } else if (arg == "--status-path") {
      // Requests are matched after normalisation, so only a normalised path can ever match.
      if (!is_normalized_path(v)) return bad("a normalised path such as /server-status");
      c.status_path = v;
    } else if (arg == "--set") {
      auto eq = v.find('=');
      if (eq == std::string_view::npos || eq == 0) return bad("KEY=VALUE");
      std::string_view key = v.substr(0, eq), val = v.substr(eq + 1);
      const tunable* t = find_tunable(info, key);
      if (t == nullptr) {
        std::string known;
        for (const auto& k : info.tunables) known += (known.empty() ? "" : ", ") + std::string(k.name);
        return fail("unknown tunable '" + std::string(key) + "' for backend " +
                    std::string(info.name) + " (known: " + (known.empty() ? "none" : known) + ")");
      }
      if (!t->choices.empty()) {
        bool found = false;
        std::string allowed;
        for (auto choice : t->choices) {
          found = found || choice == val;
          allowed += (allowed.empty() ? "" : "|") + std::string(choice);
        }
        if (!found)
          return fail("bad value '" + std::string(val) + "' for tunable " + std::string(key) +
                      ": expected " + allowed);
      }
      size_t number = 0;
      if (t->max > 0 && !parse_int<size_t>(val, number, t->min, t->max))
        return fail("bad value '" + std::string(val) + "' for tunable " + std::string(key) +
                    ": expected an integer from " + std::to_string(t->min) + " to " +
                    std::to_string(t->max));
      c.settings.emplace_back(key, val);
    } else {
      return fail("unknown option '" + std::string(arg) + "'");
    }
  }
  return result;
}

std::string_view setting(const server_config& config, const backend_info& info,
                         std::string_view key) {
  for (auto it = config.settings.rbegin(); it != config.settings.rend(); ++it)
    if (it->first == key) return it->second;
  const tunable* t = find_tunable(info, key);
  return t != nullptr ? t->default_value : std::string_view{};
}

std::string_view category_name(backend_category category) {
  switch (category) {
    case backend_category::process: return "process";
    case backend_category::thread: return "thread";
    case backend_category::user_thread: return "user-thread";
    case backend_category::event: return "event";
    case backend_category::pipeline: return "pipeline";
    case backend_category::unset: break;
  }
  return "";
}

std::string describe_json(const backend_info& info) {
  std::string out = "{\"name\": ";
  append_json_string(out, info.name);
  out += ", \"model\": ";
  append_json_string(out, info.model);
  out += ", \"summary\": ";
  append_json_string(out, info.summary);
  out += ", \"paper\": ";
  append_json_string(out, info.paper);
  out += ", \"category\": ";
  append_json_string(out, category_name(info.category));
  out += ", \"default_workers\": " + std::to_string(info.default_workers);
  out += ", \"workers_bound_connections\": ";
  out += info.workers_bound_connections ? "true" : "false";
  out += ", \"max_connections\": " + std::to_string(info.max_connections);
  out += ", \"tunables\": [";
  bool first = true;
  for (const auto& t : info.tunables) {
    out += first ? "{" : ", {";
    first = false;
    out += "\"name\": ";
    append_json_string(out, t.name);
    out += ", \"default\": ";
    append_json_string(out, t.default_value);
    out += ", \"choices\": [";
    for (size_t i = 0; i < t.choices.size(); ++i) {
      if (i) out += ", ";
      append_json_string(out, t.choices[i]);
    }
    out += "]";
    if (t.max > 0)
      out += ", \"min\": " + std::to_string(t.min) + ", \"max\": " + std::to_string(t.max);
    out += ", \"help\": ";
    append_json_string(out, t.help);
    out += "}";
  }
  out += "]}";
  return out;
}

}  // namespace httpbench::core
