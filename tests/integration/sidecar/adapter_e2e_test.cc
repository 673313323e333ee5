// End to end: two real sidecars (two pods of one deployment) push to the real kpiscale-adapter in
// --local mode; the custom-metrics answers for the pods and the workload carry the exact error and
// SLO ratios of the traffic sent, and percentiles from the merged sketches.
#ifdef KPISCALE_ADAPTER_BINARY

#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "kpiscale/common/quantity.h"
#include "nlohmann/json.hpp"
#include "sidecar_harness.h"

namespace kpiscale::sidecar::testing {
namespace {

class AdapterEndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto& s = upstream_.server();
    s.Get("/ok", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("ok", "text/plain");
    });
    s.Get("/fail", [](const httplib::Request&, httplib::Response& res) {
      res.status = 503;
      res.set_content("no", "text/plain");
    });
    s.Get("/slow", [](const httplib::Request&, httplib::Response& res) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1100));
      res.set_content("slow", "text/plain");
    });
    upstream_.Start();
    const std::string dir = ::testing::TempDir() + "/adapter-e2e-" + std::to_string(getpid());
    adapter_ = SidecarProcess::Start({"--local", "--secure-port=0", "--ingest-port=0",
                                      "--metrics-port=0", "--cert-dir=" + dir, "--log-level=warn"},
                                     {}, KPISCALE_ADAPTER_BINARY, "listening secure_port=");
    ASSERT_TRUE(adapter_);
    ASSERT_GT(adapter_->ingest_port, 0);
  }

  std::unique_ptr<SidecarProcess> StartPod(const std::string& name) {
    return SidecarProcess::Start(
        {"--listen=127.0.0.1:0", "--upstream=127.0.0.1:" + std::to_string(upstream_.port()),
         "--metrics-listen=127.0.0.1:0", "--push-interval=200ms", "--slo-threshold=1s",
         "--workload=deployment/web",
         "--adapter-url=http://127.0.0.1:" + std::to_string(adapter_->ingest_port),
         "--log-level=warn"},
        {"POD_NAME=" + name, "POD_NAMESPACE=default", "POD_UID=uid-" + name});
  }

  // GET on the adapter's custom metrics API; returns the parsed body (null on failure).
  nlohmann::json Api(const std::string& path) {
    httplib::SSLClient client("127.0.0.1", adapter_->secure_port);
    client.enable_server_certificate_verification(false);
    auto res = client.Get(path.c_str());
    if (!res || res->status != 200) return nullptr;
    return nlohmann::json::parse(res->body, nullptr, false);
  }

  // The value of the single item, or -1.
  double Value(const std::string& path) {
    const nlohmann::json body = Api(path);
    if (!body.is_object() || !body.contains("items") || body["items"].size() != 1) return -1;
    auto q = common::Quantity::Parse(body["items"][0]["value"].get<std::string>());
    return q.ok() ? q->ToDouble() : -1;
  }

  TestServer upstream_;
  std::unique_ptr<SidecarProcess> adapter_;
};

TEST_F(AdapterEndToEndTest, PodAndWorkloadRatiosAreExact) {
  auto a = StartPod("web-a");
  auto b = StartPod("web-b");
  ASSERT_TRUE(a && b);
  // Pod a: 18 ok + 2 errors. Pod b: 8 ok + 2 slow (> 1 s).
  httplib::Client ca("127.0.0.1", a->proxy_port);
  httplib::Client cb("127.0.0.1", b->proxy_port);
  for (int i = 0; i < 18; ++i) ASSERT_TRUE(ca.Get("/ok"));
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(ca.Get("/fail"));
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(cb.Get("/ok"));
  std::thread t1([&] {
    httplib::Client c("127.0.0.1", b->proxy_port);
    c.Get("/slow");
  });
  std::thread t2([&] {
    httplib::Client c("127.0.0.1", b->proxy_port);
    c.Get("/slow");
  });
  t1.join();
  t2.join();

  const std::string base = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/";
  // Wait until the adapter has seen every request (windows arrive every 200 ms).
  ASSERT_TRUE(WaitFor([&] {
    const double ea = Value(base + "pods/web-a/http_errors_ratio");
    const double sb =
        Value(base + "pods/web-b/http_slo_violations_ratio?metricLabelSelector=threshold%3D1");
    return std::abs(ea - 0.1) < 1e-9 && std::abs(sb - 0.2) < 1e-9;
  })) << Api(base + "pods/*/http_errors_ratio").dump();
  // Workload: 2 errors of 30 requests, 2 slow of 30; exact up to the nano-unit rounding.
  EXPECT_NEAR(Value(base + "deployments.apps/web/http_errors_ratio"), 2.0 / 30, 1e-9);
  EXPECT_NEAR(
      Value(base +
            "deployments.apps/web/http_slo_violations_ratio?metricLabelSelector=threshold%3D1"),
      2.0 / 30, 1e-9);
  // Merged percentiles: 28 of 30 requests are fast, 2 take at least 1.1 s.
  const double p50 = Value(base + "deployments.apps/web/http_request_duration_p50_seconds");
  const double p99 = Value(base + "deployments.apps/web/http_request_duration_p99_seconds");
  EXPECT_GT(p50, 0);
  EXPECT_LT(p50, 0.5);
  EXPECT_GE(p99, 1.1 * (1 - 0.011));
  EXPECT_LT(p99, 3.0);
  // Both pods are listed.
  const nlohmann::json pods = Api(base + "pods/*/http_requests_per_second");
  ASSERT_TRUE(pods.is_object());
  EXPECT_EQ(pods["items"].size(), 2u) << pods.dump();
  EXPECT_EQ(a->Terminate(), 0);
  EXPECT_EQ(b->Terminate(), 0);
}

}  // namespace
}  // namespace kpiscale::sidecar::testing

#endif  // KPISCALE_ADAPTER_BINARY
