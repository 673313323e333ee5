#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace kpiscale::sidecar {

/// Classic bucket bounds of the cache and db duration histograms.
inline constexpr std::array<double, 12> kDataBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                        0.05,   0.1,   0.25,   0.5,   1,    2.5};

/// Every Prometheus metric the sidecar itself exports (the names agreed in docs/sidecar.md),
/// built once; hot paths never look a metric up. HTTP, cache and db figures are applied once per
/// window by the WindowBuilder, so scrapes lag the traffic by at most one push interval.
/// Thread-safety: the prometheus-cpp metrics are thread-safe; the struct is immutable.
struct SidecarStats {
  /// requests_total per route and status class (1xx..5xx), and request_duration_seconds per route.
  std::vector<std::array<prometheus::Counter*, 5>> requests;
  std::vector<prometheus::Histogram*> duration;
  prometheus::Histogram* ttfb = nullptr;
  prometheus::Counter* errors = nullptr;
  std::vector<prometheus::Counter*> slow;  // per SLO threshold
  prometheus::Gauge* in_flight = nullptr;
  prometheus::Counter* upgrades = nullptr;
  std::array<prometheus::Counter*, 3> upstream_failures{};  // connect, timeout, reset
  prometheus::Counter* received_bytes = nullptr;
  prometheus::Counter* sent_bytes = nullptr;
  prometheus::Counter* client_aborts = nullptr;
  prometheus::Counter* rejected = nullptr;

  prometheus::Counter* cache_commands = nullptr;
  prometheus::Counter* cache_hits = nullptr;
  prometheus::Counter* cache_misses = nullptr;
  prometheus::Counter* cache_errors = nullptr;
  prometheus::Histogram* cache_duration = nullptr;
  prometheus::Counter* db_queries = nullptr;
  prometheus::Counter* db_errors = nullptr;
  prometheus::Histogram* db_duration = nullptr;

  prometheus::Counter* windows_pushed = nullptr;
  prometheus::Counter* windows_retried = nullptr;
  prometheus::Counter* windows_dropped = nullptr;
  prometheus::Counter* push_failures = nullptr;
  prometheus::Gauge* push_queue = nullptr;

  /// Registers everything on `registry` (process_* and kpiscale_build_info come from
  /// MakeProcessCollector). `route_names` ends with "other"; with a single route no `route` label
  /// is added.
  static absl::StatusOr<std::unique_ptr<SidecarStats>> Create(
      prometheus::Registry& registry, const std::vector<double>& slo_thresholds,
      const std::vector<double>& buckets, const std::vector<std::string>& route_names);
};

/// common::ProcessCollector for the sidecar: the standard process_* metrics from /proc at each
/// scrape and kpiscale_build_info{component="sidecar"}.
std::shared_ptr<prometheus::Collectable> MakeProcessCollector();

/// Formats a threshold for a label the way Prometheus prints floats ("0.2", "1", "0.05").
std::string FormatThreshold(double seconds);

}  // namespace kpiscale::sidecar
