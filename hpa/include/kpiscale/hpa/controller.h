#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kpiscale/hpa/types.h"

namespace kpiscale::hpa {

/// Where metric values come from: the metrics.k8s.io, custom.metrics.k8s.io and
/// external.metrics.k8s.io APIs as the controller's metrics client sees them. Implementations:
/// the conformance harness (fixed values), the simulator (trace or load model), and
/// AdapterMetricsSource (a running kpiscale-adapter).
/// Thread-safety: implementation-defined; the engine calls it from one thread.
class MetricsSource {
 public:
  virtual ~MetricsSource() = default;
  /// metrics.k8s.io PodMetrics for the HPA's pods. An empty list is the "no metrics returned"
  /// error (the engine reports it).
  virtual absl::StatusOr<std::vector<PodResourceSample>> GetResourceMetric(
      const MetricSpec& spec) = 0;
  /// custom.metrics.k8s.io per-pod values (pods/*) by pod name, milli-units.
  virtual absl::StatusOr<PodMetricsInfo> GetRawMetric(const MetricSpec& spec) = 0;
  /// custom.metrics.k8s.io value of the described object, milli-units.
  virtual absl::StatusOr<int64_t> GetObjectMetric(const MetricSpec& spec) = 0;
  /// external.metrics.k8s.io values of every matching series, milli-units.
  virtual absl::StatusOr<std::vector<int64_t>> GetExternalMetric(const MetricSpec& spec) = 0;
};

/// The upstream monitoring label of a reconcile's action.
enum class ActionLabel { kNone, kScaleUp, kScaleDown };
const char* ActionLabelName(ActionLabel label);

/// Everything one reconcile reads.
struct ReconcileInput {
  const HpaSpec* spec = nullptr;
  /// The HPA's status before this reconcile (desiredReplicas is kept on the refusing path).
  HpaStatus status;
  /// The scale subresource, or the error reading it (FailedGetScale).
  absl::StatusOr<Scale> scale = Scale{};
  /// The pods the HPA's selector returns.
  std::vector<Pod> pods;
  MetricsSource* metrics = nullptr;
  /// Metric indexes whose metrics-API call fails (conformance harness).
  std::vector<int> metric_fetch_errors;
  /// Makes the scale write fail (FailedUpdateScale).
  bool fail_scale_update = false;
  Time now = 0;
};

/// One metric's outcome in a reconcile (for timelines and diagnostics).
struct MetricOutcome {
  std::string name;
  bool ok = false;
  int32_t proposal = 0;
  std::optional<int32_t> utilization;
  int64_t usage_milli = 0;
  std::string error;
  std::string reason;  ///< FailedGet…Metric / InvalidMetricSourceType on error
};

/// Everything one reconcile decides.
struct ReconcileResult {
  /// status.desiredReplicas after the reconcile (also the new spec.replicas when scaled).
  int32_t desired_replicas = 0;
  bool scale_updated = false;
  HpaStatus status;
  /// Whether upstream's reconcileAutoscaler returns an error.
  bool returns_error = false;
  std::string error;
  ActionLabel action = ActionLabel::kNone;
  /// Which branch of algorithm §1 step 4 ran: "disabled", "above-max", "below-min", "metrics".
  std::string branch;
  std::vector<MetricOutcome> metrics;
  /// The combined metric proposal (before normalisation), when metrics were computed.
  std::optional<int32_t> metric_desired;
  /// After stabilization, when normalisation ran.
  std::optional<int32_t> stabilized;
};

/// One reconcile of one HPA (upstream `reconcileAutoscaler`, algorithm §1). Updates `state`
/// (recommendations, scale events) as the controller does.
/// Thread-safety: a free function; `state` and `input.metrics` must not be shared concurrently.
ReconcileResult Reconcile(const ReconcileInput& input, const ControllerConfig& config,
                          ControllerState& state);

/// The tolerances the controller applies to this HPA (global flag, or per-HPA with the gate).
Tolerances TolerancesFor(const HpaSpec& spec, const ControllerConfig& config);

}  // namespace kpiscale::hpa
