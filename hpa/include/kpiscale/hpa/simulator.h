#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kpiscale/hpa/controller.h"
#include "kpiscale/hpa/types.h"
#include "nlohmann/json.hpp"

namespace kpiscale::hpa {

/// The load model: metrics derived from demand. Each Ready pod serves an equal share of the
/// demand as an M/M/1 queue with service rate `capacity_per_replica`.
struct LoadModel {
  double capacity_per_replica = 100;              ///< requests/s one pod serves at saturation
  Duration startup_delay = 20 * kNanosPerSecond;  ///< created → Running (image, container start)
  Duration readiness_delay = 10 * kNanosPerSecond;  ///< Running → Ready (readiness probe)
  int64_t cpu_request_milli = 500;
  int64_t cpu_idle_milli = 50;
  double cpu_per_rps_milli = 4.5;  ///< millicores per request/s served
  /// CPU a pod burns while starting (Running, not yet Ready): what the CPU initialization
  /// period is there to hide.
  int64_t cpu_startup_milli = 500;
  int64_t memory_request_bytes = 256LL << 20;
  int64_t memory_idle_bytes = 120LL << 20;
  double memory_per_rps_bytes = 1LL << 20;
  double slo_threshold_s = 0.2;  ///< for http_slo_violations_ratio
  double latency_cap_s = 10;     ///< p99 reported for a saturated pod (client timeout)

  /// Sets one parameter by name (as written in a trace's "# name: value" header or a flag).
  absl::Status Set(const std::string& key, const std::string& value);
};

/// A trace: either demand over time (load model) or metric values over time.
struct Trace {
  enum class Kind { kLoad, kMetrics };
  Kind kind = Kind::kLoad;
  std::vector<double> times_s;
  /// kLoad: demand (requests/s), linearly interpolated between rows.
  std::vector<double> demand;
  /// kMetrics: column name → value per row (milli-units), held from a row until the next.
  /// A column `metric` applies to every pod (Resource, Pods) or is the value (Object,
  /// External); `metric@pod-name` overrides one pod. An empty cell is "no value".
  std::map<std::string, std::vector<std::optional<int64_t>>> columns;
  LoadModel model;

  double EndSeconds() const { return times_s.empty() ? 0 : times_s.back(); }
};

/// Parses a trace CSV. The first non-comment line is the header: `time,demand` (load model)
/// or `time,<metric>[,<metric>…]` (metrics). Lines `# key: value` before it set load-model
/// parameters. Values may be numbers or quantities ("250m", "1.5", "200Mi").
absl::StatusOr<Trace> ParseTrace(const std::string& csv_text);
absl::StatusOr<Trace> LoadTrace(const std::string& path);

/// Simulator settings.
struct SimulationOptions {
  ControllerConfig config;  ///< production defaults
  /// The added delay between evaluations beyond the sync period (processing time).
  Duration drift = 50'000'000;
  /// When the first evaluation runs (0: a new HPA is queued at once).
  Duration first_tick = 0;
  /// Simulated time to run; 0 means until the trace ends.
  Duration duration = 0;
  /// Starting replica count (0: the HPA's minReplicas). Starting pods are Ready long since.
  int32_t initial_replicas = 0;
  /// Pods removed this long after deletion (they are ignored meanwhile).
  Duration termination_grace = 10 * kNanosPerSecond;
  /// Name prefix of simulated pods (default: the scale target's name).
  std::string pod_prefix;
  /// Names of the starting pods (e.g. the live pods an adapter reports); when set, the
  /// starting replica count defaults to their number.
  std::vector<std::string> initial_pod_names;
  /// Called between evaluations (e.g. to wait in wall-clock time when metrics are live).
  std::function<void()> between_ticks;
};

/// One evaluation in the timeline.
struct TimelineRow {
  double time_s = 0;
  std::optional<double> demand;  ///< load model only
  int32_t spec_replicas = 0;     ///< before the evaluation
  int32_t desired_replicas = 0;  ///< after it (the new spec.replicas)
  int32_t ready_replicas = 0;
  int32_t pending_replicas = 0;
  std::optional<int32_t> recommendation;  ///< combined metric proposal
  std::optional<int32_t> stabilized;
  std::string limited_reason;  ///< ScalingLimited reason
  std::string able_reason;     ///< AbleToScale reason
  std::string active_reason;   ///< ScalingActive reason
  /// Per metric: the value the HPA compared (utilization % or the value in units), its target
  /// and the metric's proposal; absent when the metric failed.
  struct Metric {
    std::string name;
    std::optional<double> value;
    double target = 0;
    std::string unit;  ///< "%" or ""
    std::optional<int32_t> proposal;
    std::string error;
  };
  std::vector<Metric> metrics;
};

/// Replays an HPA over a trace, ticking like the controller. Deterministic for a given input.
/// `live` (optional, e.g. AdapterMetricsSource) supplies Pods/Object/External values instead of
/// the trace; Resource metrics always come from the trace. Pods the simulation creates take
/// names after the live pods, so the live source's pod names should be given as
/// `options.initial_pod_names`.
absl::StatusOr<std::vector<TimelineRow>> Simulate(const HpaSpec& spec, const Trace& trace,
                                                  const SimulationOptions& options,
                                                  MetricsSource* live = nullptr);

/// The timeline as CSV (one row per evaluation, one value/proposal column pair per metric).
std::string TimelineToCsv(const std::vector<TimelineRow>& rows);
/// The timeline as a JSON array.
nlohmann::json TimelineToJson(const std::vector<TimelineRow>& rows);

/// An SVG chart: replicas over time (desired, ready, and demand when known), then one panel
/// per metric with its target.
std::string TimelineToSvg(const HpaSpec& spec, const std::vector<TimelineRow>& rows);

}  // namespace kpiscale::hpa
