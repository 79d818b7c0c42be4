// Command-line parsing.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config.hpp"

using namespace httpbench::loadgen;

namespace {

int parse(std::vector<std::string> args, config& cfg, std::string& error) {
  args.insert(args.begin(), "loadgen");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  bool help = false;
  return parse_command_line(static_cast<int>(args.size()), argv.data(), cfg, help, error);
}

}  // namespace

TEST(Cli, Durations) {
  EXPECT_EQ(parse_duration("10s"), 10 * ns_per_s);
  EXPECT_EQ(parse_duration("2m"), 120 * ns_per_s);
  EXPECT_EQ(parse_duration("250ms"), 250 * ns_per_ms);
  EXPECT_EQ(parse_duration("1.5"), 1'500'000'000);
  EXPECT_EQ(parse_duration("1h"), 3600 * ns_per_s);
  EXPECT_EQ(parse_duration("ten"), -1);
  EXPECT_EQ(parse_duration("5x"), -1);
}

TEST(Cli, ClosedLoopDefaults) {
  config cfg;
  std::string error;
  ASSERT_EQ(parse({"-c", "100", "-n", "5000", "-k", "http://127.0.0.1:8080/"}, cfg, error), 0)
      << error;
  EXPECT_EQ(cfg.mode, run_mode::closed);
  EXPECT_EQ(cfg.concurrency, 100u);
  EXPECT_EQ(cfg.requests, 5000u);
  EXPECT_TRUE(cfg.keep_alive);
  EXPECT_EQ(cfg.discard, 1000u);
  EXPECT_EQ(cfg.url, "http://127.0.0.1:8080/");
  EXPECT_EQ(cfg.command_line, "loadgen -c 100 -n 5000 -k http://127.0.0.1:8080/");
}

TEST(Cli, SpinDefaultsTo50MicrosecondsAndZeroTurnsItOff) {
  config a, b, c;
  std::string error;
  ASSERT_EQ(parse({"-n", "10", "http://h/"}, a, error), 0) << error;
  EXPECT_EQ(a.spin, 50 * ns_per_us);
  ASSERT_EQ(parse({"-n", "10", "--spin-us", "0", "http://h/"}, b, error), 0) << error;
  EXPECT_EQ(b.spin, 0);
  EXPECT_NE(parse({"-n", "10", "--spin-us", "2000000", "http://h/"}, c, error), 0);
  EXPECT_NE(error.find("--spin-us"), std::string::npos) << error;
}

TEST(Cli, WarmupTurnsDiscardOffUnlessGiven) {
  config a, b;
  std::string error;
  ASSERT_EQ(parse({"-d", "5s", "--warmup", "1s", "http://h/"}, a, error), 0);
  EXPECT_EQ(a.discard, 0u);
  ASSERT_EQ(parse({"-d", "5s", "--warmup", "1s", "--discard", "10", "http://h/"}, b, error), 0);
  EXPECT_EQ(b.discard, 10u);
}

TEST(Cli, OpenLoopAndSessions) {
  config o, s;
  std::string error;
  ASSERT_EQ(parse({"-R", "5000", "--arrival", "poisson", "-d", "2s", "http://h/"}, o, error), 0);
  EXPECT_EQ(o.mode, run_mode::open);
  EXPECT_EQ(o.arrival, arrival_process::poisson);
  ASSERT_EQ(parse({"--session-rate", "10", "--sessions", "50", "http://h/"}, s, error), 0) << error;
  EXPECT_EQ(s.mode, run_mode::sessions);
  EXPECT_TRUE(s.keep_alive);
}

TEST(Cli, RejectsUnboundedAndContradictoryRuns) {
  const std::vector<std::vector<std::string>> bad = {
      {"http://h/"},                                // no -n / -d
      {"-n", "10"},                                 // no URL
      {"-n", "10", "http://a/", "http://b/"},       // two URLs
      {"-n", "0", "http://h/"},                     // zero requests
      {"-c", "x", "-n", "1", "http://h/"},          // not a number
      {"--pipeline", "4", "-n", "1", "http://h/"},  // pipeline without -k
      {"-R", "10", "--session-rate", "1", "-d", "1s", "http://h/"},
      {"--session-rate", "1", "-n", "5", "http://h/"},
      {"--arrival", "bursty", "-R", "1", "-d", "1s", "http://h/"},
      {"--bogus", "http://h/"},
      {"-n"},
  };
  for (const auto& args : bad) {
    config cfg;
    std::string error;
    EXPECT_EQ(parse(args, cfg, error), 2) << args[0];
    EXPECT_FALSE(error.empty()) << args[0];
  }
}

TEST(Cli, OpenLoopWarmupAndCooldownAreTimesWhereTheRateIsKnown) {
  struct expectation {
    std::vector<std::string> args;
    nanos warmup;
    std::size_t discard;
  };
  const expectation cases[] = {
      // 1,000 samples at 1,000/s are 1 s, capped at 5% of a 4 s run.
      {{"-R", "1000", "-d", "4s"}, 200 * ns_per_ms, 0},
      // -n fixes the arrival span: 2,000 at 2,000/s is 1 s.
      {{"-R", "2000", "-n", "2000"}, 50 * ns_per_ms, 0},
      // A long run at a high rate: 1,000 samples' worth.
      {{"-R", "10000", "-d", "60s"}, 100 * ns_per_ms, 0},
      // An explicit --discard keeps the paper's rule; an explicit --warmup has no cool-down.
      {{"-R", "1000", "-d", "4s", "--discard", "100"}, 0, 100},
      {{"-R", "1000", "-d", "4s", "--warmup", "1s"}, ns_per_s, 0},
  };
  for (const auto& c : cases) {
    config cfg;
    std::string error;
    auto args = c.args;
    args.push_back("http://127.0.0.1:8080/");
    ASSERT_EQ(parse(args, cfg, error), 0) << error;
    EXPECT_EQ(cfg.warmup, c.warmup) << args[1];
    EXPECT_EQ(cfg.discard, c.discard) << args[1];
    const bool defaults = c.args.size() == 4;
    EXPECT_EQ(cfg.cooldown, defaults ? c.warmup : 0) << args[1];
  }
}

TEST(Cli, CooldownNeedsAPlannedEnd) {
  config cfg;
  std::string error;
  EXPECT_EQ(parse({"-c", "2", "-n", "100", "--cooldown", "1s", "http://127.0.0.1:8080/"}, cfg,
                  error),
            2);
  EXPECT_NE(error.find("--cooldown"), std::string::npos);
  config ok;
  ASSERT_EQ(parse({"-c", "2", "-d", "10s", "--cooldown", "1s", "http://127.0.0.1:8080/"}, ok,
                  error),
            0)
      << error;
  EXPECT_EQ(ok.cooldown, ns_per_s);
  EXPECT_EQ(ok.planned_span, 10 * ns_per_s);
  EXPECT_EQ(ok.discard, 0u);
  config none;
  EXPECT_EQ(parse({"-d", "2s", "--warmup", "1s", "--cooldown", "1s", "http://127.0.0.1:8080/"},
                  none, error),
            2);
}

TEST(Cli, OpenLoopConnectionsComeFromMinusC) {
  config cfg;
  std::string error;
  ASSERT_EQ(parse({"-R", "100", "-d", "1s", "-c", "8", "http://127.0.0.1:8080/"}, cfg, error), 0);
  EXPECT_TRUE(cfg.concurrency_given);
  EXPECT_EQ(cfg.concurrency, 8u);
  config without;
  ASSERT_EQ(parse({"-R", "100", "-d", "1s", "http://127.0.0.1:8080/"}, without, error), 0);
  EXPECT_FALSE(without.concurrency_given);
}
