#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kpiscale/hpa/controller.h"

namespace httplib {
class Client;
}

namespace kpiscale::hpa {

/// Connection settings for a running kpiscale-adapter (or any custom-metrics API server).
struct AdapterOptions {
  std::string url;  ///< e.g. "http://127.0.0.1:8443" or "https://adapter:6443"
  std::string namespace_name = "default";
  /// The HPA's pod selector in string form (`labelSelector=` of pods/* requests).
  std::string pod_selector;
  std::string bearer_token;
  bool insecure_skip_tls_verify = false;
  int timeout_seconds = 5;
};

/// Reads metric values the way the HPA controller's metrics client does, from
/// custom.metrics.k8s.io/v1beta2 (Pods: `pods/*/{metric}?labelSelector=…`; Object:
/// `{resource}/{name}/{metric}`) and external.metrics.k8s.io/v1beta1. Resource metrics are not
/// served by the adapter: they come from a trace, so GetResourceMetric returns Unimplemented.
/// Thread-safety: not thread-safe (one HTTP client).
class AdapterMetricsSource final : public MetricsSource {
 public:
  static absl::StatusOr<std::unique_ptr<AdapterMetricsSource>> Create(AdapterOptions options);
  ~AdapterMetricsSource() override;
  AdapterMetricsSource(const AdapterMetricsSource&) = delete;
  AdapterMetricsSource& operator=(const AdapterMetricsSource&) = delete;

  absl::StatusOr<std::vector<PodResourceSample>> GetResourceMetric(const MetricSpec& spec) override;
  absl::StatusOr<PodMetricsInfo> GetRawMetric(const MetricSpec& spec) override;
  absl::StatusOr<int64_t> GetObjectMetric(const MetricSpec& spec) override;
  absl::StatusOr<std::vector<int64_t>> GetExternalMetric(const MetricSpec& spec) override;

  /// The request path for a metric (exposed for tests and error messages).
  std::string PathFor(const MetricSpec& spec) const;

 private:
  AdapterMetricsSource(AdapterOptions options, std::unique_ptr<httplib::Client> client);
  absl::StatusOr<std::vector<std::pair<std::string, int64_t>>> FetchItems(const MetricSpec& spec);

  AdapterOptions options_;
  std::unique_ptr<httplib::Client> client_;
};

/// Percent-encodes a query parameter value.
std::string UrlEncode(const std::string& s);

}  // namespace kpiscale::hpa
