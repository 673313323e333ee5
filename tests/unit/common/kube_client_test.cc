#include "kpiscale/common/kube_client.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

namespace kpiscale::common {
namespace {

class KubeconfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmpl = (std::filesystem::temp_directory_path() / "kpiscale-kubeconfig-XXXXXX").string();
    dir_ = mkdtemp(tmpl.data());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    const std::string p = dir_ + "/" + name;
    std::ofstream(p) << text;
    return p;
  }
  std::string dir_;
};

constexpr char kTwoContexts[] = R"(apiVersion: v1
kind: Config
current-context: prod
clusters:
- name: c1
  cluster:
    server: https://10.0.0.1:6443
    certificate-authority: ca.crt
- name: c2
  cluster:
    server: https://kube.example:443
    certificate-authority-data: Q0EtREFUQQ==
    insecure-skip-tls-verify: false
contexts:
- name: dev
  context: {cluster: c1, user: u1}
- name: prod
  context: {cluster: c2, user: u2}
users:
- name: u1
  user:
    client-certificate: u1.crt
    client-key: u1.key
- name: u2
  user:
    token: s3cr3t-token
)";

TEST_F(KubeconfigTest, CurrentContextWithInlineCaAndToken) {
  auto c = LoadKubeconfig(Write("config", kTwoContexts));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://kube.example:443");
  EXPECT_EQ(c->ca_pem, "CA-DATA");
  EXPECT_EQ(c->token, "s3cr3t-token");
  EXPECT_TRUE(c->client_cert_pem.empty());
  // Describe names the auth kind, never the secret.
  EXPECT_EQ(c->Describe().find("s3cr3t"), std::string::npos);
  EXPECT_NE(c->Describe().find("auth=token"), std::string::npos);
}

TEST_F(KubeconfigTest, NamedContextWithFilesRelativeToTheKubeconfig) {
  Write("ca.crt", "CA-FILE");
  Write("u1.crt", "CERT");
  Write("u1.key", "KEY");
  auto c = LoadKubeconfig(Write("config", kTwoContexts), "dev");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://10.0.0.1:6443");
  EXPECT_EQ(c->ca_pem, "CA-FILE");
  EXPECT_EQ(c->client_cert_pem, "CERT");
  EXPECT_EQ(c->client_key_pem, "KEY");
  EXPECT_EQ(c->Describe().find("KEY"), std::string::npos);
}

TEST_F(KubeconfigTest, ErrorsAreClear) {
  EXPECT_FALSE(LoadKubeconfig(dir_ + "/missing").ok());
  auto c = LoadKubeconfig(Write("config", kTwoContexts), "nope");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("context nope not found"), std::string::npos);
  // dev's files do not exist.
  EXPECT_FALSE(LoadKubeconfig(Write("config2", kTwoContexts), "dev").ok());
  EXPECT_FALSE(LoadKubeconfig(Write("bad", "current-context: [")).ok());
  EXPECT_FALSE(LoadKubeconfig(Write("noctx", "apiVersion: v1\n")).ok());
}

TEST_F(KubeconfigTest, InClusterNeedsTheEnvironmentAndFiles) {
  unsetenv("KUBERNETES_SERVICE_HOST");
  EXPECT_EQ(LoadInClusterConfig(dir_).status().code(), absl::StatusCode::kFailedPrecondition);
  setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  EXPECT_FALSE(LoadInClusterConfig(dir_).ok());  // no ca.crt
  Write("ca.crt", "CA");
  Write("token", "tok\n");
  auto c = LoadInClusterConfig(dir_);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://10.96.0.1:443");
  EXPECT_EQ(c->token_file, dir_ + "/token");
  EXPECT_EQ(c->ca_pem, "CA");
  unsetenv("KUBERNETES_SERVICE_HOST");
  unsetenv("KUBERNETES_SERVICE_PORT");
}

TEST(KubeClientTest, RejectsNonHttpsServers) {
  KubeConfig c;
  c.server = "http://10.0.0.1";
  EXPECT_FALSE(KubeClient::Create(c).ok());
  c.server = "https://10.0.0.1:99999";
  EXPECT_FALSE(KubeClient::Create(c).ok());
  c.server = "https://[::1]:6443";
  EXPECT_TRUE(KubeClient::Create(c).ok());
}

TEST(KubeClientTest, UnreachableServerIsUnavailableAfterRetries) {
  KubeConfig c;
  c.server = "https://127.0.0.1:1";  // nothing listens on port 1
  c.token = "secret-token-value";
  KubeClient::Options o;
  o.max_attempts = 2;
  o.initial_backoff = std::chrono::milliseconds(1);
  auto client = KubeClient::Create(c, o);
  ASSERT_TRUE(client.ok());
  auto r = (*client)->Get("/api");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(r.status().message().find("secret-token-value"), std::string::npos);
}

TEST(KubeClientTest, StreamToAnUnreachableServerIsUnavailableWithoutRetry) {
  KubeConfig c;
  c.server = "https://127.0.0.1:1";
  c.token = "secret-token-value";
  auto client = KubeClient::Create(c);
  ASSERT_TRUE(client.ok());
  int lines = 0;
  auto r = (*client)->Stream(
      "/api/v1/namespaces/kube-system/configmaps?watch=1",
      [&](std::string_view) {
        ++lines;
        return true;
      },
      std::chrono::seconds(5));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(r.status().message().find("secret-token-value"), std::string::npos);
  EXPECT_EQ(lines, 0);
}

TEST(KubeClientTest, CancelledStreamDoesNotStart) {
  KubeConfig c;
  c.server = "https://127.0.0.1:1";
  auto client = KubeClient::Create(c);
  ASSERT_TRUE(client.ok());
  StreamCanceller canceller;
  EXPECT_FALSE(canceller.cancelled());
  canceller.Cancel();
  EXPECT_TRUE(canceller.cancelled());
  auto r = (*client)->Stream(
      "/api", [](std::string_view) { return true; }, std::chrono::seconds(5), &canceller);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace kpiscale::common
