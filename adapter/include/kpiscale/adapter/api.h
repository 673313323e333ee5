#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kpiscale/adapter/health.h"
#include "kpiscale/adapter/window_store.h"
#include "kpiscale/adapter/written_metrics.h"
#include "kpiscale/common/clock.h"

namespace kpiscale::adapter {

inline constexpr char kCustomGroup[] = "custom.metrics.k8s.io";
inline constexpr char kExternalGroup[] = "external.metrics.k8s.io";

/// One API request, independent of the HTTP library.
struct ApiRequest {
  std::string method;
  std::string target;  // the raw request target: path and query, still percent-encoded
  std::string accept;
  std::string body;  // write-metrics only
};

/// The answer, plus what the request was (for metrics and logs).
struct ApiResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  std::string group;                        // "" for non-API paths
  std::string version;                      // "" for non-API paths
  std::string verb;                         // get, list, create, or "" for non-resource requests
  std::vector<int64_t> item_timestamps_ms;  // for the answer-freshness histogram
};

struct ApiOptions {
  bool enable_write_metrics = false;
  std::string version = "0.0.0";  // /version gitVersion without the leading v
};

/// The aggregated API server's routes: custom.metrics.k8s.io v1beta1 and v1beta2,
/// external.metrics.k8s.io v1beta1, discovery, /apis, /version, /openapi/v2, health, and the
/// write-metrics test hook. Bodies follow kubernetes-metrics-api.md §4 and §6 field by field.
/// Thread-safety: Handle may be called concurrently; the store and written metrics are shared.
class ApiHandler final {
 public:
  ApiHandler(const WindowStore& store, WrittenMetrics& written, const HealthChecks& health,
             const common::Clock& clock, ApiOptions options);

  ApiResponse Handle(const ApiRequest& request) const;

  /// The Swagger 2.0 document served on /openapi/v2 (built once).
  const std::string& openapi() const { return openapi_; }

 private:
  const WindowStore& store_;
  WrittenMetrics& written_;
  const HealthChecks& health_;
  const common::Clock& clock_;
  const ApiOptions options_;
  const std::string openapi_;
};

/// Formats Unix milliseconds as RFC 3339 UTC with whole seconds ("2024-05-01T12:00:00Z").
std::string FormatTimestamp(int64_t unix_ms);

/// Percent-decodes once; `plus_is_space` for query strings. False on a malformed escape.
bool PercentDecode(std::string_view in, bool plus_is_space, std::string* out);

}  // namespace kpiscale::adapter
