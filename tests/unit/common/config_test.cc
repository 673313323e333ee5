#include "kpiscale/common/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace kpiscale::common {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

// ---- durations -----------------------------------------------------------------------------

TEST(ParseDurationTest, GoVectors) {
  const std::vector<std::pair<std::string, std::chrono::nanoseconds>> cases = {
      {"0", 0ns},
      {"5s", 5s},
      {"30s", 30s},
      {"1478s", 1478s},
      {"-5s", -5s},
      {"+5s", 5s},
      {"-0", 0ns},
      {"+0", 0ns},
      {"5.0s", 5s},
      {"5.6s", 5600ms},
      {"5.s", 5s},
      {".5s", 500ms},
      {"1.004s", 1004ms},
      {"1.0040s", 1004ms},
      {"100.00100s", 100001ms},
      {"10ns", 10ns},
      {"11us", 11us},
      {"12\xc2\xb5s", 12us},
      {"12\xce\xbcs", 12us},
      {"13ms", 13ms},
      {"14s", 14s},
      {"15m", 15min},
      {"16h", 16h},
      {"3h30m", 3h + 30min},
      {"10.5s4m", 4min + 10500ms},
      {"-2m3.4s", -(2min + 3400ms)},
      {"1h2m3s4ms5us6ns", 1h + 2min + 3s + 4ms + 5us + 6ns},
      {"39h9m14.425s", 39h + 9min + 14425ms},
      {"52763797000ns", 52763797000ns},
      {"0.3333333333333333333h", 20min},
      {"9007199254740993ns", 9007199254740993ns},
      {"9223372036854775807ns", std::chrono::nanoseconds(9223372036854775807)},
      {"200ms", 200ms},
      {"1m30s", 90s},
  };
  for (const auto& [text, want] : cases) {
    const auto got = ParseDuration(text);
    ASSERT_TRUE(got.ok()) << text << ": " << got.status();
    EXPECT_EQ(got->count(), want.count()) << text;
  }
}

TEST(ParseDurationTest, RejectsWithReasons) {
  for (const char* bad : {"", "-", "s", ".", "-.", ".s", "+.s", "1.2.3s"}) {
    EXPECT_THAT(ParseDuration(bad).status().message(), HasSubstr("duration")) << bad;
  }
  EXPECT_THAT(ParseDuration("3").status().message(), HasSubstr("missing unit"));
  EXPECT_THAT(ParseDuration("1d").status().message(), HasSubstr("unknown unit \"d\""));
  EXPECT_THAT(ParseDuration("5 s").status().message(), HasSubstr("unknown unit \" s\""));
  EXPECT_THAT(ParseDuration("3000000h").status().message(), HasSubstr("overflows"));
  EXPECT_THAT(ParseDuration("9223372036854775808ns").status().message(), HasSubstr("overflows"));
  EXPECT_THAT(ParseDuration("2562047h47m16.854775808s").status().message(), HasSubstr("overflows"));
}

TEST(FormatDurationTest, GoStrings) {
  EXPECT_EQ(FormatDuration(0ns), "0s");
  EXPECT_EQ(FormatDuration(1ns), "1ns");
  EXPECT_EQ(FormatDuration(1100ns), "1.1\xc2\xb5s");
  EXPECT_EQ(FormatDuration(2200us), "2.2ms");
  EXPECT_EQ(FormatDuration(3300ms), "3.3s");
  EXPECT_EQ(FormatDuration(4min + 5s), "4m5s");
  EXPECT_EQ(FormatDuration(4min + 5001ms), "4m5.001s");
  EXPECT_EQ(FormatDuration(5h + 6min + 7001ms), "5h6m7.001s");
  EXPECT_EQ(FormatDuration(8min + 1ns), "8m0.000000001s");
  EXPECT_EQ(FormatDuration(1h), "1h0m0s");
  EXPECT_EQ(FormatDuration(-1s), "-1s");
  EXPECT_EQ(FormatDuration(200ms), "200ms");
  EXPECT_EQ(FormatDuration(std::chrono::nanoseconds(std::numeric_limits<int64_t>::max())),
            "2562047h47m16.854775807s");
  EXPECT_EQ(FormatDuration(std::chrono::nanoseconds(std::numeric_limits<int64_t>::min())),
            "-2562047h47m16.854775808s");
  for (std::chrono::nanoseconds d :
       std::vector<std::chrono::nanoseconds>{1ns, 999ns, 1500us, 90s, 3h + 1ns, -250ms}) {
    EXPECT_EQ(*ParseDuration(FormatDuration(d)), d) << FormatDuration(d);
  }
}

// ---- host:port -----------------------------------------------------------------------------

TEST(HostPortTest, ParsesForms) {
  EXPECT_EQ(*ParseHostPort("127.0.0.1:8080"), (HostPort{"127.0.0.1", 8080}));
  EXPECT_EQ(*ParseHostPort(":8080"), (HostPort{"", 8080}));
  EXPECT_EQ(*ParseHostPort("localhost:0"), (HostPort{"localhost", 0}));
  EXPECT_EQ(*ParseHostPort("[::1]:6443"), (HostPort{"::1", 6443}));
  EXPECT_EQ(*ParseHostPort("redis.default.svc:65535"), (HostPort{"redis.default.svc", 65535}));
  EXPECT_EQ(ParseHostPort("[::1]:6443")->ToString(), "[::1]:6443");
  EXPECT_EQ(ParseHostPort(":80")->ToString(), ":80");
}

TEST(HostPortTest, RejectsWithReasons) {
  EXPECT_THAT(ParseHostPort("localhost").status().message(), HasSubstr("missing port"));
  EXPECT_THAT(ParseHostPort("localhost:").status().message(), HasSubstr("missing port"));
  EXPECT_THAT(ParseHostPort("h:65536").status().message(), HasSubstr("not a number in 0..65535"));
  EXPECT_THAT(ParseHostPort("h:-1").status().message(), HasSubstr("not a number"));
  EXPECT_THAT(ParseHostPort("h:80x").status().message(), HasSubstr("not a number"));
  EXPECT_THAT(ParseHostPort("::1:80").status().message(), HasSubstr("IPv6 hosts in brackets"));
  EXPECT_THAT(ParseHostPort("[::1]80").status().message(), HasSubstr("missing port"));
  EXPECT_THAT(ParseHostPort("[::1:80").status().message(), HasSubstr("missing ']'"));
  EXPECT_THAT(ParseHostPort("a b:80").status().message(), HasSubstr("invalid character"));
  EXPECT_THAT(ParseHostPort("http://x:80").status().message(), Not(HasSubstr("OK")));
}

// ---- the loader ----------------------------------------------------------------------------

struct DemoConfig {
  int secure_port = 6443;
  std::chrono::milliseconds stale_after{5000};
  std::chrono::nanoseconds slo_threshold = 200ms;
  double ratio = 0.5;
  bool enable_profiling = false;
  std::string log_format = "text";
  std::string token;
  std::string cert_file;
  std::string key_file;
  HostPort listen{"0.0.0.0", 8080};
  std::vector<std::string> allowed_names = {"front-proxy-client"};
  int64_t max_pods = 10000;
};

void RegisterDemo(ConfigLoader& loader, DemoConfig& cfg) {
  loader.Add("secure-port", &cfg.secure_port, "HTTPS port").Range(0, 65535);
  loader.Add("stale-after", &cfg.stale_after, "staleness").Range(100ms, 10min);
  loader.Add("slo-threshold", &cfg.slo_threshold, "SLO").Env("KPISCALE_SLO_THRESHOLD");
  loader.Add("ratio", &cfg.ratio, "a ratio").Range(0.0, 1.0);
  loader.Add("enable-profiling", &cfg.enable_profiling, "pprof-like endpoints");
  loader.Add("log-format", &cfg.log_format, "text or json").OneOf({"text", "json"});
  loader.Add("token", &cfg.token, "bearer token").Secret().Env("KPISCALE_TOKEN");
  loader.Add("tls-cert-file", &cfg.cert_file, "certificate");
  loader.Add("tls-private-key-file", &cfg.key_file, "key");
  loader.Add("listen", &cfg.listen, "listen address").Env("KPISCALE_LISTEN");
  loader.Add("requestheader-allowed-names", &cfg.allowed_names, "allowed CNs");
  loader.Add("max-pods", &cfg.max_pods, "pods").Range(1, 1'000'000);
  loader.AddCheck([&cfg]() -> absl::Status {
    if (cfg.cert_file.empty() != cfg.key_file.empty()) {
      return absl::InvalidArgumentError(
          "--tls-cert-file and --tls-private-key-file must be given together");
    }
    return absl::OkStatus();
  });
}

class ConfigLoaderTest : public ::testing::Test {
 protected:
  ConfigLoaderTest() : loader_("kpiscale-demo", "demo program", "1.2.3") {
    RegisterDemo(loader_, cfg_);
  }

  absl::StatusOr<ConfigOutcome> Run(std::vector<std::string> args) {
    return loader_.Parse(args, [this](const std::string& name) -> std::optional<std::string> {
      const auto it = env_.find(name);
      if (it == env_.end()) return std::nullopt;
      return it->second;
    });
  }

  std::string WriteFile(const std::string& text) {
    const std::string path = testing::TempDir() + "/kpiscale_config_test_" +
                             testing::UnitTest::GetInstance()->current_test_info()->name() +
                             ".yaml";
    std::ofstream(path) << text;
    return path;
  }

  DemoConfig cfg_;
  ConfigLoader loader_;
  std::map<std::string, std::string> env_;
};

TEST_F(ConfigLoaderTest, DefaultsStandWhenNothingIsGiven) {
  const auto outcome = Run({});
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(outcome->action, ConfigOutcome::Action::kRun);
  EXPECT_EQ(cfg_.secure_port, 6443);
  EXPECT_EQ(cfg_.stale_after, 5s);
  EXPECT_EQ(loader_.SourceOf("secure-port"), ConfigSource::kDefault);
}

TEST_F(ConfigLoaderTest, KubernetesStyleFlags) {
  const auto outcome =
      Run({"--secure-port=7443", "--stale-after", "2s", "--slo-threshold=1m30s",
           "--enable-profiling", "--log-format=json", "--listen=[::1]:9000", "--ratio=0.25",
           "--requestheader-allowed-names=a,b", "--requestheader-allowed-names", "c"});
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(cfg_.secure_port, 7443);
  EXPECT_EQ(cfg_.stale_after, 2s);
  EXPECT_EQ(cfg_.slo_threshold, 90s);
  EXPECT_TRUE(cfg_.enable_profiling);
  EXPECT_EQ(cfg_.log_format, "json");
  EXPECT_EQ(cfg_.listen, (HostPort{"::1", 9000}));
  EXPECT_EQ(cfg_.ratio, 0.25);
  EXPECT_EQ(cfg_.allowed_names, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(loader_.SourceOf("secure-port"), ConfigSource::kFlag);
}

TEST_F(ConfigLoaderTest, BoolFlagsTakeExplicitValuesAndLastFlagWins) {
  cfg_.enable_profiling = true;
  ASSERT_TRUE(Run({"--enable-profiling=false", "--secure-port=1", "--secure-port=2"}).ok());
  EXPECT_FALSE(cfg_.enable_profiling);
  EXPECT_EQ(cfg_.secure_port, 2);
  EXPECT_THAT(Run({"--enable-profiling=maybe"}).status().message(),
              HasSubstr("flag --enable-profiling: \"maybe\" is not a boolean"));
}

TEST_F(ConfigLoaderTest, BadFlagsAreNamed) {
  EXPECT_THAT(Run({"--bogus=1"}).status().message(), HasSubstr("--bogus"));
  EXPECT_THAT(Run({"--secure-port=abc"}).status().message(),
              HasSubstr("flag --secure-port: \"abc\" is not an integer"));
  EXPECT_THAT(Run({"--stale-after=5"}).status().message(),
              HasSubstr("flag --stale-after: missing unit"));
  EXPECT_THAT(Run({"--stale-after=1500us"}).status().message(),
              HasSubstr("finer than this option's resolution (1ms)"));
  EXPECT_THAT(Run({"--listen=nohost"}).status().message(), HasSubstr("flag --listen: address"));
  EXPECT_THAT(Run({"positional"}).status().message(), HasSubstr("positional"));
}

TEST_F(ConfigLoaderTest, RangesAndOneOfAreCheckedAndAllProblemsReported) {
  const auto outcome = Run({"--secure-port=70000", "--stale-after=50ms", "--ratio=1.5",
                            "--log-format=xml", "--max-pods=0"});
  ASSERT_FALSE(outcome.ok());
  const std::string msg(outcome.status().message());
  EXPECT_THAT(msg, HasSubstr("--secure-port: 70000 is out of range [0, 65535] (from flag)"));
  EXPECT_THAT(msg, HasSubstr("--stale-after: 50ms is out of range [100ms, 10m0s]"));
  EXPECT_THAT(msg, HasSubstr("--ratio: 1.5 is out of range [0, 1]"));
  EXPECT_THAT(msg, HasSubstr("--log-format: \"xml\" is not one of text, json"));
  EXPECT_THAT(msg, HasSubstr("--max-pods: 0 is out of range"));
  EXPECT_THAT(Run({"--secure-port=99999999999"}).status().message(),
              HasSubstr("does not fit this option's type"));
}

TEST_F(ConfigLoaderTest, YamlFileKeysAreFlagNames) {
  const std::string path = WriteFile(
      "secure-port: 8443\n"
      "stale-after: 3s\n"
      "enable-profiling: true\n"
      "listen: \"127.0.0.1:0\"\n"
      "requestheader-allowed-names:\n  - x\n  - y\n"
      "token: s3cret\n");
  const auto outcome = Run({"--config", path});
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(cfg_.secure_port, 8443);
  EXPECT_EQ(cfg_.stale_after, 3s);
  EXPECT_TRUE(cfg_.enable_profiling);
  EXPECT_EQ(cfg_.listen, (HostPort{"127.0.0.1", 0}));
  EXPECT_EQ(cfg_.allowed_names, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(cfg_.token, "s3cret");
  EXPECT_EQ(loader_.SourceOf("secure-port"), ConfigSource::kFile);
  EXPECT_EQ(loader_.config_file(), path);
}

TEST_F(ConfigLoaderTest, UnknownAndMalformedFileKeysAreRejectedByName) {
  const std::string path = WriteFile(
      "secure-port: 8443\n"
      "secure_port: 1\n"
      "stale-aftr: 1s\n"
      "completely-unknown: 1\n"
      "listen:\n"
      "ratio: {a: 1}\n"
      "secure-port: 9443\n");
  const auto outcome = Run({"--config=" + path});
  ASSERT_FALSE(outcome.ok());
  const std::string msg(outcome.status().message());
  EXPECT_THAT(msg,
              HasSubstr("line 2: unknown key \"secure_port\" (did you mean \"secure-port\"?)"));
  EXPECT_THAT(msg, HasSubstr("line 3: unknown key \"stale-aftr\" (did you mean \"stale-after\"?)"));
  EXPECT_THAT(msg, HasSubstr("line 4: unknown key \"completely-unknown\""));
  EXPECT_THAT(msg, HasSubstr("line 5: key \"listen\": has no value"));
  EXPECT_THAT(msg, HasSubstr("line 6: key \"ratio\": must be a single value or a list, not a map"));
  EXPECT_THAT(msg, HasSubstr("line 7: key \"secure-port\" appears twice"));
}

TEST_F(ConfigLoaderTest, FileErrors) {
  EXPECT_THAT(Run({"--config=/nonexistent/kpiscale.yaml"}).status().message(),
              HasSubstr("config file /nonexistent/kpiscale.yaml: cannot be read"));
  EXPECT_THAT(Run({"--config=" + WriteFile("a: [1, 2\n")}).status().message(), HasSubstr("line "));
  EXPECT_THAT(Run({"--config=" + WriteFile("- just\n- a list\n")}).status().message(),
              HasSubstr("must be a YAML map"));
  EXPECT_THAT(Run({"--config=" + WriteFile("secure-port: [1, 2]\n")}).status().message(),
              HasSubstr("key \"secure-port\": must be a single value, not a list"));
  EXPECT_TRUE(Run({"--config=" + WriteFile("")}).ok());
  EXPECT_TRUE(Run({"--config=" + WriteFile("# only a comment\n")}).ok());
}

TEST_F(ConfigLoaderTest, PrecedenceIsFlagThenEnvThenFileThenDefault) {
  const std::string path = WriteFile(
      "slo-threshold: 300ms\n"
      "listen: \"127.0.0.1:1000\"\n"
      "token: from-file\n"
      "secure-port: 1111\n");
  env_["KPISCALE_SLO_THRESHOLD"] = "400ms";
  env_["KPISCALE_LISTEN"] = "127.0.0.1:2000";
  const auto outcome = Run({"--config", path, "--listen=127.0.0.1:3000"});
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(cfg_.slo_threshold, 400ms);                   // env over file
  EXPECT_EQ(cfg_.listen, (HostPort{"127.0.0.1", 3000}));  // flag over env and file
  EXPECT_EQ(cfg_.token, "from-file");                     // file over default
  EXPECT_EQ(cfg_.secure_port, 1111);
  EXPECT_EQ(cfg_.ratio, 0.5);  // default
  EXPECT_EQ(loader_.SourceOf("slo-threshold"), ConfigSource::kEnv);
  EXPECT_EQ(loader_.SourceOf("listen"), ConfigSource::kFlag);
  EXPECT_EQ(loader_.SourceOf("token"), ConfigSource::kFile);
  EXPECT_EQ(loader_.SourceOf("ratio"), ConfigSource::kDefault);
}

TEST_F(ConfigLoaderTest, BadEnvironmentValueIsNamedButAFlagOverridesIt) {
  env_["KPISCALE_SLO_THRESHOLD"] = "fast";
  EXPECT_THAT(Run({}).status().message(),
              HasSubstr("environment variable KPISCALE_SLO_THRESHOLD (for --slo-threshold): "
                        "invalid duration \"fast\""));
  EXPECT_TRUE(Run({"--slo-threshold=1s"}).ok());
}

TEST_F(ConfigLoaderTest, CrossChecksRunAfterLoading) {
  EXPECT_THAT(Run({"--tls-cert-file=/c.pem"}).status().message(),
              HasSubstr("--tls-cert-file and --tls-private-key-file must be given together"));
  EXPECT_TRUE(Run({"--tls-cert-file=/c.pem", "--tls-private-key-file=/k.pem"}).ok());
}

TEST(ConfigLoaderRequiredTest, RequiredOptionsNameTheirSources) {
  std::string uid;
  ConfigLoader loader("p", "d");
  loader.Add("pod-uid", &uid, "pod UID").Required().Env("POD_UID");
  const auto missing = loader.Parse(
      std::vector<std::string>{}, [](const std::string&) { return std::optional<std::string>(); });
  EXPECT_THAT(
      missing.status().message(),
      HasSubstr("--pod-uid is required (flag, env POD_UID or config file key \"pod-uid\")"));
  ConfigLoader again("p", "d");
  again.Add("pod-uid", &uid, "pod UID").Required().Env("POD_UID");
  ASSERT_TRUE(again
                  .Parse(std::vector<std::string>{},
                         [](const std::string&) { return std::optional<std::string>("abc"); })
                  .ok());
  EXPECT_EQ(uid, "abc");
}

TEST_F(ConfigLoaderTest, ValidateHelpAndVersion) {
  auto outcome = Run({"--validate", "--secure-port=1"});
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(outcome->action, ConfigOutcome::Action::kValidate);
  EXPECT_FALSE(Run({"--validate", "--secure-port=-1"}).ok());

  outcome = Run({"--version"});
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(outcome->action, ConfigOutcome::Action::kExit);
  EXPECT_EQ(outcome->output, "kpiscale-demo 1.2.3\n");

  outcome = Run({"--help"});
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(outcome->action, ConfigOutcome::Action::kExit);
  EXPECT_THAT(outcome->output, HasSubstr("--secure-port"));
  EXPECT_THAT(outcome->output, HasSubstr("HTTPS port (default 6443)"));
  EXPECT_THAT(outcome->output, HasSubstr("[env KPISCALE_SLO_THRESHOLD]"));
  EXPECT_THAT(outcome->output, HasSubstr("--config"));
  EXPECT_THAT(outcome->output, HasSubstr("--validate"));
  EXPECT_EQ(outcome->output, loader_.Help());

  std::FILE* sink = std::tmpfile();
  ASSERT_NE(sink, nullptr);
  EXPECT_EQ(ExitCodeForConfigOutcome(Run({"--bogus"}), sink, sink), 2);
  EXPECT_EQ(ExitCodeForConfigOutcome(Run({"--version"}), sink, sink), 0);
  EXPECT_EQ(ExitCodeForConfigOutcome(Run({"--validate"}), sink, sink), std::nullopt);
  std::fclose(sink);
}

TEST_F(ConfigLoaderTest, EffectiveConfigRedactsSecretsAndLoadsBack) {
  env_["KPISCALE_TOKEN"] = "very-secret";
  ASSERT_TRUE(Run({"--secure-port=7000", "--slo-threshold=250ms",
                   "--requestheader-allowed-names=a,b c", "--log-format=json"})
                  .ok());
  const std::string yaml = loader_.EffectiveYaml();
  EXPECT_THAT(yaml, Not(HasSubstr("very-secret")));
  EXPECT_THAT(yaml, HasSubstr("token: <redacted>"));
  EXPECT_THAT(yaml, HasSubstr("secure-port: 7000  # flag"));
  EXPECT_THAT(yaml, HasSubstr("# env"));
  const std::string line = loader_.EffectiveLogfmt();
  EXPECT_THAT(line, HasSubstr("secure-port=7000"));
  EXPECT_THAT(line, HasSubstr("token=<redacted>"));
  EXPECT_THAT(line, HasSubstr("slo-threshold=250ms"));
  EXPECT_THAT(line, HasSubstr("tls-cert-file=\"\""));
  EXPECT_THAT(line, Not(HasSubstr("very-secret")));

  // The effective YAML (minus the redacted secret) reproduces the configuration.
  DemoConfig before = cfg_;
  std::string reload = yaml;
  reload.replace(reload.find("token: <redacted>"), 17, "token: very-secret");
  const std::string path = WriteFile(reload);
  DemoConfig fresh;
  ConfigLoader loader("kpiscale-demo", "demo program");
  RegisterDemo(loader, fresh);
  ASSERT_TRUE(loader.Parse(std::vector<std::string>{"--config", path}, nullptr).ok()) << reload;
  EXPECT_EQ(fresh.secure_port, before.secure_port);
  EXPECT_EQ(fresh.slo_threshold, before.slo_threshold);
  EXPECT_EQ(fresh.allowed_names, before.allowed_names);
  EXPECT_EQ(fresh.listen, before.listen);
  EXPECT_EQ(fresh.log_format, "json");
  EXPECT_EQ(fresh.token, "very-secret");
  EXPECT_EQ(loader.SourceOf("secure-port"), ConfigSource::kFile);
}

}  // namespace
}  // namespace kpiscale::common
