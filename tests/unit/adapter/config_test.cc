#include "kpiscale/adapter/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "kpiscale/adapter/auth.h"

namespace kpiscale::adapter {
namespace {

absl::StatusOr<AdapterConfig> Parse(std::vector<std::string> args, int* exit_code) {
  std::vector<char*> argv;
  static std::string prog = "kpiscale-adapter";
  argv.push_back(prog.data());
  for (auto& a : args) argv.push_back(a.data());
  return ParseAdapterFlags(static_cast<int>(argv.size()), argv.data(), exit_code);
}

TEST(Config, Durations) {
  EXPECT_EQ(*ParseDurationMs("30s"), 30'000);
  EXPECT_EQ(*ParseDurationMs("1.5s"), 1'500);
  EXPECT_EQ(*ParseDurationMs("500ms"), 500);
  EXPECT_EQ(*ParseDurationMs("2m"), 120'000);
  EXPECT_EQ(*ParseDurationMs("5"), 5'000);
  EXPECT_FALSE(ParseDurationMs("five").ok());
  EXPECT_FALSE(ParseDurationMs("").ok());
}

TEST(Config, FlagsAndValidation) {
  int exit_code = -1;
  auto c = Parse({"--local", "--secure-port=0", "--window=10s", "--stale-after", "3s",
                  "--enable-write-metrics"},
                 &exit_code);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(exit_code, -1);
  EXPECT_TRUE(c->local);
  EXPECT_EQ(c->bind_address, "127.0.0.1");
  EXPECT_EQ(c->secure_port, 0);
  EXPECT_EQ(c->window_ms, 10'000);
  EXPECT_EQ(c->stale_after_ms, 3'000);
  EXPECT_TRUE(c->Validate().ok());
  auto w = Parse({"--enable-write-metrics"}, &exit_code);
  ASSERT_TRUE(w.ok());
  EXPECT_FALSE(w->Validate().ok());  // the write hook needs --local
  auto p = Parse({"--local", "--secure-port=70000"}, &exit_code);
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->Validate().ok());
  auto bad = Parse({"--window=abc"}, &exit_code);
  EXPECT_FALSE(bad.ok());
}

TEST(Config, ConfigFileUnderFlags) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("kpiscale-adapter-config-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto file = (dir / "c.yaml").string();
  {
    std::ofstream out(file);
    out << "local: true\nsecure-port: 7443\nwindow: 20s\ningest-port: 1234\n";
  }
  int exit_code = -1;
  auto c = Parse({"--config", file, "--ingest-port=0"}, &exit_code);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->local);
  EXPECT_EQ(c->secure_port, 7443);
  EXPECT_EQ(c->window_ms, 20'000);
  EXPECT_EQ(c->ingest_port, 0);  // the flag wins
  {
    std::ofstream out(file);
    out << "unknown-key: 1\n";
  }
  auto u = Parse({"--config", file}, &exit_code);
  EXPECT_FALSE(u.ok());
  std::filesystem::remove_all(dir);
}

TEST(Auth, AttributesFollowRequestInfo) {
  UserInfo u{"alice", "", {"g"}, {}};
  auto pods = AttributesFor("GET", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/pods/*/m", u);
  EXPECT_TRUE(pods.resource_request);
  EXPECT_EQ(pods.verb, "get");
  EXPECT_EQ(pods.ns, "ns");
  EXPECT_EQ(pods.resource, "pods");
  EXPECT_EQ(pods.name, "*");
  EXPECT_EQ(pods.subresource, "m");
  auto node = AttributesFor("GET", "/apis/custom.metrics.k8s.io/v1beta1/nodes/n1/m", u);
  EXPECT_EQ(node.ns, "");
  EXPECT_EQ(node.resource, "nodes");
  EXPECT_EQ(node.name, "n1");
  auto nsm = AttributesFor("GET", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/metrics/m", u);
  EXPECT_EQ(nsm.resource, "metrics");
  EXPECT_EQ(nsm.name, "m");
  auto ext = AttributesFor("GET", "/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/m", u);
  EXPECT_EQ(ext.verb, "list");
  EXPECT_EQ(ext.resource, "m");
  auto disc = AttributesFor("GET", "/apis/custom.metrics.k8s.io/v1beta1", u);
  EXPECT_FALSE(disc.resource_request);
  EXPECT_EQ(disc.path, "/apis/custom.metrics.k8s.io/v1beta1");
  auto local = NewLocalAuthenticator()->Authenticate(AuthRequest{});
  ASSERT_TRUE(local.ok() && local->has_value());
  EXPECT_EQ((*local)->name, "kpiscale:local");
  EXPECT_EQ(*NewAllowAllAuthorizer()->Authorize(pods), Decision::kAllow);
}

}  // namespace
}  // namespace kpiscale::adapter
