#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "cli_test_util.h"
#include "gtest/gtest.h"
#include "kpiscale/hpa/spec_io.h"
#include "nlohmann/json.hpp"

namespace kpiscale::testing {
namespace {

std::string Source(const std::string& rel) { return std::string(KPISCALE_SOURCE_DIR) + "/" + rel; }

std::vector<std::vector<std::string>> Csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) {
    std::vector<std::string> cells;
    std::stringstream ls(line);
    std::string cell;
    while (std::getline(ls, cell, ',')) cells.push_back(cell);
    if (!line.empty() && line.back() == ',') cells.emplace_back();
    rows.push_back(cells);
  }
  return rows;
}

// The worked example of docs/hpa-simulator.md: the production HPA on a traffic spike.
TEST(Simulate, DocumentedExampleMatchesItsTimeline) {
  TempDir dir;
  const RunResult r =
      RunKpiscale({"simulate", "--hpa", Source("examples/hpa/ci-failure-agent-hpa.yaml"), "--trace",
                   Source("examples/hpa/traffic-spike.csv"), "-o", dir.File("timeline.csv"),
                   "--plot", dir.File("chart.svg")});
  ASSERT_EQ(r.exit_code, 0);
  const std::string got = ReadFile(dir.File("timeline.csv"));
  EXPECT_EQ(got, ReadFile(Source("examples/hpa/traffic-spike.timeline.csv")))
      << "the simulator's output for the documented example changed; if intended, regenerate "
         "examples/hpa/traffic-spike.timeline.csv and docs/hpa-simulator.md";

  // The behaviour the document describes, checked on its own terms.
  const auto rows = Csv(got);
  ASSERT_GT(rows.size(), 10u);
  const auto& h = rows[0];
  auto col = [&](const std::string& name) {
    return static_cast<size_t>(std::find(h.begin(), h.end(), name) - h.begin());
  };
  const size_t t = col("time_s"), spec = col("spec_replicas"), desired = col("desired_replicas"),
               limited = col("scaling_limited");
  ASSERT_LT(limited, h.size());
  double first_up = -1, last_high = -1, first_down = -1;
  for (size_t i = 1; i < rows.size(); ++i) {
    const int before = std::stoi(rows[i][spec]);
    const int after = std::stoi(rows[i][desired]);
    EXPECT_GE(after, 3);
    EXPECT_LE(after, 10);
    if (after > before) {
      // Scale-up: at most max(+100 %, +2 pods) per 30 s.
      EXPECT_LE(after, std::max(2 * before, before + 2)) << rows[i][t];
      if (first_up < 0) first_up = std::stod(rows[i][t]);
    }
    if (after < before) {
      // Scale-down: at most 50 % per 60 s (from the count at the period's start).
      EXPECT_GE(after, (before + 1) / 2) << rows[i][t];
      if (first_down < 0) first_down = std::stod(rows[i][t]);
    }
    if (rows[i][col("demand")] == "900") last_high = std::stod(rows[i][t]);
  }
  EXPECT_GT(first_up, 120);                // the spike starts at 120 s
  EXPECT_LT(first_up, 150);                // and is answered within one sync period
  EXPECT_GT(first_down, last_high + 300);  // the 300 s scale-down window holds
  EXPECT_EQ(rows.back()[desired], "3");    // back to minReplicas by the end

  const std::string svg = ReadFile(dir.File("chart.svg"));
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  for (const char* title :
       {"Replicas", "Demand (requests/s)", "cpu utilization (%)", "memory utilization (%)",
        "pods/http_requests_per_second", "object/Deployment/http_slo_violations_ratio"}) {
    EXPECT_NE(svg.find(title), std::string::npos) << title;
  }
}

// The example copy must stay the production HPA of manifests/.
TEST(Simulate, ExampleHpaIsTheProductionHpa) {
  auto example = hpa::LoadHpaManifest(Source("examples/hpa/ci-failure-agent-hpa.yaml"));
  auto production = hpa::LoadHpaManifest(Source("manifests/base/workload/hpa.yaml"));
  ASSERT_TRUE(example.ok()) << example.status();
  ASSERT_TRUE(production.ok()) << production.status();
  EXPECT_EQ(*example->min_replicas, *production->min_replicas);
  EXPECT_EQ(example->max_replicas, production->max_replicas);
  ASSERT_EQ(example->metrics.size(), production->metrics.size());
  for (size_t i = 0; i < example->metrics.size(); ++i) {
    EXPECT_EQ(example->metrics[i].DisplayName(), production->metrics[i].DisplayName());
    EXPECT_EQ(example->metrics[i].target.average_utilization,
              production->metrics[i].target.average_utilization);
    EXPECT_EQ(example->metrics[i].target.value_milli, production->metrics[i].target.value_milli);
    EXPECT_EQ(example->metrics[i].target.average_value_milli,
              production->metrics[i].target.average_value_milli);
  }
  EXPECT_EQ(hpa::ScalingRulesToJson(*example->behavior->scale_up),
            hpa::ScalingRulesToJson(*production->behavior->scale_up));
  EXPECT_EQ(hpa::ScalingRulesToJson(*example->behavior->scale_down),
            hpa::ScalingRulesToJson(*production->behavior->scale_down));
}

TEST(Simulate, BadInputIsAClearError) {
  TempDir dir;
  std::ofstream(dir.File("bad.csv")) << "time,demand\n0,abc\n";
  const RunResult r =
      RunKpiscale({"simulate", "--hpa", Source("examples/hpa/ci-failure-agent-hpa.yaml"), "--trace",
                   dir.File("bad.csv")},
                  dir.File("err.txt"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(ReadFile(dir.File("err.txt")).find("line 2: invalid demand \"abc\""),
            std::string::npos);
  EXPECT_EQ(
      RunKpiscale({"simulate", "--hpa", dir.File("none.yaml"), "--trace", dir.File("bad.csv")})
          .exit_code,
      2);
  EXPECT_NE(RunKpiscale({"simulate"}).exit_code, 0);
}

// A stand-in for kpiscale-adapter's custom-metrics API, serving bodies shaped like the
// recorded custom.metrics.k8s.io/v1beta2 examples.
class FakeAdapter {
 public:
  FakeAdapter() {
    std::ifstream list(std::string(KPISCALE_SHARED_DIR) +
                       "/reference/k8s-examples/cm_v1beta2_metricvaluelist.json");
    pods_template_ = nlohmann::json::parse(list);
    std::ifstream single(std::string(KPISCALE_SHARED_DIR) +
                         "/reference/k8s-examples/cm_v1beta2_single_object.json");
    object_template_ = nlohmann::json::parse(single);
    server_.Get(R"(/apis/custom.metrics.k8s.io/v1beta2/namespaces/production/pods/\*/([a-z_]+))",
                [this](const httplib::Request& req, httplib::Response& res) {
                  Record(req);
                  nlohmann::json body = pods_template_;
                  nlohmann::json item = body["items"][0];
                  body["items"] = nlohmann::json::array();
                  for (const char* pod : {"agent-a", "agent-b", "agent-c"}) {
                    item["describedObject"]["name"] = pod;
                    item["describedObject"]["namespace"] = "production";
                    item["metric"]["name"] = req.matches[1].str();
                    item["value"] = "150";
                    body["items"].push_back(item);
                  }
                  res.set_content(body.dump(), "application/json");
                });
    server_.Get(
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/production/deployments.apps/"
        "ci-failure-agent/http_slo_violations_ratio",
        [this](const httplib::Request& req, httplib::Response& res) {
          Record(req);
          nlohmann::json body = object_template_;
          body["items"][0]["describedObject"]["name"] = "ci-failure-agent";
          body["items"][0]["metric"]["name"] = "http_slo_violations_ratio";
          body["items"][0]["value"] = "20m";
          res.set_content(body.dump(), "application/json");
        });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::yield();
  }
  ~FakeAdapter() {
    server_.stop();
    thread_.join();
  }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> Requests() {
    std::lock_guard<std::mutex> l(mu_);
    return requests_;
  }

 private:
  void Record(const httplib::Request& req) {
    std::lock_guard<std::mutex> l(mu_);
    std::string line = req.path;
    if (req.has_param("labelSelector"))
      line += "?labelSelector=" + req.get_param_value("labelSelector");
    requests_.push_back(line);
  }
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  nlohmann::json pods_template_;
  nlohmann::json object_template_;
  std::mutex mu_;
  std::vector<std::string> requests_;
};

TEST(Simulate, ReadsLiveValuesFromAnAdapter) {
  FakeAdapter adapter;
  const RunResult r =
      RunKpiscale({"simulate", "--hpa", Source("examples/hpa/ci-failure-agent-hpa.yaml"),
                   "--adapter", adapter.Url(), "--pod-selector", "app=ci-failure-agent", "--ticks",
                   "3", "--interval", "0", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const nlohmann::json rows = nlohmann::json::parse(r.out);
  ASSERT_EQ(rows.size(), 3u);
  const nlohmann::json& first = rows[0];
  // 3 live pods at 150 req/s against 50: proposal 9; the SLO ratio 0.02 against 0.01 with 3
  // ready pods: 6. CPU and memory are unknown (no trace): invalid, which blocks only
  // scale-down. Scale-up is limited by max(+100 %, +2) per 30 s: 3 → 6.
  EXPECT_EQ(first["spec_replicas"], 3);
  EXPECT_EQ(first["recommendation"], 9);
  EXPECT_EQ(first["desired_replicas"], 6);
  EXPECT_EQ(first["scaling_limited"], "ScaleUpLimit");
  EXPECT_EQ(first["metrics"][2]["value"], 150.0);
  EXPECT_EQ(first["metrics"][3]["value"], 0.02);
  EXPECT_TRUE(first["metrics"][0]["value"].is_null());
  EXPECT_NE(first["metrics"][0]["error"].get<std::string>().find(
                "no metrics returned from resource metrics API"),
            std::string::npos);
  const std::vector<std::string> reqs = adapter.Requests();
  ASSERT_FALSE(reqs.empty());
  EXPECT_NE(std::find(reqs.begin(), reqs.end(),
                      "/apis/custom.metrics.k8s.io/v1beta2/namespaces/production/pods/*/"
                      "http_requests_per_second?labelSelector=app=ci-failure-agent"),
            reqs.end());
  // Every evaluation asked again (initial pod listing + 2 metrics per tick).
  EXPECT_EQ(reqs.size(), 1u + 3u * 2u);
}

TEST(Simulate, AdapterDownIsAnInvalidMetricNotACrash) {
  // A port that was free a moment ago: nothing listens there.
  int port = 0;
  {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    socklen_t len = sizeof(addr);
    ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port = ntohs(addr.sin_port);
    close(fd);
  }
  const RunResult r =
      RunKpiscale({"simulate", "--hpa", Source("examples/hpa/ci-failure-agent-hpa.yaml"),
                   "--adapter", "http://127.0.0.1:" + std::to_string(port), "--ticks", "1",
                   "--interval", "0", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const nlohmann::json rows = nlohmann::json::parse(r.out);
  EXPECT_EQ(rows[0]["desired_replicas"], 3);
  EXPECT_EQ(rows[0]["scaling_active"], "FailedGetResourceMetric");
}

}  // namespace
}  // namespace kpiscale::testing
