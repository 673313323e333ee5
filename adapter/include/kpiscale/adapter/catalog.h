#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "kpiscale/adapter/window_store.h"
#include "kpiscale/common/label_selector.h"

namespace kpiscale::adapter {

enum class Signal { kHttp, kCache, kDb };

enum class MetricKind {
  kRate,        // events / observed seconds
  kInFlight,    // sum of durations / observed seconds
  kErrorRatio,  // errors / events
  kQuantile,    // from the merged latency buckets; series label `quantile`
  kSloRatio,    // slower than threshold / requests; series label `threshold`
  kHitRatio,    // hits / (hits + misses)
};

/// One metric the adapter serves (architecture.md, metric catalogue).
struct MetricDef {
  std::string name;
  Signal signal;
  MetricKind kind;
  std::optional<double> fixed_quantile;  // the _p50/_p95/_p99 aliases
};

/// Every served metric, aliases included, in a stable order. Never empty.
const std::vector<MetricDef>& Catalog();
/// nullptr when the name is not in the catalogue.
const MetricDef* FindMetric(std::string_view name);

inline constexpr double kDefaultQuantile = 0.99;
inline constexpr double kDefaultSloThreshold = 0.2;

/// Which series of a metric a request selects: the quantile or the SLO threshold.
struct SeriesChoice {
  double quantile = kDefaultQuantile;
  double threshold = kDefaultSloThreshold;
  /// The series labels of the chosen series (`quantile` or `threshold`, or none).
  common::Labels labels;
};

/// Resolves a metric-label selector against the series a metric has. A pinned `quantile=` or
/// `threshold=` (equality or a one-value `in`) picks that series (InvalidArgument when it is not
/// a number in range); otherwise the default series is used if the selector matches it.
/// nullopt when the selector matches no series (the answer is then empty / 404).
absl::StatusOr<std::optional<SeriesChoice>> ChooseSeries(const MetricDef& metric,
                                                         const common::LabelSelector& selector,
                                                         const common::Labels& extra_labels = {});

/// A computed value: canonical quantity, end of the newest window used, window in seconds.
struct MetricValue {
  std::string quantity;
  int64_t timestamp_ms = 0;
  int64_t window_seconds = 0;
  double value = 0;  // the same value as a double, for tests and benchmarks
};

/// The value of a metric for one pod, from its own windows; nullopt when there is no data
/// (no window carried the signal, or a ratio's denominator is zero).
std::optional<MetricValue> EvaluatePod(const MetricDef& metric, const SeriesChoice& series,
                                       const PodView& pod);

/// The value for a group of pods (workload, service, node, namespace), from their merged
/// windows: rates and concurrency are summed over pods, ratios are ratios of summed counts,
/// quantiles come from the merged buckets. Never an average of per-pod figures.
std::optional<MetricValue> EvaluateGroup(const MetricDef& metric, const SeriesChoice& series,
                                         const std::vector<const PodView*>& pods);

/// Formats a quantile or threshold label value the way series labels carry it ("0.99", "0.2").
std::string FormatSeriesNumber(double v);

}  // namespace kpiscale::adapter
