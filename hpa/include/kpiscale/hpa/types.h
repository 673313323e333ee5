#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace kpiscale::hpa {

/// An instant on the engine's timeline, in integer nanoseconds. The origin is arbitrary (the
/// conformance cases use "now = 0", the simulator uses its start); only differences matter.
using Time = int64_t;
/// A duration in integer nanoseconds.
using Duration = int64_t;

inline constexpr Duration kNanosPerSecond = 1'000'000'000;
/// Go's zero time.Time: far earlier than any real instant, yet `kZeroTime + d` stays finite (and
/// greater than kZeroTime) for every duration the engine adds to it.
inline constexpr Time kZeroTime = -(int64_t{1} << 61);

/// Whole or fractional seconds to nanoseconds (rounded to the nearest nanosecond), saturating
/// at ±1e9 s; NaN is 0.
Duration Seconds(double seconds);
/// Nanoseconds to seconds, for display.
double ToSeconds(Duration d);

/// Which Kubernetes release's rules the engine follows where they changed (algorithm §15).
enum class VersionProfile {
  kLatest,  ///< the latest release: v1.33+ tolerance test, both-direction events, caps
  kV1_32,   ///< v1.32 and earlier: `|1 - r| <= t`
};

/// The tolerance pair applied to a usage ratio (algorithm §8).
struct Tolerances {
  double scale_down = 0.1;
  double scale_up = 0.1;
  VersionProfile profile = VersionProfile::kLatest;

  /// Whether `ratio` is close enough to 1 that the metric proposes no change.
  bool IsWithin(double ratio) const;
};

/// `v1.PodPhase`.
enum class PodPhase { kPending, kRunning, kSucceeded, kFailed, kUnknown };

/// The pod's `Ready` condition.
struct ReadyCondition {
  std::string status = "True";  ///< "True", "False" or "Unknown"
  Time last_transition_time = 0;
};

/// One container of a pod spec with its resource requests (milli-units by resource name).
struct Container {
  std::string name;
  std::map<std::string, int64_t> requests_milli;
};

/// What the HPA controller reads of a pod.
struct Pod {
  std::string name;
  PodPhase phase = PodPhase::kRunning;
  bool deleted = false;  ///< deletionTimestamp set
  std::optional<Time> start_time;
  std::optional<ReadyCondition> ready;
  std::vector<Container> containers;
  /// Restartable init containers (sidecars); their requests count like regular containers.
  std::vector<Container> sidecar_containers;
  /// Pod-level requests (PodLevelResources gate), milli-units by resource name.
  std::map<std::string, int64_t> pod_requests_milli;
};

/// One metric value for one pod, as the metrics client hands it to the replica calculator.
struct PodMetric {
  int64_t value = 0;  ///< milli-units
  Time timestamp = 0;
  Duration window = 0;
};
using PodMetricsInfo = std::map<std::string, PodMetric>;

/// One container's usage in a metrics.k8s.io PodMetrics item (milli-units by resource).
struct ContainerUsage {
  std::string name;
  std::map<std::string, int64_t> usage_milli;
};

/// One metrics.k8s.io PodMetrics item.
struct PodResourceSample {
  std::string pod;
  Time timestamp = 0;
  Duration window = 0;
  std::vector<ContainerUsage> containers;
};

/// autoscaling/v2 MetricTarget, quantities already in milli-units.
struct MetricTarget {
  std::string type;  ///< "Utilization", "AverageValue", "Value" (or empty)
  std::optional<int32_t> average_utilization;
  std::optional<int64_t> average_value_milli;
  std::optional<int64_t> value_milli;
  /// The quantity strings as written, for display.
  std::string average_value_text;
  std::string value_text;
};

/// autoscaling/v2 CrossVersionObjectReference.
struct ObjectReference {
  std::string kind;
  std::string api_version;
  std::string name;
};

/// autoscaling/v2 MetricSpec, flattened.
struct MetricSpec {
  /// "Resource", "ContainerResource", "Pods", "Object", "External", or anything else (invalid).
  std::string type;
  /// The resource name (Resource, ContainerResource) or the metric name (Pods, Object, External).
  std::string name;
  std::string container;  ///< ContainerResource only
  /// The metric's label selector in string form ("" selects everything).
  std::string selector;
  ObjectReference described_object;  ///< Object only
  MetricTarget target;

  /// A short human name, e.g. "cpu", "pods/qps", "object/Deployment/x/qps".
  std::string DisplayName() const;
};

/// autoscaling/v2 HPAScalingPolicy.
struct ScalingPolicy {
  enum class Type { kPods, kPercent };
  Type type = Type::kPods;
  int32_t value = 0;
  int32_t period_seconds = 0;
};

/// autoscaling/v2 ScalingPolicySelect.
enum class SelectPolicy { kMax, kMin, kDisabled };

/// autoscaling/v2 HPAScalingRules; every field optional as in the API.
struct ScalingRules {
  std::optional<int32_t> stabilization_window_seconds;
  std::optional<SelectPolicy> select_policy;
  std::optional<std::vector<ScalingPolicy>> policies;
  /// KEP-4951 per-HPA tolerance, converted to the nearest double.
  std::optional<double> tolerance;
};

/// autoscaling/v2 HorizontalPodAutoscalerBehavior.
struct Behavior {
  std::optional<ScalingRules> scale_up;
  std::optional<ScalingRules> scale_down;
};

/// autoscaling/v2 HorizontalPodAutoscalerSpec (plus identity).
struct HpaSpec {
  std::string name;
  std::string namespace_name = "default";
  ObjectReference scale_target_ref;
  std::optional<int32_t> min_replicas;
  int32_t max_replicas = 0;
  std::vector<MetricSpec> metrics;
  std::optional<Behavior> behavior;
};

/// A status condition (type, status, reason, message).
struct Condition {
  std::string type;
  std::string status;
  std::string reason;
  std::string message;
};

/// One entry of status.currentMetrics (what the controller reports for a metric).
struct MetricStatus {
  std::string name;
  std::optional<int32_t> average_utilization;
  std::optional<int64_t> average_value_milli;
  std::optional<int64_t> value_milli;
};

/// autoscaling/v2 HorizontalPodAutoscalerStatus.
struct HpaStatus {
  int32_t current_replicas = 0;
  int32_t desired_replicas = 0;
  std::optional<Time> last_scale_time;
  std::vector<MetricStatus> current_metrics;
  std::vector<Condition> conditions;

  /// Sets the condition of that type in place, or appends it (nothing removes entries).
  void SetCondition(const std::string& type, const std::string& status, const std::string& reason,
                    const std::string& message);
  /// The condition of that type, or nullptr.
  const Condition* FindCondition(const std::string& type) const;
};

/// A remembered recommendation (algorithm §11, §12.2).
struct Recommendation {
  int32_t value = 0;
  Time time = 0;
};

/// A remembered scale event (algorithm §12.4).
struct ScaleEvent {
  int32_t change = 0;
  Time time = 0;
  bool outdated = false;
};

/// What the controller keeps in memory for one HPA. `recommendations` absent means the
/// controller has no entry for it (new HPA, restart), which differs from an empty list.
struct ControllerState {
  std::optional<std::vector<Recommendation>> recommendations;
  std::vector<ScaleEvent> scale_up_events;
  std::vector<ScaleEvent> scale_down_events;
};

/// Feature gates that change the algorithm.
struct FeatureGates {
  /// HPAConfigurableTolerance: beta and on by default since v1.35.
  bool configurable_tolerance = true;
  /// PodLevelResources: pod-level requests are used when set and no container is named.
  bool pod_level_resources = false;
};

/// kube-controller-manager flags and constants (algorithm §14). Defaults are production values.
struct ControllerConfig {
  double tolerance = 0.1;
  Duration cpu_initialization_period = 300 * kNanosPerSecond;
  Duration delay_of_initial_readiness_status = 30 * kNanosPerSecond;
  Duration downscale_stabilization_window = 300 * kNanosPerSecond;
  Duration sync_period = 15 * kNanosPerSecond;
  double scale_up_limit_factor = 2.0;
  double scale_up_limit_minimum = 4.0;
  FeatureGates gates;
  VersionProfile profile = VersionProfile::kLatest;

  /// The constants upstream's unit tests use (tolerance 0.1, CPU init 2 min, readiness delay
  /// 10 s, downscale window 5 min, scale-up factor 8).
  static ControllerConfig UpstreamTestConstants();
};

/// The scale subresource.
struct Scale {
  int32_t spec_replicas = 0;
  int32_t status_replicas = 0;
};

}  // namespace kpiscale::hpa
