// Adapter benchmark (bench/adapter/run.sh runs it next to a real Prometheus holding the same
// data). Prints one JSON object per measurement on stdout.
//
//   adapter_bench ingest PODS WINDOWS      windows/s through IngestHandler (decode, validate,
//                                          store) on one thread; each pod pushes 1 s windows
//   adapter_bench query PODS QUERIES       fill PODS pods x 30 windows, then time pods/* with a
//                                          label selector and a workload p99 through ApiHandler;
//                                          prints RSS growth per pod
//   adapter_bench export PODS FILE         write the same per-pod data as OpenMetrics classic
//                                          histograms (for promtool tsdb create-blocks-from)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "kpiscale/adapter/api.h"
#include "kpiscale/adapter/ingest.h"
#include "kpiscale/adapter/window_store.h"
#include "kpiscale/common/clock.h"
#include "kpiscale/common/report_builder.h"

namespace {

using namespace kpiscale;  // NOLINT

constexpr int kRequestsPerWindow = 50;
constexpr int kWindows = 30;
const std::vector<double> kBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.5, 1, 2.5, 5, 10};

// Deterministic per-pod latencies: lognormal around 50 ms, pod i a little slower than i-1.
std::vector<double> Latencies(int pod, int window) {
  std::mt19937 rng(static_cast<uint32_t>(pod * 1000 + window));
  std::lognormal_distribution<double> d(std::log(0.05 * (1 + (pod % 10) * 0.1)), 0.6);
  std::vector<double> v(kRequestsPerWindow);
  for (auto& x : v) x = d(rng);
  return v;
}

std::string PodName(int i) { return "web-" + std::to_string(i); }

kpiscale::v1::ReportBatch Batch(int pod, int window, int64_t end_ms) {
  common::ReportBatchBuilder b("bench", PodName(pod), "uid-" + std::to_string(pod));
  b.NodeName("node-" + std::to_string(pod % 50)).Workload("Deployment", "web").ServiceName("web");
  b.Label("app", "web").Label("pod-template-hash", "5d9f7c6b8d");
  common::WindowBuilder w({0.2});
  for (double d : Latencies(pod, window)) w.RecordHttpRequest(200, d, d / 2);
  b.AddWindow(w.Finish(static_cast<uint64_t>(window + 1), end_ms - 1000, end_ms));
  return b.Build();
}

double RssBytes() {
  std::ifstream in("/proc/self/statm");
  long pages = 0, rss = 0;
  in >> pages >> rss;
  return static_cast<double>(rss) * 4096.0;
}

double Percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))];
}

int Ingest(int pods, int windows) {
  const int64_t start = 1'700'000'000'000;
  // Pre-serialise every body so that only the adapter's work is timed.
  std::vector<std::string> bodies;
  bodies.reserve(static_cast<std::size_t>(pods * windows));
  for (int w = 0; w < windows; ++w) {
    for (int p = 0; p < pods; ++p) {
      bodies.push_back(Batch(p, w, start + (w + 1) * 1000).SerializeAsString());
    }
  }
  common::FakeClock clock(start + windows * 1000);
  auto store = std::move(adapter::CreateMemoryWindowStore(adapter::StoreOptions{})).value();
  adapter::IngestHandler handler(*store, clock, adapter::IngestOptions{}, nullptr);
  const auto t0 = std::chrono::steady_clock::now();
  int ok = 0;
  for (const auto& body : bodies)
    ok += handler.Handle("application/x-protobuf", body).status == 200;
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "{\"bench\":\"ingest\",\"pods\":%d,\"windows\":%zu,\"ok\":%d,\"seconds\":%.4f,"
      "\"windows_per_second\":%.0f}\n",
      pods, bodies.size(), ok, secs, static_cast<double>(bodies.size()) / secs);
  return ok == static_cast<int>(bodies.size()) ? 0 : 1;
}

int Query(int pods, int queries) {
  const int64_t start = 1'700'000'000'000;
  common::FakeClock clock(start + kWindows * 1000);
  const double rss0 = RssBytes();
  auto store = std::move(adapter::CreateMemoryWindowStore(adapter::StoreOptions{})).value();
  adapter::IngestHandler handler(*store, clock, adapter::IngestOptions{}, nullptr);
  for (int w = 0; w < kWindows; ++w) {
    for (int p = 0; p < pods; ++p) {
      handler.Handle("application/x-protobuf",
                     Batch(p, w, start + (w + 1) * 1000).SerializeAsString());
    }
  }
  const double rss1 = RssBytes();
  adapter::WrittenMetrics written;
  adapter::HealthChecks health;
  adapter::ApiHandler api(*store, written, health, clock, adapter::ApiOptions{});
  auto time_query = [&](const std::string& target, const char* name) {
    std::vector<double> ms;
    std::size_t bytes = 0;
    for (int i = 0; i < queries; ++i) {
      adapter::ApiRequest r;
      r.method = "GET";
      r.target = target;
      const auto t0 = std::chrono::steady_clock::now();
      auto resp = api.Handle(r);
      ms.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      bytes = resp.body.size();
      if (resp.status != 200) {
        std::fprintf(stderr, "%s: %d %s\n", target.c_str(), resp.status, resp.body.c_str());
        std::exit(1);
      }
    }
    std::printf(
        "{\"bench\":\"%s\",\"pods\":%d,\"queries\":%d,\"p50_ms\":%.4f,\"p99_ms\":%.4f,"
        "\"body_bytes\":%zu}\n",
        name, pods, queries, Percentile(ms, 0.5), Percentile(ms, 0.99), bytes);
  };
  time_query(
      "/apis/custom.metrics.k8s.io/v1beta2/namespaces/bench/pods/%2A/"
      "http_request_duration_p99_seconds?labelSelector=app%3Dweb",
      "pods_selector_p99");
  time_query(
      "/apis/custom.metrics.k8s.io/v1beta2/namespaces/bench/pods/%2A/"
      "http_requests_per_second?labelSelector=app%3Dweb",
      "pods_selector_rps");
  time_query(
      "/apis/custom.metrics.k8s.io/v1beta2/namespaces/bench/deployments.apps/web/"
      "http_request_duration_p99_seconds",
      "workload_p99");
  std::printf(
      "{\"bench\":\"memory\",\"pods\":%d,\"windows_per_pod\":%d,\"rss_growth_bytes\":%.0f,"
      "\"bytes_per_pod\":%.0f}\n",
      pods, kWindows, rss1 - rss0, (rss1 - rss0) / pods);
  return 0;
}

// The same requests as OpenMetrics classic histograms, one sample per second per pod, so that
// Prometheus holds exactly what the adapter holds.
int Export(int pods, const char* file) {
  const int64_t start_s =
      std::atoll(std::getenv("BENCH_START_S") ? std::getenv("BENCH_START_S") : "1700000000");
  std::FILE* f = std::fopen(file, "w");
  if (f == nullptr) return 1;
  std::fprintf(f, "# TYPE kpiscale_sidecar_http_request_duration_seconds histogram\n");
  for (int p = 0; p < pods; ++p) {
    std::vector<uint64_t> cum(kBuckets.size() + 1, 0);
    double sum = 0;
    for (int w = 0; w <= kWindows; ++w) {
      if (w > 0) {
        for (double d : Latencies(p, w - 1)) {
          sum += d;
          for (std::size_t b = 0; b < kBuckets.size(); ++b) {
            if (d <= kBuckets[b]) ++cum[b];
          }
          ++cum.back();
        }
      }
      const int64_t ts = start_s + w;
      const std::string labels =
          "namespace=\"bench\",pod=\"" + PodName(p) + "\",app=\"web\",deployment=\"web\"";
      for (std::size_t b = 0; b < kBuckets.size(); ++b) {
        std::fprintf(
            f, "kpiscale_sidecar_http_request_duration_seconds_bucket{%s,le=\"%g\"} %llu %lld\n",
            labels.c_str(), kBuckets[b], static_cast<unsigned long long>(cum[b]),
            static_cast<long long>(ts));
      }
      std::fprintf(
          f, "kpiscale_sidecar_http_request_duration_seconds_bucket{%s,le=\"+Inf\"} %llu %lld\n",
          labels.c_str(), static_cast<unsigned long long>(cum.back()), static_cast<long long>(ts));
      std::fprintf(f, "kpiscale_sidecar_http_request_duration_seconds_count{%s} %llu %lld\n",
                   labels.c_str(), static_cast<unsigned long long>(cum.back()),
                   static_cast<long long>(ts));
      std::fprintf(f, "kpiscale_sidecar_http_request_duration_seconds_sum{%s} %.6f %lld\n",
                   labels.c_str(), sum, static_cast<long long>(ts));
    }
  }
  std::fprintf(f, "# EOF\n");
  std::fclose(f);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(
        stderr,
        "usage: adapter_bench ingest PODS WINDOWS | query PODS QUERIES | export PODS FILE\n");
    return 2;
  }
  const std::string mode = argv[1];
  const int pods = std::atoi(argv[2]);
  if (mode == "ingest") return Ingest(pods, argc > 3 ? std::atoi(argv[3]) : 30);
  if (mode == "query") return Query(pods, argc > 3 ? std::atoi(argv[3]) : 200);
  if (mode == "export" && argc > 3) return Export(pods, argv[3]);
  return 2;
}
