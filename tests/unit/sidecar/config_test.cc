#include "kpiscale/sidecar/config.h"

#include <cstring>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kpiscale::sidecar {
namespace {

TEST(ParseDurationTest, Units) {
  EXPECT_DOUBLE_EQ(ParseDuration("200ms")->count(), 0.2);
  EXPECT_DOUBLE_EQ(ParseDuration("1.5s")->count(), 1.5);
  EXPECT_DOUBLE_EQ(ParseDuration("0.25")->count(), 0.25);
  EXPECT_DOUBLE_EQ(ParseDuration("2m")->count(), 120);
  EXPECT_FALSE(ParseDuration("abc").ok());
  EXPECT_FALSE(ParseDuration("-1s").ok());
  EXPECT_FALSE(ParseDuration("").ok());
}

TEST(ParsePodLabelsTest, DownwardApiFormat) {
  auto labels = ParsePodLabels("app=\"checkout\"\npod-template-hash=\"5d8\"\nx=\"a\\\"b\"\n");
  ASSERT_TRUE(labels.ok()) << labels.status();
  EXPECT_EQ(labels->at("app"), "checkout");
  EXPECT_EQ(labels->at("pod-template-hash"), "5d8");
  EXPECT_EQ(labels->at("x"), "a\"b");
  EXPECT_FALSE(ParsePodLabels("app=checkout\n").ok());
}

TEST(ParseWorkloadTest, Kinds) {
  EXPECT_EQ(ParseWorkload("deployment/web")->first, "Deployment");
  EXPECT_EQ(ParseWorkload("StatefulSet/db")->first, "StatefulSet");
  EXPECT_EQ(ParseWorkload("deployment/web")->second, "web");
  EXPECT_FALSE(ParseWorkload("web").ok());
  EXPECT_FALSE(ParseWorkload("pod/web").ok());
  EXPECT_FALSE(ParseWorkload("deployment/").ok());
}

const char* FakeEnv(const char* name) {
  if (std::strcmp(name, "POD_NAME") == 0) return "web-1";
  if (std::strcmp(name, "POD_NAMESPACE") == 0) return "shop";
  if (std::strcmp(name, "POD_UID") == 0) return "uid-1";
  if (std::strcmp(name, "NODE_NAME") == 0) return "node-a";
  return nullptr;
}

const char* NoEnv(const char*) { return nullptr; }

TEST(ResolveIdentityTest, FromEnvironmentAndFiles) {
  const std::string path = testing::TempDir() + "/labels";
  std::ofstream(path) << "app=\"web\"\n";
  SidecarConfig config;
  config.workload = "deployment/web";
  config.service = "web-svc";
  config.pod_labels_file = path;
  ASSERT_TRUE(ResolveIdentity(&config, FakeEnv).ok());
  EXPECT_EQ(config.pod.pod_name(), "web-1");
  EXPECT_EQ(config.pod.namespace_(), "shop");
  EXPECT_EQ(config.pod.pod_uid(), "uid-1");
  EXPECT_EQ(config.pod.node_name(), "node-a");
  EXPECT_EQ(config.pod.workload_kind(), "Deployment");
  EXPECT_EQ(config.pod.workload_name(), "web");
  EXPECT_EQ(config.pod.service_name(), "web-svc");
  EXPECT_EQ(config.pod.labels().at("app"), "web");

  SidecarConfig local;
  ASSERT_TRUE(ResolveIdentity(&local, NoEnv).ok());
  EXPECT_EQ(local.pod.namespace_(), "default");
  EXPECT_EQ(local.pod.pod_uid(), "local-default-" + local.pod.pod_name());

  SidecarConfig missing;
  missing.pod_labels_file = "/nonexistent/labels";
  EXPECT_FALSE(ResolveIdentity(&missing, NoEnv).ok());
}

TEST(SidecarConfigTest, Validate) {
  SidecarConfig c;
  EXPECT_TRUE(c.Validate().ok());
  c.slo_thresholds = {};
  EXPECT_FALSE(c.Validate().ok());
  c.slo_thresholds = {0.2};
  c.push_interval = std::chrono::milliseconds(10);
  EXPECT_FALSE(c.Validate().ok());
  c.push_interval = std::chrono::milliseconds(1000);
  c.push.adapter_url = "ftp://x";
  EXPECT_FALSE(c.Validate().ok());
}

TEST(SidecarConfigTest, ValidateRejectsMalformedAddresses) {
  SidecarConfig c;
  c.proxy.upstream = "nonsense";
  EXPECT_THAT(std::string(c.Validate().message()), ::testing::HasSubstr("--upstream"));
  c.proxy.upstream = "127.0.0.1:0";
  EXPECT_FALSE(c.Validate().ok());
  c.proxy.upstream = "127.0.0.1:8000";
  c.proxy.listen = "0.0.0.0:99999";
  EXPECT_THAT(std::string(c.Validate().message()), ::testing::HasSubstr("--listen"));
  c.proxy.listen = ":0";
  c.metrics_listen = "bad";
  EXPECT_THAT(std::string(c.Validate().message()), ::testing::HasSubstr("--metrics-listen"));
  c.metrics_listen = "";
  EXPECT_TRUE(c.Validate().ok());
}

}  // namespace
}  // namespace kpiscale::sidecar
