#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kpiscale/hpa/types.h"

namespace kpiscale::hpa {

/// The outcome of upstream `groupPods` (algorithm §4).
struct PodGroups {
  int ready_pod_count = 0;
  std::set<std::string> unready;
  std::set<std::string> missing;
  std::set<std::string> ignored;
};

/// Readiness constants used by pod grouping.
struct GroupingConfig {
  Duration cpu_initialization_period = 300 * kNanosPerSecond;
  Duration delay_of_initial_readiness_status = 30 * kNanosPerSecond;
};

/// Classifies pods as ready, unready, missing or ignored. `resource` is the resource name for
/// Resource metrics ("cpu" enables the CPU readiness checks) or empty for other metric types.
PodGroups GroupPods(const std::vector<Pod>& pods, const PodMetricsInfo& metrics,
                    const std::string& resource, const GroupingConfig& config, Time now);

/// Per-pod usage from metrics.k8s.io samples (upstream metrics client): the sum over all
/// containers for a pod-level metric (a pod with a container lacking the resource, or with no
/// containers, is dropped), or the named container's usage for a ContainerResource metric.
/// An empty sample list is the "no metrics returned from resource metrics API" error.
absl::StatusOr<PodMetricsInfo> ResourceUsageFromSamples(
    const std::vector<PodResourceSample>& samples, const std::string& resource,
    const std::string& container);

/// Requests per pod (upstream `calculatePodRequests`); a counted container without a request is
/// an error.
absl::StatusOr<std::map<std::string, int64_t>> CalculatePodRequests(const std::vector<Pod>& pods,
                                                                    const std::string& container,
                                                                    const std::string& resource,
                                                                    bool pod_level_resources);

/// Result of the utilization function U(M, R, target) (algorithm §3).
struct UtilizationRatio {
  double ratio = 0;
  int32_t utilization = 0;        ///< truncated percent
  int64_t raw_average_milli = 0;  ///< truncated average usage per pod
};
absl::StatusOr<UtilizationRatio> GetResourceUtilizationRatio(
    const PodMetricsInfo& metrics, const std::map<std::string, int64_t>& requests,
    int32_t target_utilization);

/// Result of the plain average A(M, target) (algorithm §5).
struct UsageRatio {
  double ratio = 0;
  int64_t usage = 0;
};
UsageRatio GetMetricUsageRatio(const PodMetricsInfo& metrics, int64_t target_usage);

/// One metric's proposal.
struct Proposal {
  int32_t replicas = 0;
  /// Resource Utilization: the truncated percent of the first pass.
  std::optional<int32_t> utilization;
  /// The reported usage: raw average (Resource, Pods), total (Object/External Value), or
  /// ceil(total / statusReplicas) (AverageValue per-pod variants).
  int64_t usage_milli = 0;
};

/// The replica calculator (upstream `replica_calculator.go`): one proposal per metric, given the
/// pods the HPA's selector returns and the metric values. Stateless.
/// Thread-safety: immutable; all methods may be called concurrently.
class ReplicaCalculator final {
 public:
  ReplicaCalculator(GroupingConfig grouping, Time now, bool pod_level_resources = false)
      : grouping_(grouping), now_(now), pod_level_resources_(pod_level_resources) {}

  /// Resource or ContainerResource with a Utilization target (algorithm §3). `usage` is the
  /// output of ResourceUsageFromSamples.
  absl::StatusOr<Proposal> GetResourceReplicas(int32_t current_replicas, int32_t target_utilization,
                                               const std::string& resource,
                                               const std::string& container,
                                               const Tolerances& tolerances,
                                               const std::vector<Pod>& pods,
                                               PodMetricsInfo usage) const;

  /// Resource or ContainerResource with an AverageValue target (algorithm §5).
  absl::StatusOr<Proposal> GetRawResourceReplicas(int32_t current_replicas, int64_t target_usage,
                                                  const std::string& resource,
                                                  const Tolerances& tolerances,
                                                  const std::vector<Pod>& pods,
                                                  PodMetricsInfo usage) const;

  /// Pods metric with an AverageValue target (algorithm §5).
  absl::StatusOr<Proposal> GetMetricReplicas(int32_t current_replicas, int64_t target_usage,
                                             const Tolerances& tolerances,
                                             const std::vector<Pod>& pods,
                                             PodMetricsInfo metrics) const;

  /// Object metric with a Value target (algorithm §6).
  absl::StatusOr<Proposal> GetObjectMetricReplicas(int32_t current_replicas, int64_t target_usage,
                                                   const Tolerances& tolerances,
                                                   const std::vector<Pod>& pods,
                                                   int64_t usage) const;

  /// Object metric with an AverageValue target (algorithm §7).
  absl::StatusOr<Proposal> GetObjectPerPodMetricReplicas(int32_t status_replicas,
                                                         int64_t target_average_usage,
                                                         const Tolerances& tolerances,
                                                         int64_t usage) const;

  /// External metric with a Value target (algorithm §6); `values` are all matching series.
  absl::StatusOr<Proposal> GetExternalMetricReplicas(int32_t current_replicas, int64_t target_usage,
                                                     const Tolerances& tolerances,
                                                     const std::vector<Pod>& pods,
                                                     const std::vector<int64_t>& values) const;

  /// External metric with an AverageValue target (algorithm §7).
  absl::StatusOr<Proposal> GetExternalPerPodMetricReplicas(
      int32_t status_replicas, int64_t target_usage_per_pod, const Tolerances& tolerances,
      const std::vector<int64_t>& values) const;

 private:
  absl::StatusOr<Proposal> CalcPlainMetricReplicas(PodMetricsInfo metrics, int32_t current_replicas,
                                                   int64_t target_usage,
                                                   const Tolerances& tolerances,
                                                   const std::vector<Pod>& pods,
                                                   const std::string& resource) const;
  absl::StatusOr<int32_t> UsageRatioReplicaCount(int32_t current_replicas, double usage_ratio,
                                                 const Tolerances& tolerances,
                                                 const std::vector<Pod>& pods) const;

  GroupingConfig grouping_;
  Time now_;
  bool pod_level_resources_;
};

/// Saturating double → int32 after `ceil` (upstream caps at MaxInt32 in recent releases; C++
/// conversion of an out-of-range double is undefined, so every conversion goes through here).
int32_t CeilToInt32(double x);
/// Saturating truncation double → int32.
int32_t TruncToInt32(double x);
/// Saturating double → int64 after `ceil`.
int64_t CeilToInt64(double x);
/// Sum with saturation at INT64_MAX / INT64_MIN (recent releases).
int64_t SaturatingSum(const std::vector<int64_t>& values);

}  // namespace kpiscale::hpa
