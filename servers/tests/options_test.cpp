// The common command line: tunables declared by a backend are validated when parsed, so a bad
// --set value is refused before the server listens, with one line naming the tunable.
#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <vector>

#include "core/connection.hpp"
#include "core/options.hpp"

namespace httpbench::core {
namespace {

const backend_info test_info{
    .name = "test",
    .model = "model",
    .summary = "summary",
    .paper = "paper",
    .category = backend_category::user_thread,
    .default_workers = 2,
    .workers_bound_connections = true,
    .max_connections = 100,
    .tunables = {{"mode", "a", {"a", "b"}, "a choice"},
                 {"count", "8", {}, "an integer", 1, 64},
                 {"label", "x", {}, "any text"}},
};

parse_outcome parse(std::initializer_list<const char*> args) {
  std::vector<char*> argv{const_cast<char*>("httpd-test")};
  for (const char* a : args) argv.push_back(const_cast<char*>(a));
  return parse_options(static_cast<int>(argv.size()), argv.data(), test_info);
}

TEST(Options, IntegerTunableDefaultIsReadWhenNotSet) {
  parse_outcome r = parse({});
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_EQ(setting_number(r.config, test_info, "count"), 8u);
}

TEST(Options, IntegerTunableInRangeIsAccepted) {
  for (const char* arg : {"count=1", "count=64", "count=17"}) {
    parse_outcome r = parse({"--set", arg});
    ASSERT_TRUE(r.ok) << arg << ": " << r.message;
  }
  EXPECT_EQ(setting_number(parse({"--set", "count=17"}).config, test_info, "count"), 17u);
}

TEST(Options, IntegerTunableOutOfRangeOrNotANumberIsRefusedNamingTheRange) {
  for (const char* arg : {"count=0", "count=65", "count=x", "count=", "count=-1", "count=8k"}) {
    parse_outcome r = parse({"--set", arg});
    EXPECT_FALSE(r.ok) << arg;
    EXPECT_EQ(r.exit_code, 2) << arg;
    EXPECT_NE(r.message.find("tunable count: expected an integer from 1 to 64"),
              std::string::npos)
        << r.message;
  }
}

TEST(Options, ChoiceTunableRefusesValuesOutsideItsChoices) {
  EXPECT_TRUE(parse({"--set", "mode=b"}).ok);
  parse_outcome r = parse({"--set", "mode=c"});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.message.find("expected a|b"), std::string::npos) << r.message;
}

TEST(Options, FreeTextTunableTakesAnyValueAndTheLastSetWins) {
  parse_outcome r = parse({"--set", "label=one", "--set", "label=two"});
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_EQ(setting(r.config, test_info, "label"), "two");
}

TEST(Options, UnknownTunableIsRefusedListingTheKnownOnes) {
  parse_outcome r = parse({"--set", "speed=3"});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.message.find("unknown tunable 'speed'"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("known: mode, count, label"), std::string::npos) << r.message;
}

TEST(Options, DescribeListsTheRangeOfIntegerTunablesOnly) {
  std::string json = describe_json(test_info);
  EXPECT_NE(json.find("\"name\": \"count\", \"default\": \"8\", \"choices\": [], \"min\": 1, "
                      "\"max\": 64"),
            std::string::npos)
      << json;
  EXPECT_EQ(json.find("\"min\"", json.find("\"name\": \"label\"")), std::string::npos) << json;
}

TEST(Options, DescribeNamesTheCategoryAndWhetherWorkersBoundConnections) {
  std::string json = describe_json(test_info);
  EXPECT_NE(json.find("\"category\": \"user-thread\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"workers_bound_connections\": true"), std::string::npos) << json;
  backend_info plain = test_info;
  plain.category = backend_category::event;
  plain.workers_bound_connections = false;
  json = describe_json(plain);
  EXPECT_NE(json.find("\"category\": \"event\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"workers_bound_connections\": false"), std::string::npos) << json;
}

TEST(Options, StatusPageIsOnByDefaultAndNoStatusTurnsItOff) {
  EXPECT_EQ(parse({}).config.status_path, "/server-status");
  EXPECT_EQ(parse({"--no-status"}).config.status_path, "");
  EXPECT_EQ(parse({"--status-path", "/stats/now"}).config.status_path, "/stats/now");
  EXPECT_EQ(parse({"--status-path=/s"}).config.status_path, "/s");
  EXPECT_EQ(parse({"--status-path", "/s", "--no-status"}).config.status_path, "");
  EXPECT_EQ(limits_from(parse({"--no-status"}).config).status_path, "");
  EXPECT_EQ(limits_from(parse({}).config).status_path, "/server-status");
}

TEST(Options, StatusPathMustBeANormalisedPathBelowTheRoot) {
  for (const char* path : {"server-status", "/", "", "/a/../b", "/a//b", "/%73tatus", "/s?x", "/s#x",
                           "/./s"}) {
    parse_outcome r = parse({"--status-path", path});
    EXPECT_FALSE(r.ok) << path;
    EXPECT_EQ(r.exit_code, 2) << path;
    EXPECT_NE(r.message.find("--status-path"), std::string::npos) << r.message;
  }
}

TEST(Options, HelpShowsTheStatusOptions) {
  parse_outcome r = parse({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.message.find("--status-path PATH"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("--no-status"), std::string::npos) << r.message;
}

TEST(Options, HeaderAndSendTimeoutsHaveDocumentedDefaultsAndTakeSecondsWithDecimals) {
  server_config defaults = parse({}).config;
  EXPECT_EQ(defaults.header_timeout_ms, 10'000);
  EXPECT_EQ(defaults.send_timeout_ms, 30'000);
  server_config c = parse({"--header-timeout", "2.5", "--send-timeout=0.25"}).config;
  EXPECT_EQ(c.header_timeout_ms, 2500);
  EXPECT_EQ(c.send_timeout_ms, 250);
  for (const char* bad : {"0", "-1", "x", "1.2345", "86401"}) {
    for (const char* option : {"--header-timeout", "--send-timeout"}) {
      parse_outcome r = parse({option, bad});
      EXPECT_FALSE(r.ok) << option << " " << bad;
      EXPECT_EQ(r.exit_code, 2);
      EXPECT_NE(r.message.find(option), std::string::npos) << r.message;
    }
  }
  std::string help = parse({"--help"}).message;
  EXPECT_NE(help.find("--header-timeout S"), std::string::npos) << help;
  EXPECT_NE(help.find("(default 10)"), std::string::npos) << help;
  EXPECT_NE(help.find("--send-timeout S"), std::string::npos) << help;
}

TEST(Options, DeferAcceptIsOffByDefaultAndTakesWholeSeconds) {
  EXPECT_EQ(parse({}).config.defer_accept_s, 0);
  EXPECT_EQ(parse({"--defer-accept", "10"}).config.defer_accept_s, 10);
  EXPECT_EQ(parse({"--defer-accept=0"}).config.defer_accept_s, 0);
  for (const char* bad : {"-1", "1.5", "x", "3601"}) {
    parse_outcome r = parse({"--defer-accept", bad});
    EXPECT_FALSE(r.ok) << bad;
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.message.find("--defer-accept"), std::string::npos) << r.message;
  }
  EXPECT_NE(parse({"--help"}).message.find("--defer-accept S"), std::string::npos);
}

TEST(Options, SizesTakeBinarySuffixes) {
  size_t out = 0;
  ASSERT_TRUE(parse_size("64k", out));
  EXPECT_EQ(out, 64u * 1024);
  ASSERT_TRUE(parse_size("1m", out));
  EXPECT_EQ(out, 1024u * 1024);
  EXPECT_FALSE(parse_size("k", out));
  EXPECT_FALSE(parse_size("12q", out));
}

}  // namespace
}  // namespace httpbench::core
