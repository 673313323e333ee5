// gcc -O2 reports a false -Wnull-dereference inside nlohmann::json's inlined accessors.
#pragma GCC diagnostic ignored "-Wnull-dereference"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "kpiscale/adapter/auth.h"
#include "kpiscale/adapter/auth/delegated.h"

namespace kpiscale::adapter::auth {
namespace {

nlohmann::json Sar(std::string_view method, std::string_view path) {
  UserInfo u{"alice", "", {"g", "system:authenticated"}, {}};
  return nlohmann::json::parse(SubjectAccessReviewJson(AttributesFor(method, path, u)))["spec"];
}

TEST(AuthAttributesTest, TableOfKubernetesMetricsApiSection7) {
  auto s = Sar("GET", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/pods/*/m");
  EXPECT_EQ(s["resourceAttributes"], nlohmann::json({{"verb", "get"},
                                                     {"group", "custom.metrics.k8s.io"},
                                                     {"version", "v1beta2"},
                                                     {"resource", "pods"},
                                                     {"subresource", "m"},
                                                     {"name", "*"},
                                                     {"namespace", "ns"}}));
  EXPECT_EQ(s["user"], "alice");
  s = Sar("GET", "/apis/custom.metrics.k8s.io/v1beta1/nodes/n1/m");
  EXPECT_FALSE(s["resourceAttributes"].contains("namespace"));
  EXPECT_EQ(s["resourceAttributes"]["resource"], "nodes");
  EXPECT_EQ(s["resourceAttributes"]["subresource"], "m");
  EXPECT_EQ(s["resourceAttributes"]["name"], "n1");
  s = Sar("GET", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/metrics/m");
  EXPECT_EQ(s["resourceAttributes"]["resource"], "metrics");
  EXPECT_EQ(s["resourceAttributes"]["name"], "m");
  s = Sar("GET", "/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/queue_depth");
  EXPECT_EQ(s["resourceAttributes"]["verb"], "list");
  EXPECT_EQ(s["resourceAttributes"]["resource"], "queue_depth");
  EXPECT_FALSE(s["resourceAttributes"].contains("name"));
  for (const char* p : {"/apis/custom.metrics.k8s.io/v1beta2",
                        "/apis/external.metrics.k8s.io/v1beta1", "/openapi/v2"}) {
    s = Sar("GET", p);
    EXPECT_EQ(s["nonResourceAttributes"], nlohmann::json({{"path", p}, {"verb", "get"}})) << p;
  }
}

TEST(AuthAttributesTest, ForbiddenMessagesAsTheApiserver) {
  UserInfo u{"bob", "", {}, {}};
  EXPECT_EQ(ForbiddenMessage(AttributesFor(
                "GET", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/b/pods/*/m", u)),
            "pods.custom.metrics.k8s.io \"*\" is forbidden: User \"bob\" cannot get resource "
            "\"pods/m\" in API group \"custom.metrics.k8s.io\" in the namespace \"b\"");
  EXPECT_EQ(
      ForbiddenMessage(AttributesFor("GET", "/apis/custom.metrics.k8s.io/v1beta1/nodes/n/m", u)),
      "nodes.custom.metrics.k8s.io \"n\" is forbidden: User \"bob\" cannot get resource "
      "\"nodes/m\" in API group \"custom.metrics.k8s.io\" at the cluster scope");
  EXPECT_EQ(ForbiddenMessage(AttributesFor("GET", "/openapi/v2", u)),
            "forbidden: User \"bob\" cannot get path \"/openapi/v2\"");
}

TEST(AuthConfigMapTest, ParsesJsonListsInsideStrings) {
  const std::string cm = R"({"metadata":{"resourceVersion":"42"},"data":{
    "client-ca-file":"CA1","requestheader-client-ca-file":"CA2",
    "requestheader-allowed-names":"[\"front-proxy-client\"]",
    "requestheader-username-headers":"[\"X-Remote-User\"]",
    "requestheader-group-headers":"[\"X-Remote-Group\"]",
    "requestheader-extra-headers-prefix":"[\"X-Remote-Extra-\"]"}})";
  std::string rv;
  auto s = ParseAuthenticationConfigMap(cm, &rv);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(rv, "42");
  EXPECT_EQ(s->client_ca_pem, "CA1");
  EXPECT_EQ(s->requestheader_ca_pem, "CA2");
  EXPECT_EQ(s->allowed_names, std::vector<std::string>{"front-proxy-client"});
  EXPECT_EQ(s->username_headers, std::vector<std::string>{"x-remote-user"});
  EXPECT_EQ(s->group_headers, std::vector<std::string>{"x-remote-group"});
  EXPECT_EQ(s->extra_prefixes, std::vector<std::string>{"x-remote-extra-"});
}

TEST(AuthConfigMapTest, DefaultsAndErrors) {
  auto s = ParseAuthenticationConfigMap(R"({"data":{}})", nullptr);
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->allowed_names.empty());
  EXPECT_EQ(s->username_headers, std::vector<std::string>{"x-remote-user"});
  EXPECT_EQ(s->extra_prefixes, std::vector<std::string>{"x-remote-extra-"});
  EXPECT_FALSE(ParseAuthenticationConfigMap("not json", nullptr).ok());
  EXPECT_FALSE(ParseAuthenticationConfigMap(
                   R"({"data":{"requestheader-allowed-names":"front-proxy-client"}})", nullptr)
                   .ok());
  EXPECT_FALSE(
      ParseAuthenticationConfigMap(R"({"data":{"requestheader-group-headers":"[1]"}})", nullptr)
          .ok());
}

TEST(AuthOverridesTest, FlagsWinAndAreLowerCased) {
  AuthnSettings s;
  AuthnOverrides o;
  o.allowed_names = std::vector<std::string>{"aggregator"};
  o.username_headers = std::vector<std::string>{"X-Forwarded-User"};
  ASSERT_TRUE(ApplyOverrides(o, &s).ok());
  EXPECT_EQ(s.allowed_names, std::vector<std::string>{"aggregator"});
  EXPECT_EQ(s.username_headers, std::vector<std::string>{"x-forwarded-user"});
  o.client_ca_file = "/nonexistent/ca.crt";
  EXPECT_FALSE(ApplyOverrides(o, &s).ok());
}

TEST(AuthBearerTest, ParsesTheScheme) {
  EXPECT_EQ(BearerToken("Bearer abc"), "abc");
  EXPECT_EQ(BearerToken("bearer  abc "), "abc");
  EXPECT_EQ(BearerToken("Basic abc"), "");
  EXPECT_EQ(BearerToken("Bearer"), "");
  EXPECT_EQ(BearerToken(""), "");
}

TEST(AuthIngestTest, PodMustMatchTheToken) {
  IngestIdentity any{"kpiscale:local-sidecar", "", ""};
  EXPECT_TRUE(IngestAuthenticator::CheckPod(any, "x", "y").ok());
  IngestIdentity ns_only{"system:serviceaccount:a:app", "a", ""};
  EXPECT_TRUE(IngestAuthenticator::CheckPod(ns_only, "a", "y").ok());
  EXPECT_EQ(IngestAuthenticator::CheckPod(ns_only, "b", "y").code(),
            absl::StatusCode::kPermissionDenied);
  IngestIdentity pod{"system:serviceaccount:a:app", "a", "web-1"};
  EXPECT_TRUE(IngestAuthenticator::CheckPod(pod, "a", "web-1").ok());
  EXPECT_EQ(IngestAuthenticator::CheckPod(pod, "a", "web-2").code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(AuthIngestTest, LocalTokenFile) {
  EXPECT_FALSE(IngestAuthenticator::FromTokenFile("/nonexistent/token", nullptr).ok());
  const std::string path = ::testing::TempDir() + "/kpiscale-ingest-token";
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    std::fputs("shared-secret\n", f);
    std::fclose(f);
  }
  auto a = IngestAuthenticator::FromTokenFile(path, nullptr);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE((*a)->Authenticate("Bearer shared-secret").ok());
  EXPECT_EQ((*a)->Authenticate("Bearer shared-secreT").status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ((*a)->Authenticate("").status().code(), absl::StatusCode::kUnauthenticated);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace kpiscale::adapter::auth
