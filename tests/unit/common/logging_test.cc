#include "kpiscale/common/logging.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_split.h"
#include "proto/report.pb.h"

namespace kpiscale::common {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::StartsWith;

class LoggingTest : public ::testing::Test {
 protected:
  void Init(LogFormat format, const std::string& level = "info") {
    out_.str("");
    LoggingOptions options;
    options.format = format;
    options.level = level;
    options.sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    ASSERT_TRUE(InitLogging(options).ok());
  }
  void TearDown() override {
    LoggingOptions defaults;
    defaults.level = "info";
    ASSERT_TRUE(InitLogging(defaults).ok());
  }
  std::vector<std::string> Lines() {
    std::vector<std::string> lines = absl::StrSplit(out_.str(), '\n', absl::SkipEmpty());
    return lines;
  }
  std::ostringstream out_;
};

TEST_F(LoggingTest, TextLinesAreLogfmt) {
  Init(LogFormat::kText);
  Logger(loggers::kAdapterApi)->info("msg=request_done path={} code={}", "/apis", 200);
  Logger(loggers::kSidecarProxy)->warn("upstream refused the connection");
  const auto lines = Lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(lines[0], MatchesRegex("ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{3}Z "
                                     "level=info logger=adapter.api msg=request_done path=/apis "
                                     "code=200"));
  // A body that is not logfmt is wrapped, so every line stays parseable.
  EXPECT_THAT(lines[1], HasSubstr("level=warn logger=sidecar.proxy "
                                  "msg=\"upstream refused the connection\""));
}

TEST_F(LoggingTest, JsonLinesAreOneEscapedObjectEach) {
  Init(LogFormat::kJson);
  Logger(loggers::kAdapterIngest)
      ->error("msg=push_failed pod={} err={}", "web-1",
              LogfmtValue("bad \"token\"\n\ttab \x01 and \xff"));
  Logger(loggers::kAdapterIngest)->info("plain text with \"quotes\" and level=ignored? no");
  Logger(loggers::kAdapterIngest)->info("msg=x level=shadow msg=again");
  const auto lines = Lines();
  ASSERT_EQ(lines.size(), 3u);
  const auto first = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(first["level"], "error");
  EXPECT_EQ(first["logger"], "adapter.ingest");
  EXPECT_EQ(first["msg"], "push_failed");
  EXPECT_EQ(first["pod"], "web-1");
  const std::string err = first["err"];
  EXPECT_THAT(err, StartsWith("bad \"token\"\n\ttab \x01 and "));
  EXPECT_THAT(err, HasSubstr("\xef\xbf\xbd"));  // invalid UTF-8 became U+FFFD
  EXPECT_THAT(std::string(first["ts"]), MatchesRegex("[0-9-]{10}T[0-9:.]{12}Z"));

  const auto second = nlohmann::json::parse(lines[1]);
  EXPECT_EQ(second["msg"], "plain text with \"quotes\" and level=ignored? no");

  const auto third = nlohmann::json::parse(lines[2]);
  EXPECT_EQ(third["level"], "info");
  EXPECT_EQ(third["_level"], "shadow");
  EXPECT_EQ(third["msg"], "x");
  EXPECT_EQ(third["_msg"], "again");
}

TEST_F(LoggingTest, LevelSpecSetsDefaultAndPerLoggerLevels) {
  Init(LogFormat::kText, "warn,adapter.api=debug");
  Logger("adapter.api")->debug("msg=shown");
  Logger("adapter.store")->info("msg=hidden");
  Logger("adapter.store")->warn("msg=shown_too");
  const auto lines = Lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(lines[0], HasSubstr("msg=shown"));
  EXPECT_THAT(lines[1], HasSubstr("msg=shown_too"));
  // Re-initialising reconfigures loggers created before.
  Init(LogFormat::kText, "error");
  Logger("adapter.api")->warn("msg=hidden");
  EXPECT_TRUE(Lines().empty());
}

TEST_F(LoggingTest, EmptyLevelFallsBackToSpdlogLevelEnv) {
  ASSERT_EQ(setenv("SPDLOG_LEVEL", "error", 1), 0);
  Init(LogFormat::kText, "");
  unsetenv("SPDLOG_LEVEL");
  Logger("cli")->warn("msg=hidden");
  Logger("cli")->error("msg=shown");
  ASSERT_EQ(Lines().size(), 1u);
}

TEST(LogFlagsTest, DeclaresLevelAndFormatWithSpdlogLevelEnv) {
  LogFlags flags;
  ConfigLoader loader("p", "d");
  AddLogFlags(loader, &flags);
  auto env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "SPDLOG_LEVEL") return "debug,adapter.api=trace";
    return std::nullopt;
  };
  ASSERT_TRUE(loader.Parse(std::vector<std::string>{"--log-format=json"}, env).ok());
  EXPECT_EQ(flags.level, "debug,adapter.api=trace");
  EXPECT_EQ(flags.format, "json");
  ASSERT_TRUE(loader.Parse(std::vector<std::string>{"--log-level=warn"}, env).ok());
  EXPECT_EQ(flags.level, "warn");  // the flag wins over SPDLOG_LEVEL
  EXPECT_THAT(loader.Parse(std::vector<std::string>{"--log-level=loud"}, env).status().message(),
              HasSubstr("--log-level: log level \"loud\""));
  EXPECT_THAT(loader.Parse(std::vector<std::string>{"--log-format=xml"}, env).status().message(),
              HasSubstr("--log-format: log format \"xml\" is not one of text, json"));
}

TEST(LevelSpecTest, ParsesAndRejects) {
  const auto spec = ParseLevelSpec(" debug , sidecar.proxy = trace,adapter.api=off");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->default_level, spdlog::level::debug);
  EXPECT_EQ(spec->per_logger.at("sidecar.proxy"), spdlog::level::trace);
  EXPECT_EQ(spec->per_logger.at("adapter.api"), spdlog::level::off);
  EXPECT_EQ(ParseLevelSpec("WARNING")->default_level, spdlog::level::warn);
  EXPECT_THAT(ParseLevelSpec("loud").status().message(), HasSubstr("log level \"loud\""));
  EXPECT_THAT(ParseLevelSpec("info,debug").status().message(), HasSubstr("default level twice"));
  EXPECT_THAT(ParseLevelSpec("=debug").status().message(), HasSubstr("without a logger name"));
  EXPECT_EQ(*ParseLogFormat("json"), LogFormat::kJson);
  EXPECT_EQ(*ParseLogFormat("text"), LogFormat::kText);
  EXPECT_THAT(ParseLogFormat("xml").status().message(), HasSubstr("not one of text, json"));
}

TEST(LogfmtTest, QuotesOnlyWhenNeededAndRoundTrips) {
  EXPECT_EQ(LogfmtValue("plain"), "plain");
  EXPECT_EQ(LogfmtValue(""), "\"\"");
  EXPECT_EQ(LogfmtValue("a b"), "\"a b\"");
  EXPECT_EQ(LogfmtValue("k=v"), "\"k=v\"");
  for (const std::string v : {"", "a b", "q\"uote", "back\\slash", "nl\nx", "ctl\x02", "k=v"}) {
    const auto fields = ParseLogfmt("key=" + LogfmtValue(v) + " next=1");
    ASSERT_TRUE(fields.has_value()) << v;
    ASSERT_EQ(fields->size(), 2u);
    EXPECT_EQ((*fields)[0].second, v);
    EXPECT_EQ((*fields)[1].second, "1");
  }
  EXPECT_FALSE(ParseLogfmt("no pairs here").has_value());
  EXPECT_FALSE(ParseLogfmt("k=\"unterminated").has_value());
  EXPECT_FALSE(ParseLogfmt("k=\"x\"y").has_value());
  EXPECT_FALSE(ParseLogfmt("").has_value());
  EXPECT_TRUE(ParseLogfmt("empty= other=2").has_value());
}

TEST(RateLimitedLogTest, AllowsNPerPeriodAndReportsSuppressed) {
  FakeClock clock;
  RateLimitedLog limiter(clock, 2, std::chrono::seconds(10));
  EXPECT_EQ(limiter.Acquire(), std::optional<uint64_t>(0));
  EXPECT_EQ(limiter.Acquire(), std::optional<uint64_t>(0));
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(limiter.Acquire().has_value());
  clock.Advance(std::chrono::seconds(9));
  EXPECT_FALSE(limiter.Acquire().has_value());
  EXPECT_EQ(limiter.suppressed_total(), 6u);
  clock.Advance(std::chrono::seconds(1));
  EXPECT_EQ(limiter.Acquire(), std::optional<uint64_t>(6));
  EXPECT_EQ(limiter.Acquire(), std::optional<uint64_t>(0));
  EXPECT_FALSE(limiter.Acquire().has_value());
  EXPECT_EQ(limiter.suppressed_total(), 7u);
}

TEST_F(LoggingTest, RateLimitedLogWritesSuppressedCount) {
  Init(LogFormat::kText);
  FakeClock clock;
  RateLimitedLog limiter(clock, 1, std::chrono::seconds(1));
  auto log = Logger(loggers::kSidecarRedis);
  for (int i = 0; i < 4; ++i) {
    KPISCALE_LOG_RATE_LIMITED(limiter, log, spdlog::level::warn, "msg=redis_down attempt={}", i);
  }
  clock.Advance(std::chrono::seconds(1));
  KPISCALE_LOG_RATE_LIMITED(limiter, log, spdlog::level::warn, "msg=redis_down attempt={}", 4);
  // Below the level: not even counted.
  KPISCALE_LOG_RATE_LIMITED(limiter, log, spdlog::level::debug, "msg=noise");
  const auto lines = Lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(lines[0], HasSubstr("msg=redis_down attempt=0"));
  EXPECT_THAT(lines[1], HasSubstr("msg=redis_down attempt=4 suppressed=3"));
  EXPECT_EQ(limiter.suppressed_total(), 3u);
}

TEST_F(LoggingTest, LogEveryNLogsFirstAndEveryNth) {
  Init(LogFormat::kText);
  auto log = Logger(loggers::kSidecarPostgres);
  for (int i = 0; i < 7; ++i) {
    KPISCALE_LOG_EVERY_N(log, spdlog::level::warn, 3, "msg=query_failed i={}", i);
  }
  const auto lines = Lines();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_THAT(lines[0], HasSubstr("msg=query_failed i=0"));
  EXPECT_THAT(lines[0], ::testing::Not(HasSubstr("occurrences")));
  EXPECT_THAT(lines[1], HasSubstr("msg=query_failed i=3 occurrences=4"));
  EXPECT_THAT(lines[2], HasSubstr("msg=query_failed i=6 occurrences=7"));
}

TEST_F(LoggingTest, ProtobufComplaintsGoThroughTheRateLimitedLogger) {
  Init(LogFormat::kText);
  // A proto3 string with invalid UTF-8: libprotobuf logs an error per parse.
  kpiscale::v1::PodIdentity pod;
  pod.set_namespace_("ok");
  std::string wire = pod.SerializeAsString();
  wire.back() = '\xff';
  for (int i = 0; i < 50; ++i) {
    kpiscale::v1::PodIdentity parsed;
    EXPECT_FALSE(parsed.ParseFromString(wire));
  }
  const auto lines = Lines();
  ASSERT_GE(lines.size(), 1u);
  EXPECT_LE(lines.size(), 10u);
  EXPECT_THAT(lines[0], HasSubstr("logger=protobuf msg=protobuf_log"));
  EXPECT_THAT(lines[0], HasSubstr("invalid UTF-8"));
}

TEST_F(LoggingTest, ConcurrentLoggingKeepsLinesWhole) {
  Init(LogFormat::kJson);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      auto log = Logger("hpa");
      for (int i = 0; i < 200; ++i) log->info("msg=tick thread={} i={}", t, i);
    });
  }
  for (auto& th : threads) th.join();
  const auto lines = Lines();
  ASSERT_EQ(lines.size(), 800u);
  for (const auto& line : lines) EXPECT_EQ(nlohmann::json::parse(line)["msg"], "tick");
}

}  // namespace
}  // namespace kpiscale::common
