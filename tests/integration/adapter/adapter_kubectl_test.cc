#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "kpiscale/common/quantity.h"
#include "kpiscale/common/report_builder.h"

extern char** environ;

namespace {

using Json = nlohmann::ordered_json;
namespace fs = std::filesystem;

const std::string kP1 = "/apis/custom.metrics.k8s.io/v1beta1";
const std::string kP2 = "/apis/custom.metrics.k8s.io/v1beta2";
const std::string kE = "/apis/external.metrics.k8s.io/v1beta1";

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Result {
  int exit_code = -1;
  std::string out;
};

// Runs a shell command line and captures stdout (stderr merged).
Result Shell(const std::string& cmd) {
  Result r;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

class AdapterProcess {
 public:
  explicit AdapterProcess(std::vector<std::string> extra) {
    dir_ = fs::temp_directory_path() /
           ("kpiscale-adapter-it-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "home");
    std::vector<std::string> args = {KPISCALE_ADAPTER_BINARY,
                                     "--local",
                                     "--secure-port=0",
                                     "--ingest-port=0",
                                     "--metrics-port=0",
                                     "--cert-dir=" + (dir_ / "certs").string(),
                                     "--ports-file=" + (dir_ / "ports.json").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    const std::string log = (dir_ / "adapter.log").string();
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    if (posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
    // Poll for the ports file (written once every port accepts connections).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (pid_ > 0 && std::chrono::steady_clock::now() < deadline) {
      std::ifstream in(dir_ / "ports.json");
      if (in) {
        Json j = Json::parse(in, nullptr, false);
        if (!j.is_discarded()) {
          secure_ = j["secure_port"];
          ingest_ = j["ingest_port"];
          metrics_ = j["metrics_port"];
          break;
        }
      }
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  ~AdapterProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    fs::remove_all(dir_);
  }
  // SIGTERM, then the exit code.
  int Terminate() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  bool ok() const { return pid_ > 0 && secure_ > 0; }
  std::string Log() const {
    std::ifstream in(dir_ / "adapter.log");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  Result Kubectl(const std::string& path) const {
    return Shell("KUBECONFIG=/dev/null HOME=" + (dir_ / "home").string() + " kubectl get --raw '" +
                 path + "' --server=https://127.0.0.1:" + std::to_string(secure_) +
                 " --insecure-skip-tls-verify --token=x");
  }
  Json KubectlJson(const std::string& path) const {
    Result r = Kubectl(path);
    EXPECT_EQ(r.exit_code, 0) << path << "\n" << r.out;
    Json j = Json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << path << "\n" << r.out;
    return j;
  }
  httplib::Result Push(const kpiscale::common::ReportBatchBuilder& b) const {
    httplib::Client c("127.0.0.1", ingest_);
    return c.Post("/v1/reports", b.SerializeAsString(), "application/x-protobuf");
  }
  int metrics_port() const { return metrics_; }
  int secure_port() const { return secure_; }
  int ingest_port() const { return ingest_; }

 private:
  static inline int counter_ = 0;
  fs::path dir_;
  pid_t pid_ = -1;
  int secure_ = 0, ingest_ = 0, metrics_ = 0;
};

kpiscale::v1::Window Window(uint64_t seq, int64_t end_ms, int requests, int errors, double d) {
  kpiscale::common::WindowBuilder b({0.2});
  for (int i = 0; i < requests; ++i) b.RecordHttpRequest(i < errors ? 503 : 200, d, d / 2);
  return b.Finish(seq, end_ms - 1000, end_ms);
}

kpiscale::common::ReportBatchBuilder Pod(const std::string& ns, const std::string& name,
                                         const std::string& workload, const std::string& app) {
  kpiscale::common::ReportBatchBuilder b(ns, name, "uid-" + name);
  b.NodeName("node-1").Workload("Deployment", workload).ServiceName(workload);
  b.Label("app", app).Label("pod-template-hash", "abc");
  return b;
}

std::vector<std::string> Keys(const Json& j) {
  std::vector<std::string> out;
  for (auto it = j.begin(); it != j.end(); ++it) out.push_back(it.key());
  return out;
}

double Value(const Json& item) {
  return kpiscale::common::Quantity::Parse(item["value"].get<std::string>())->ToDouble();
}

bool IsRfc3339Z(const std::string& s) {
  return s.size() == 20 && s[4] == '-' && s[10] == 'T' && s[19] == 'Z';
}

class AdapterKubectlTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    adapter_ =
        new AdapterProcess({"--enable-write-metrics", "--window=300s", "--stale-after=120s"});
    ASSERT_TRUE(adapter_->ok()) << adapter_->Log();
    const int64_t now = NowMs();
    // web: 3 pods, 10/20/30 requests per 1 s window; api: one pod. Two windows each.
    for (int i = 1; i <= 3; ++i) {
      auto b = Pod("shop", "web-" + std::to_string(i), "web", "web");
      b.AddWindow(Window(1, now - 1000, 10 * i, i == 3 ? 3 : 0, 0.05 * i));
      b.AddWindow(Window(2, now, 10 * i, 0, 0.05 * i));
      auto r = adapter_->Push(b);
      ASSERT_TRUE(r);
      ASSERT_EQ(r->status, 200) << r->body;
      EXPECT_EQ(Json::parse(r->body)["accepted"], 2);
    }
    auto api = Pod("shop", "api-1", "api", "api");
    api.AddWindow(Window(1, now, 5, 0, 0.01));
    ASSERT_EQ(adapter_->Push(api)->status, 200);
  }
  static void TearDownTestSuite() {
    delete adapter_;
    adapter_ = nullptr;
  }
  static AdapterProcess* adapter_;
};
AdapterProcess* AdapterKubectlTest::adapter_ = nullptr;

TEST_F(AdapterKubectlTest, PodsWildcardWithSelectorBothVersions) {
  for (const auto& p : {kP1, kP2}) {
    for (const std::string star : {"*", "%2A"}) {
      Json j = adapter_->KubectlJson(p + "/namespaces/shop/pods/" + star +
                                     "/http_requests_per_second?labelSelector=app%3Dweb");
      EXPECT_EQ(Keys(j), (std::vector<std::string>{"kind", "apiVersion", "metadata", "items"}));
      EXPECT_EQ(j["kind"], "MetricValueList");
      EXPECT_EQ(j["apiVersion"], "custom.metrics.k8s.io/" + p.substr(p.size() - 7));
      EXPECT_EQ(j["metadata"], Json::object());
      ASSERT_EQ(j["items"].size(), 3u);
      for (const auto& item : j["items"]) {
        const bool v1 = p == kP1;
        const std::vector<std::string> want =
            v1 ? std::vector<std::string>{"describedObject", "metricName", "timestamp",
                                          "window",          "value",      "selector"}
               : std::vector<std::string>{"describedObject", "metric", "timestamp", "windowSeconds",
                                          "value"};
        EXPECT_EQ(Keys(item), want);
        EXPECT_EQ(Keys(item["describedObject"]),
                  (std::vector<std::string>{"kind", "namespace", "name", "apiVersion"}));
        EXPECT_EQ(item["describedObject"]["kind"], "Pod");
        EXPECT_EQ(item["describedObject"]["namespace"], "shop");
        EXPECT_EQ(item["describedObject"]["apiVersion"], "/v1");
        EXPECT_TRUE(IsRfc3339Z(item["timestamp"])) << item["timestamp"];
        EXPECT_EQ(item[v1 ? "window" : "windowSeconds"], 2);
        if (v1) {
          EXPECT_EQ(item["metricName"], "http_requests_per_second");
          EXPECT_TRUE(item["selector"].is_null());
        } else {
          EXPECT_EQ(item["metric"],
                    Json::parse(R"({"name":"http_requests_per_second","selector":null})"));
        }
        const std::string name = item["describedObject"]["name"];
        EXPECT_EQ(item["value"], std::to_string(10 * (name.back() - '0')));
      }
    }
  }
}

TEST_F(AdapterKubectlTest, NamedObjectsEveryResourceForm) {
  for (const auto& p : {kP1, kP2}) {
    Json pod = adapter_->KubectlJson(p + "/namespaces/shop/pods/web-3/http_errors_ratio");
    ASSERT_EQ(pod["items"].size(), 1u);
    EXPECT_EQ(pod["items"][0]["value"], "50m");  // 3 of 60
    Json dep =
        adapter_->KubectlJson(p + "/namespaces/shop/deployments.apps/web/http_requests_per_second");
    ASSERT_EQ(dep["items"].size(), 1u);
    EXPECT_EQ(
        dep["items"][0]["describedObject"],
        Json::parse(
            R"({"kind":"Deployment","namespace":"shop","name":"web","apiVersion":"apps/v1"})"));
    EXPECT_EQ(dep["items"][0]["value"], "60");
    Json svc = adapter_->KubectlJson(p + "/namespaces/shop/services/api/http_requests_per_second");
    EXPECT_EQ(svc["items"][0]["describedObject"]["kind"], "Service");
    EXPECT_EQ(svc["items"][0]["value"], "5");
    Json ns = adapter_->KubectlJson(p + "/namespaces/shop/metrics/http_requests_per_second");
    ASSERT_EQ(ns["items"].size(), 1u);
    EXPECT_EQ(ns["items"][0]["describedObject"],
              Json::parse(R"({"kind":"Namespace","name":"shop","apiVersion":"/v1"})"));
    EXPECT_EQ(ns["items"][0]["value"], "65");
    Json node = adapter_->KubectlJson(p + "/nodes/node-1/http_requests_per_second");
    EXPECT_EQ(node["items"][0]["describedObject"],
              Json::parse(R"({"kind":"Node","name":"node-1","apiVersion":"/v1"})"));
    Json root_ns = adapter_->KubectlJson(p + "/namespaces/shop/http_requests_per_second");
    EXPECT_EQ(root_ns["items"][0]["value"], "65");
  }
}

TEST_F(AdapterKubectlTest, WorkloadP99IsFromMergedBucketsAndSelectorIsEchoed) {
  // web pods: 20 requests at 50 ms, 40 at 100 ms, 60 at 150 ms: the merged p99 is ~150 ms, the
  // p50 ~100 ms.
  Json p99 = adapter_->KubectlJson(
      kP2 + "/namespaces/shop/deployments.apps/web/http_request_duration_p99_seconds");
  EXPECT_NEAR(Value(p99["items"][0]), 0.15, 0.15 * 0.011);
  Json p50 =
      adapter_->KubectlJson(kP2 +
                            "/namespaces/shop/deployments.apps/web/"
                            "http_request_duration_seconds?metricLabelSelector=quantile%3D0.5");
  EXPECT_NEAR(Value(p50["items"][0]), 0.10, 0.10 * 0.011);
  EXPECT_EQ(p50["items"][0]["metric"]["selector"],
            Json::parse(R"({"matchLabels":{"quantile":"0.5"}})"));
  Json slo = adapter_->KubectlJson(kP1 +
                                   "/namespaces/shop/deployments.apps/web/"
                                   "http_slo_violations_ratio?metricLabelSelector=threshold%3D0.2");
  EXPECT_EQ(slo["items"][0]["value"], "0");
  EXPECT_EQ(slo["items"][0]["selector"], Json::parse(R"({"matchLabels":{"threshold":"0.2"}})"));
}

TEST_F(AdapterKubectlTest, ExternalMetrics) {
  for (const std::string sel : {"workload%3Dweb", "deployment%3Dweb"}) {
    Json j = adapter_->KubectlJson(
        kE + "/namespaces/shop/http_requests_per_second?labelSelector=" + sel);
    EXPECT_EQ(Keys(j), (std::vector<std::string>{"kind", "apiVersion", "metadata", "items"}));
    EXPECT_EQ(j["kind"], "ExternalMetricValueList");
    EXPECT_EQ(j["apiVersion"], "external.metrics.k8s.io/v1beta1");
    ASSERT_EQ(j["items"].size(), 1u);
    const auto& item = j["items"][0];
    EXPECT_EQ(Keys(item), (std::vector<std::string>{"metricName", "metricLabels", "timestamp",
                                                    "window", "value"}));
    EXPECT_EQ(item["metricName"], "http_requests_per_second");
    EXPECT_EQ(item["metricLabels"], Json::parse(R"({"deployment":"web","workload":"web"})"));
    EXPECT_EQ(item["window"], 2);
    EXPECT_EQ(item["value"], "60");
  }
  Result nf = adapter_->Kubectl(kE + "/namespaces/shop/nonexistent-metric");
  EXPECT_NE(nf.exit_code, 0);
  EXPECT_NE(nf.out.find("NotFound"), std::string::npos) << nf.out;
}

TEST_F(AdapterKubectlTest, ConformanceErrorsAndDiscovery) {
  for (const std::string& path : std::vector<std::string>{
           "/apis/", kP1 + "/blah", kP1 + "/nodes/foo", kP1 + "/namespaces/ns/pods/bar",
           kE + "/nonexistent-metric", kE + "/namespaces/foo", kE + "/namespaces/foo/group/metric",
           kP2 + "/namespaces/shop/pods/nope/http_requests_per_second"}) {
    Result r = adapter_->Kubectl(path);
    EXPECT_NE(r.exit_code, 0) << path;
    EXPECT_NE(r.out.find("NotFound"), std::string::npos) << path << "\n" << r.out;
  }
  Result named = adapter_->Kubectl(kP1 + "/namespaces/shop/pods/nope/http_requests_per_second");
  EXPECT_NE(
      named.out.find("the server could not find the metric http_requests_per_second for pods nope"),
      std::string::npos)
      << named.out;
  Result bad = adapter_->Kubectl(
      kP2 + "/namespaces/shop/pods/*/http_requests_per_second?labelSelector=a%3D%3D%3Db");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.out.find("BadRequest"), std::string::npos) << bad.out;
  for (const auto& [path, gv] : {std::pair{kP1, "custom.metrics.k8s.io/v1beta1"},
                                 std::pair{kP2, "custom.metrics.k8s.io/v1beta2"},
                                 std::pair{kE, "external.metrics.k8s.io/v1beta1"}}) {
    Json d = adapter_->KubectlJson(path);
    EXPECT_EQ(d["kind"], "APIResourceList");
    EXPECT_EQ(d["groupVersion"], gv);
    EXPECT_GE(d["resources"].size(), 10u);
  }
  EXPECT_EQ(adapter_->KubectlJson("/version")["major"], "1");
  EXPECT_EQ(adapter_->KubectlJson("/openapi/v2")["swagger"], "2.0");
  EXPECT_EQ(adapter_->KubectlJson("/apis")["kind"], "APIGroupList");
  Result ready = adapter_->Kubectl("/readyz?verbose");
  EXPECT_EQ(ready.exit_code, 0);
  EXPECT_NE(ready.out.find("[+]shutdown ok\n"), std::string::npos) << ready.out;
  EXPECT_NE(ready.out.find("readyz check passed"), std::string::npos);
}

TEST_F(AdapterKubectlTest, StaleAndLateWindowsAreAbsentAndMetricsAreExported) {
  const int64_t now = NowMs();
  auto old = Pod("shop", "gone-1", "gone", "gone");
  old.AddWindow(Window(1, now - 121'000, 5, 0, 0.01));  // older than --stale-after
  auto r = adapter_->Push(old);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(Json::parse(r->body)["accepted"], 1);
  Result gone = adapter_->Kubectl(kP2 + "/namespaces/shop/pods/gone-1/http_requests_per_second");
  EXPECT_NE(gone.exit_code, 0) << gone.out;
  // A bad batch gets 400 with a reason, a wrong content type 415.
  httplib::Client c("127.0.0.1", adapter_->ingest_port());
  auto bad = c.Post("/v1/reports", std::string("garbage"), "application/x-protobuf");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  auto ct = c.Post("/v1/reports", std::string("{}"), "application/json");
  EXPECT_EQ(ct->status, 415);
  httplib::Client m("127.0.0.1", adapter_->metrics_port());
  auto metrics = m.Get("/metrics");
  ASSERT_TRUE(metrics);
  for (const char* name :
       {"kpiscale_adapter_requests_total{", "kpiscale_adapter_request_duration_seconds_bucket",
        "kpiscale_adapter_ingest_windows_total{reason=\"\",result=\"accepted\"}",
        "kpiscale_adapter_ingest_batches_total{code=\"400\"}", "kpiscale_adapter_pods_stored",
        "kpiscale_adapter_answer_freshness_seconds_bucket", "process_resident_memory_bytes",
        "kpiscale_build_info"}) {
    EXPECT_NE(metrics->body.find(name), std::string::npos) << name;
  }
}

TEST(AdapterProcessTest, WriteHookAndSigtermDrainsAndExitsZero) {
  AdapterProcess a({"--enable-write-metrics"});
  ASSERT_TRUE(a.ok()) << a.Log();
  httplib::SSLClient c("127.0.0.1", a.secure_port());
  c.enable_server_certificate_verification(false);
  auto w = c.Post("/write-metrics/namespaces/default/pods/q-1/queue_depth?labels=app%3Dq",
                  std::string("\"250m\""), "application/json");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->status, 200) << w->body;
  Json j = a.KubectlJson(kP2 + "/namespaces/default/pods/*/queue_depth?labelSelector=app%3Dq");
  ASSERT_EQ(j["items"].size(), 1u);
  EXPECT_EQ(j["items"][0]["value"], "250m");
  EXPECT_EQ(j["items"][0]["describedObject"]["name"], "q-1");
  EXPECT_EQ(a.Terminate(), 0) << a.Log();
  EXPECT_NE(a.Log().find("msg=stopped"), std::string::npos);
}

TEST(AdapterProcessTest, RefusesWriteHookWithoutLocalAndBadFlags) {
  Result r = Shell(std::string(KPISCALE_ADAPTER_BINARY) + " --enable-write-metrics --validate");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("--local"), std::string::npos) << r.out;
  Result v = Shell(std::string(KPISCALE_ADAPTER_BINARY) + " --local --validate");
  EXPECT_EQ(v.exit_code, 0) << v.out;
  Result ver = Shell(std::string(KPISCALE_ADAPTER_BINARY) + " --version");
  EXPECT_EQ(ver.exit_code, 0);
  EXPECT_NE(ver.out.find("kpiscale-adapter v"), std::string::npos);
  Result help = Shell(std::string(KPISCALE_ADAPTER_BINARY) + " --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--stale-after"), std::string::npos);
}

}  // namespace
