#include "kpiscale/adapter/api.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "kpiscale/common/quantity.h"
#include "test_util.h"

namespace kpiscale::adapter {
namespace {

using testing::Decode;
using testing::HttpWindow;
using testing::Pod;
using Json = nlohmann::ordered_json;

constexpr int64_t kNow = 1'714'564'800'000;  // 2024-05-01T12:00:00Z
const std::string kP1 = "/apis/custom.metrics.k8s.io/v1beta1";
const std::string kP2 = "/apis/custom.metrics.k8s.io/v1beta2";
const std::string kE = "/apis/external.metrics.k8s.io/v1beta1";

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::move(CreateMemoryWindowStore(StoreOptions{})).value();
    health_.Add("ping", HealthChecks::kAll, [] { return absl::OkStatus(); });
    health_.Add("shutdown", HealthChecks::kReadyz, [this] {
      return draining_ ? absl::UnavailableError("draining") : absl::OkStatus();
    });
    ApiOptions o;
    o.enable_write_metrics = true;
    o.version = "0.1.0";
    api_ = std::make_unique<ApiHandler>(*store_, written_, health_, clock_, o);
    // Two web pods (20 and 10 req/s), one api pod, in "default"; one pod in "other".
    Push(Pod("default", "web-1"), 20, 2, 0.1);
    Push(Pod("default", "web-2"), 10, 0, 0.3);
    Push(Pod("default", "api-1", "api", "api"), 5, 0, 0.01);
    Push(Pod("other", "web-9"), 1, 0, 0.01);
  }
  void Push(common::ReportBatchBuilder b, int requests, int errors, double d) {
    b.AddWindow(HttpWindow(1, kNow, requests, errors, {d}));
    ASSERT_TRUE(store_->Ingest(Decode(b.Build(), kNow)).ok());
  }
  ApiResponse Get(const std::string& target, const std::string& accept = "") {
    ApiRequest r;
    r.method = "GET";
    r.target = target;
    r.accept = accept;
    return api_->Handle(r);
  }
  Json GetJson(const std::string& target, int want_status = 200) {
    auto r = Get(target);
    EXPECT_EQ(r.status, want_status) << target << " " << r.body;
    return Json::parse(r.body);
  }
  static double ValueOf(const Json& item) {
    auto q = common::Quantity::Parse(item["value"].get<std::string>());
    EXPECT_TRUE(q.ok());
    return q.ok() ? q->ToDouble() : -1;
  }
  static std::vector<std::string> Keys(const Json& j) {
    std::vector<std::string> out;
    for (auto it = j.begin(); it != j.end(); ++it) out.push_back(it.key());
    return out;
  }
  static std::vector<std::string> Names(const Json& list) {
    std::vector<std::string> out;
    for (const auto& i : list["items"]) out.push_back(i["describedObject"]["name"]);
    std::sort(out.begin(), out.end());
    return out;
  }

  common::FakeClock clock_{kNow};
  std::unique_ptr<WindowStore> store_;
  WrittenMetrics written_;
  HealthChecks health_;
  bool draining_ = false;
  std::unique_ptr<ApiHandler> api_;
};

TEST_F(ApiTest, V1beta1PodItemIsExactlyTheReferenceShape) {
  auto r = Get(kP1 + "/namespaces/default/pods/web-2/http_requests_per_second");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(
      r.body,
      R"({"kind":"MetricValueList","apiVersion":"custom.metrics.k8s.io/v1beta1","metadata":{},)"
      R"("items":[{"describedObject":{"kind":"Pod","namespace":"default","name":"web-2",)"
      R"("apiVersion":"/v1"},"metricName":"http_requests_per_second",)"
      R"("timestamp":"2024-05-01T12:00:00Z","window":1,"value":"10","selector":null}]})");
}

TEST_F(ApiTest, V1beta2PodItemIsExactlyTheReferenceShape) {
  auto r = Get(kP2 + "/namespaces/default/pods/web-1/http_errors_ratio");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(
      r.body,
      R"({"kind":"MetricValueList","apiVersion":"custom.metrics.k8s.io/v1beta2","metadata":{},)"
      R"("items":[{"describedObject":{"kind":"Pod","namespace":"default","name":"web-1",)"
      R"("apiVersion":"/v1"},"metric":{"name":"http_errors_ratio","selector":null},)"
      R"("timestamp":"2024-05-01T12:00:00Z","windowSeconds":1,"value":"100m"}]})");
}

TEST_F(ApiTest, WildcardWithSelectorBothVersionsAndEncodedStar) {
  for (const auto& p : {kP1, kP2}) {
    for (const std::string star : {"*", "%2A", "%2a"}) {
      auto j = GetJson(p + "/namespaces/default/pods/" + star +
                       "/http_requests_per_second?labelSelector=app%3Dweb");
      EXPECT_EQ(Names(j), (std::vector<std::string>{"web-1", "web-2"})) << p << star;
    }
    auto all = GetJson(p + "/namespaces/default/pods/*/http_requests_per_second");
    EXPECT_EQ(all["items"].size(), 3u);
    auto none =
        GetJson(p + "/namespaces/default/pods/*/http_requests_per_second?labelSelector=app%3Dnone");
    EXPECT_TRUE(none["items"].is_array());
    EXPECT_EQ(none["items"].size(), 0u);
    auto set = GetJson(p +
                       "/namespaces/default/pods/*/"
                       "http_requests_per_second?labelSelector=app+in+(api,web),app!=web");
    EXPECT_EQ(Names(set), (std::vector<std::string>{"api-1"}));
  }
}

TEST_F(ApiTest, MetricLabelSelectorPicksQuantileAndIsEchoed) {
  auto j2 = GetJson(kP2 +
                    "/namespaces/default/pods/web-2/"
                    "http_request_duration_seconds?metricLabelSelector=quantile%3D0.5");
  const auto& item = j2["items"][0];
  EXPECT_EQ(Keys(item), (std::vector<std::string>{"describedObject", "metric", "timestamp",
                                                  "windowSeconds", "value"}));
  EXPECT_EQ(item["metric"]["selector"], Json::parse(R"({"matchLabels":{"quantile":"0.5"}})"));
  EXPECT_NEAR(ValueOf(item), 0.3, 0.3 * 0.011);  // every request took 0.3 s
  auto j1 = GetJson(kP1 +
                    "/namespaces/default/pods/web-2/"
                    "http_request_duration_seconds?metricLabelSelector=quantile%20in%20(0.5)");
  EXPECT_EQ(Keys(j1["items"][0]),
            (std::vector<std::string>{"describedObject", "metricName", "timestamp", "window",
                                      "value", "selector"}));
  EXPECT_EQ(
      j1["items"][0]["selector"],
      Json::parse(R"({"matchExpressions":[{"key":"quantile","operator":"In","values":["0.5"]}]})"));
  auto bad = GetJson(kP2 +
                         "/namespaces/default/pods/web-2/"
                         "http_request_duration_seconds?metricLabelSelector=quantile%3D7",
                     400);
  EXPECT_EQ(bad["reason"], "BadRequest");
  // A selector that matches no series of the metric: named object 404, wildcard empty.
  auto nf = GetJson(kP2 +
                        "/namespaces/default/pods/web-2/"
                        "http_request_duration_seconds?metricLabelSelector=route%3Dx",
                    404);
  EXPECT_EQ(nf["message"],
            "the server could not find the metric http_request_duration_seconds for pods web-2 "
            "with selector route=x");
}

TEST_F(ApiTest, QuantileAliases) {
  auto j = GetJson(kP2 + "/namespaces/default/pods/web-1/http_request_duration_p99_seconds");
  EXPECT_NEAR(ValueOf(j["items"][0]), 0.1, 0.1 * 0.011);
}

TEST_F(ApiTest, WorkloadServiceNamespaceAndNodeObjects) {
  auto d = GetJson(kP2 + "/namespaces/default/deployments.apps/web/http_requests_per_second");
  ASSERT_EQ(d["items"].size(), 1u);
  EXPECT_EQ(
      d["items"][0]["describedObject"],
      Json::parse(
          R"({"kind":"Deployment","namespace":"default","name":"web","apiVersion":"apps/v1"})"));
  EXPECT_EQ(d["items"][0]["value"], "30");  // 20 + 10, summed
  auto e = GetJson(kP1 + "/namespaces/default/deployments.apps/web/http_errors_ratio");
  EXPECT_EQ(e["items"][0]["value"], "66666667n");  // 2 / 30, rounded up to nano
  auto s = GetJson(kP1 + "/namespaces/default/services/web-svc/http_requests_per_second");
  EXPECT_EQ(s["items"][0]["describedObject"]["kind"], "Service");
  auto ws = GetJson(kP2 + "/namespaces/default/deployments.apps/*/http_requests_per_second");
  EXPECT_EQ(Names(ws), (std::vector<std::string>{"api", "web"}));
  auto wsel = GetJson(
      kP2 +
      "/namespaces/default/deployments.apps/*/http_requests_per_second?labelSelector=app%3Dapi");
  EXPECT_EQ(Names(wsel), (std::vector<std::string>{"api"}));
  for (const auto& p : {kP1, kP2}) {
    auto ns = GetJson(p + "/namespaces/default/metrics/http_requests_per_second");
    ASSERT_EQ(ns["items"].size(), 1u);
    EXPECT_EQ(ns["items"][0]["describedObject"],
              Json::parse(R"({"kind":"Namespace","name":"default","apiVersion":"/v1"})"));
    EXPECT_EQ(ns["items"][0]["value"], "35");
    auto root = GetJson(p + "/namespaces/other/http_requests_per_second");
    EXPECT_EQ(root["items"][0]["value"], "1");
    auto nodes = GetJson(p + "/nodes/*/http_requests_per_second");
    ASSERT_EQ(nodes["items"].size(), 1u);
    EXPECT_EQ(nodes["items"][0]["describedObject"],
              Json::parse(R"({"kind":"Node","name":"node-a","apiVersion":"/v1"})"));
    EXPECT_EQ(nodes["items"][0]["value"], "36");
    auto node = GetJson(p + "/nodes/node-a/http_requests_per_second");
    EXPECT_EQ(node["items"].size(), 1u);
    auto allns = GetJson(p + "/namespaces/*/http_requests_per_second");
    EXPECT_EQ(Names(allns), (std::vector<std::string>{"default", "other"}));
  }
}

TEST_F(ApiTest, NotFoundAndBadRequestStatuses) {
  auto r = Get(kP1 + "/namespaces/default/pods/nope/http_requests");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(
      r.body,
      R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server could not find the metric http_requests for pods nope","reason":"NotFound","code":404})");
  auto b =
      Get(kP2 + "/namespaces/default/pods/*/http_requests_per_second?labelSelector=a%3D%3D%3Db");
  EXPECT_EQ(b.status, 400);
  auto bj = Json::parse(b.body);
  EXPECT_EQ(Keys(bj), (std::vector<std::string>{"kind", "apiVersion", "metadata", "status",
                                                "message", "reason", "code"}));
  EXPECT_EQ(bj["reason"], "BadRequest");
  EXPECT_EQ(bj["code"], 400);
  // Conformance table A.
  for (const std::string& t : std::vector<std::string>{
           "/apis/", kP1 + "/blah", kP1 + "/nodes/foo", kP1 + "/namespaces/ns/pods/bar",
           kE + "/nonexistent-metric", kE + "/namespaces/foo", kE + "/namespaces/foo/group/metric",
           kE + "/namespaces/foo/nonexistent-metric", "/apis/other.k8s.io/v1",
           kP1 + "/namespaces/default/foos/x/m", "/apis/custom.metrics.k8s.io/v2", "/"}) {
    EXPECT_EQ(Get(t).status, 404) << t;
  }
  ApiRequest post;
  post.method = "POST";
  post.target = kP1 + "/namespaces/default/pods/*/http_requests_per_second";
  EXPECT_EQ(api_->Handle(post).status, 405);
  EXPECT_EQ(Json::parse(api_->Handle(post).body)["reason"], "MethodNotAllowed");
}

TEST_F(ApiTest, StalePodsDisappear) {
  EXPECT_EQ(Get(kP2 + "/namespaces/default/pods/web-1/http_requests_per_second").status, 200);
  clock_.Advance(std::chrono::seconds(5));
  EXPECT_EQ(Get(kP2 + "/namespaces/default/pods/web-1/http_requests_per_second").status, 404);
  EXPECT_EQ(GetJson(kP2 + "/namespaces/default/pods/*/http_requests_per_second")["items"].size(),
            0u);
}

TEST_F(ApiTest, ExternalWorkloadSeries) {
  auto j =
      GetJson(kE + "/namespaces/default/http_requests_per_second?labelSelector=workload%3Dweb");
  EXPECT_EQ(j["kind"], "ExternalMetricValueList");
  EXPECT_EQ(j["apiVersion"], "external.metrics.k8s.io/v1beta1");
  ASSERT_EQ(j["items"].size(), 1u);
  EXPECT_EQ(Keys(j["items"][0]), (std::vector<std::string>{"metricName", "metricLabels",
                                                           "timestamp", "window", "value"}));
  EXPECT_EQ(j["items"][0]["metricLabels"], Json::parse(R"({"deployment":"web","workload":"web"})"));
  EXPECT_EQ(j["items"][0]["value"], "30");
  auto d =
      GetJson(kE + "/namespaces/default/http_requests_per_second?labelSelector=deployment%3Dweb");
  EXPECT_EQ(d["items"][0]["value"], "30");
  auto all = GetJson(kE + "/namespaces/default/http_requests_per_second");
  EXPECT_EQ(all["items"].size(), 2u);
  auto q = GetJson(kE +
                   "/namespaces/default/"
                   "http_request_duration_seconds?labelSelector=workload%3Dweb,quantile%3D0.5");
  EXPECT_EQ(q["items"][0]["metricLabels"]["quantile"], "0.5");
  auto nf = GetJson(
      kE + "/namespaces/default/http_requests_per_second?labelSelector=workload%3Dnone", 404);
  EXPECT_EQ(nf["message"],
            "the server could not find the metric http_requests_per_second for namespace default "
            "with selector workload=none");
  GetJson(kE + "/namespaces/default/http_requests_per_second?labelSelector=%3D%3D", 400);
}

TEST_F(ApiTest, Discovery) {
  for (const auto& [path, gv, kind] :
       {std::tuple{kP1, "custom.metrics.k8s.io/v1beta1", "MetricValueList"},
        std::tuple{kP2, "custom.metrics.k8s.io/v1beta2", "MetricValueList"},
        std::tuple{kE, "external.metrics.k8s.io/v1beta1", "ExternalMetricValueList"}}) {
    auto j = GetJson(path);
    EXPECT_EQ(Keys(j),
              (std::vector<std::string>{"kind", "apiVersion", "groupVersion", "resources"}));
    EXPECT_EQ(j["kind"], "APIResourceList");
    EXPECT_EQ(j["apiVersion"], "v1");
    EXPECT_EQ(j["groupVersion"], gv);
    ASSERT_FALSE(j["resources"].empty());
    for (const auto& r : j["resources"]) {
      EXPECT_EQ(Keys(r),
                (std::vector<std::string>{"name", "singularName", "namespaced", "kind", "verbs"}));
      EXPECT_EQ(r["kind"], kind);
      EXPECT_EQ(r["verbs"], Json::parse(R"(["get"])"));
      EXPECT_EQ(r["singularName"], "");
    }
  }
  auto j = GetJson(kP2);
  bool pods = false, ns = false, deploy = false;
  for (const auto& r : j["resources"]) {
    if (r["name"] == "pods/http_request_duration_seconds") pods = r["namespaced"] == true;
    if (r["name"] == "namespaces/http_requests_per_second") ns = r["namespaced"] == false;
    if (r["name"] == "deployments.apps/cache_hit_ratio") deploy = r["namespaced"] == true;
  }
  EXPECT_TRUE(pods && ns && deploy);
  auto e = GetJson(kE);
  EXPECT_EQ(e["resources"][0]["name"], "http_requests_per_second");
  EXPECT_EQ(e["resources"][0]["namespaced"], true);
}

TEST_F(ApiTest, ApisVersionAndOpenApi) {
  auto apis = GetJson("/apis");
  EXPECT_EQ(apis["kind"], "APIGroupList");
  EXPECT_EQ(apis["groups"][0]["preferredVersion"]["version"], "v1beta2");
  auto agg = Get("/apis",
                 "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/"
                 "json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList");
  EXPECT_EQ(agg.status, 406);
  EXPECT_EQ(Json::parse(agg.body)["reason"], "NotAcceptable");
  EXPECT_EQ(Get("/apis", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json").status,
            200);
  auto g = GetJson("/apis/custom.metrics.k8s.io");
  EXPECT_EQ(Keys(g), (std::vector<std::string>{"kind", "apiVersion", "name", "versions",
                                               "preferredVersion"}));
  EXPECT_EQ(g["preferredVersion"]["groupVersion"], "custom.metrics.k8s.io/v1beta2");
  auto v = GetJson("/version");
  EXPECT_EQ(v["gitVersion"], "v0.1.0");
  auto o = GetJson("/openapi/v2");
  EXPECT_EQ(o["swagger"], "2.0");
  EXPECT_TRUE(
      o["definitions"].contains("io.k8s.metrics.pkg.apis.custom_metrics.v1beta2.MetricValueList"));
  EXPECT_TRUE(
      o["paths"].contains("/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/{metric}"));
  // A protobuf-first Accept header still gets JSON.
  auto pb = Get(kP2 + "/namespaces/default/pods/web-1/http_requests_per_second",
                "application/vnd.kubernetes.protobuf, */*");
  EXPECT_EQ(pb.status, 200);
  EXPECT_EQ(pb.content_type, "application/json");
}

TEST_F(ApiTest, Health) {
  for (const std::string ep : {"healthz", "livez", "readyz"}) {
    auto r = Get("/" + ep);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "ok");
    EXPECT_EQ(r.content_type, "text/plain; charset=utf-8");
  }
  EXPECT_EQ(Get("/readyz?verbose").body, "[+]ping ok\n[+]shutdown ok\nreadyz check passed\n");
  EXPECT_EQ(Get("/livez?verbose=1").body, "[+]ping ok\nlivez check passed\n");
  EXPECT_EQ(Get("/readyz?verbose&exclude=ping&exclude=nope").body,
            "[+]ping excluded: ok\n[+]shutdown ok\nwarn: some health checks cannot be excluded: "
            "no matches for \"nope\"\nreadyz check passed\n");
  EXPECT_EQ(Get("/readyz/ping").body, "ok");
  EXPECT_EQ(Get("/readyz/nope").status, 404);
  draining_ = true;
  auto f = Get("/readyz");
  EXPECT_EQ(f.status, 500);
  EXPECT_EQ(f.body, "[+]ping ok\n[-]shutdown failed: reason withheld\nreadyz check failed\n");
  EXPECT_EQ(Get("/readyz/shutdown").body, "internal server error: draining\n");
  EXPECT_EQ(Get("/livez").status, 200);
}

TEST_F(ApiTest, WriteMetricsHook) {
  ApiRequest w;
  w.method = "POST";
  w.target = "/write-metrics/namespaces/default/pods/foo/queue_depth?labels=app%3Dq,tier%3Dback";
  w.body = "\"1500m\"";
  ASSERT_EQ(api_->Handle(w).status, 200);
  w.target = "/write-metrics/namespaces/default/deployments.apps/web/http_requests_per_second";
  w.body = " 42 ";
  ASSERT_EQ(api_->Handle(w).status, 200);
  w.target = "/write-metrics/nodes/n1/temperature";
  w.body = "1e3";
  ASSERT_EQ(api_->Handle(w).status, 200);
  auto q = GetJson(kP1 + "/namespaces/default/pods/*/queue_depth?labelSelector=app%3Dq");
  ASSERT_EQ(q["items"].size(), 1u);
  EXPECT_EQ(q["items"][0]["value"], "1500m");
  EXPECT_FALSE(q["items"][0].contains("window"));
  EXPECT_EQ(
      GetJson(kP1 + "/namespaces/default/pods/*/queue_depth?labelSelector=app%3Dx")["items"].size(),
      0u);
  // Written values win over computed ones for that object.
  EXPECT_EQ(
      GetJson(
          kP2 +
          "/namespaces/default/deployments.apps/web/http_requests_per_second")["items"][0]["value"],
      "42");
  EXPECT_EQ(GetJson(kP2 + "/nodes/n1/temperature")["items"][0]["value"], "1e3");  // format kept
  // Written metrics appear in discovery.
  bool listed = false;
  const Json discovery = GetJson(kP1);
  for (const auto& r : discovery["resources"]) listed = listed || r["name"] == "pods/queue_depth";
  EXPECT_TRUE(listed);
  // Clock moves on: written values stay until overwritten.
  clock_.Advance(std::chrono::minutes(10));
  EXPECT_EQ(Get(kP1 + "/namespaces/default/pods/foo/queue_depth").status, 200);
  w.target = "/write-metrics/namespaces/default/pods/foo/queue_depth";
  w.body = "\"abc\"";
  EXPECT_EQ(api_->Handle(w).status, 400);
  w.body = "1";
  w.target = "/write-metrics/namespaces/default/pods/foo/q?labels=bad";
  EXPECT_EQ(api_->Handle(w).status, 400);
  w.target = "/write-metrics/pods/foo/q";  // pods are namespaced
  EXPECT_EQ(api_->Handle(w).status, 400);
}

TEST_F(ApiTest, WriteMetricsDisabledIsNotFound) {
  ApiOptions o;
  ApiHandler plain(*store_, written_, health_, clock_, o);
  ApiRequest w;
  w.method = "POST";
  w.target = "/write-metrics/namespaces/default/pods/foo/m";
  w.body = "1";
  EXPECT_EQ(plain.Handle(w).status, 405);
  w.method = "GET";
  EXPECT_EQ(plain.Handle(w).status, 404);
}

TEST(Timestamp, Rfc3339WholeSecondsUtc) {
  EXPECT_EQ(FormatTimestamp(1'714'564'800'999), "2024-05-01T12:00:00Z");
  EXPECT_EQ(FormatTimestamp(0), "1970-01-01T00:00:00Z");
}

TEST(PercentDecode, DecodesOnce) {
  std::string out;
  EXPECT_TRUE(PercentDecode("%252A", false, &out));
  EXPECT_EQ(out, "%2A");
  EXPECT_TRUE(PercentDecode("a+b", true, &out));
  EXPECT_EQ(out, "a b");
  EXPECT_FALSE(PercentDecode("%2", false, &out));
  EXPECT_FALSE(PercentDecode("%zz", false, &out));
}

}  // namespace
}  // namespace kpiscale::adapter
