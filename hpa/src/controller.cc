#include "kpiscale/hpa/controller.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "kpiscale/hpa/normalize.h"
#include "kpiscale/hpa/replica_calculator.h"

namespace kpiscale::hpa {
namespace {

struct MetricComputation {
  absl::StatusOr<Proposal> proposal;
  std::string failure_reason;
};

std::string FailedReasonFor(const std::string& type) {
  if (type == "Resource") return "FailedGetResourceMetric";
  if (type == "ContainerResource") return "FailedGetContainerResourceMetric";
  if (type == "Pods") return "FailedGetPodsMetric";
  if (type == "Object") return "FailedGetObjectMetric";
  if (type == "External") return "FailedGetExternalMetric";
  return "InvalidMetricSourceType";
}

// One metric's proposal (upstream computeReplicasForMetric and computeStatusFor*Metric).
absl::StatusOr<Proposal> ComputeMetric(const ReconcileInput& in, const MetricSpec& m, int index,
                                       int32_t spec_replicas, int32_t status_replicas,
                                       const Tolerances& tol, const ReplicaCalculator& calc) {
  const bool fetch_fails = std::find(in.metric_fetch_errors.begin(), in.metric_fetch_errors.end(),
                                     index) != in.metric_fetch_errors.end();
  const MetricTarget& t = m.target;
  auto fetch_error = [&]() {
    return absl::UnavailableError(absl::StrCat("unable to fetch metrics for ", m.DisplayName()));
  };
  if (m.type == "Resource" || m.type == "ContainerResource") {
    const std::string container = m.type == "ContainerResource" ? m.container : "";
    if (!t.average_value_milli && !t.average_utilization) {
      return absl::InvalidArgumentError(
          "invalid resource metric source: neither an average utilization target nor an "
          "average value (usage) target was set");
    }
    if (fetch_fails) return fetch_error();
    absl::StatusOr<std::vector<PodResourceSample>> samples = in.metrics->GetResourceMetric(m);
    if (!samples.ok()) {
      return absl::Status(samples.status().code(),
                          absl::StrCat("unable to get metrics for resource ", m.name, ": ",
                                       samples.status().message()));
    }
    absl::StatusOr<PodMetricsInfo> usage = ResourceUsageFromSamples(*samples, m.name, container);
    if (!usage.ok()) {
      return absl::Status(usage.status().code(),
                          absl::StrCat("unable to get metrics for resource ", m.name, ": ",
                                       usage.status().message()));
    }
    if (t.average_value_milli) {
      return calc.GetRawResourceReplicas(spec_replicas, *t.average_value_milli, m.name, tol,
                                         in.pods, std::move(*usage));
    }
    return calc.GetResourceReplicas(spec_replicas, *t.average_utilization, m.name, container, tol,
                                    in.pods, std::move(*usage));
  }
  if (m.type == "Pods") {
    if (!t.average_value_milli) {
      return absl::InvalidArgumentError("invalid pods metric source: no average value target");
    }
    if (fetch_fails) return fetch_error();
    absl::StatusOr<PodMetricsInfo> values = in.metrics->GetRawMetric(m);
    if (!values.ok()) return values.status();
    return calc.GetMetricReplicas(spec_replicas, *t.average_value_milli, tol, in.pods,
                                  std::move(*values));
  }
  if (m.type == "Object") {
    const bool value = t.type == "Value" && t.value_milli.has_value();
    const bool average = t.type == "AverageValue" && t.average_value_milli.has_value();
    if (!value && !average) {
      return absl::InvalidArgumentError(
          "invalid object metric source: neither a value target nor an average value target was "
          "set");
    }
    if (fetch_fails) return fetch_error();
    absl::StatusOr<int64_t> usage = in.metrics->GetObjectMetric(m);
    if (!usage.ok()) return usage.status();
    if (value)
      return calc.GetObjectMetricReplicas(spec_replicas, *t.value_milli, tol, in.pods, *usage);
    return calc.GetObjectPerPodMetricReplicas(status_replicas, *t.average_value_milli, tol, *usage);
  }
  if (m.type == "External") {
    // External ignores target.type: averageValue if set, else value.
    if (!t.average_value_milli && !t.value_milli) {
      return absl::InvalidArgumentError(
          "invalid external metric source: neither a value target nor an average value target "
          "was set");
    }
    if (fetch_fails) return fetch_error();
    absl::StatusOr<std::vector<int64_t>> values = in.metrics->GetExternalMetric(m);
    if (!values.ok()) return values.status();
    if (t.average_value_milli) {
      return calc.GetExternalPerPodMetricReplicas(status_replicas, *t.average_value_milli, tol,
                                                  *values);
    }
    return calc.GetExternalMetricReplicas(spec_replicas, *t.value_milli, tol, in.pods, *values);
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown metric source type \"", m.type, "\""));
}

}  // namespace

const char* ActionLabelName(ActionLabel label) {
  switch (label) {
    case ActionLabel::kScaleUp:
      return "ActionLabelScaleUp";
    case ActionLabel::kScaleDown:
      return "ActionLabelScaleDown";
    case ActionLabel::kNone:
      break;
  }
  return "ActionLabelNone";
}

Tolerances TolerancesFor(const HpaSpec& spec, const ControllerConfig& config) {
  Tolerances t{config.tolerance, config.tolerance, config.profile};
  if (config.profile == VersionProfile::kV1_32) return t;
  if (!spec.behavior || !config.gates.configurable_tolerance) return t;
  if (spec.behavior->scale_down && spec.behavior->scale_down->tolerance) {
    t.scale_down = *spec.behavior->scale_down->tolerance;
  }
  if (spec.behavior->scale_up && spec.behavior->scale_up->tolerance) {
    t.scale_up = *spec.behavior->scale_up->tolerance;
  }
  return t;
}

ReconcileResult Reconcile(const ReconcileInput& in, const ControllerConfig& config,
                          ControllerState& state) {
  const HpaSpec& spec = *in.spec;
  ReconcileResult r;
  r.status = in.status;
  r.desired_replicas = in.status.desired_replicas;

  if (!in.scale.ok()) {
    r.status.SetCondition("AbleToScale", "False", "FailedGetScale",
                          absl::StrCat("the HPA controller was unable to get the target's current "
                                       "scale: ",
                                       in.scale.status().message()));
    r.returns_error = true;
    r.error = absl::StrCat("failed to query scale subresource: ", in.scale.status().message());
    return r;
  }
  r.status.SetCondition("AbleToScale", "True", "SucceededGetScale",
                        "the HPA controller was able to get the target's current scale");
  const int32_t current = in.scale->spec_replicas;
  if (!state.recommendations) {
    // A controller with no history for this HPA starts from the count it first sees, which
    // holds back scale-down for one window.
    state.recommendations = std::vector<Recommendation>{{current, in.now}};
  }
  const int32_t min_replicas = spec.min_replicas.value_or(1);

  int32_t desired = 0;
  bool rescale = false;
  if (current == 0 && min_replicas != 0) {
    r.branch = "disabled";
    desired = 0;
    r.status.SetCondition("ScalingActive", "False", "ScalingDisabled",
                          "scaling is disabled since the replica count of the target is zero");
  } else if (current > spec.max_replicas) {
    r.branch = "above-max";
    desired = spec.max_replicas;
    rescale = desired != current;
  } else if (current < min_replicas) {
    r.branch = "below-min";
    desired = min_replicas;
    rescale = desired != current;
  } else {
    r.branch = "metrics";
    const Tolerances tol = TolerancesFor(spec, config);
    const ReplicaCalculator calc(
        GroupingConfig{config.cpu_initialization_period, config.delay_of_initial_readiness_status},
        in.now, config.gates.pod_level_resources);
    int32_t best = 0;
    int invalid = 0;
    const MetricOutcome* first_error = nullptr;
    std::vector<MetricStatus> statuses;
    for (size_t i = 0; i < spec.metrics.size(); ++i) {
      const MetricSpec& m = spec.metrics[i];
      MetricOutcome out;
      out.name = m.DisplayName();
      absl::StatusOr<Proposal> p =
          ComputeMetric(in, m, static_cast<int>(i), current, in.scale->status_replicas, tol, calc);
      if (!p.ok()) {
        out.ok = false;
        out.error = std::string(p.status().message());
        out.reason = FailedReasonFor(m.type);
        r.metrics.push_back(out);
        invalid++;
        continue;
      }
      out.ok = true;
      out.proposal = p->replicas;
      out.utilization = p->utilization;
      out.usage_milli = p->usage_milli;
      r.metrics.push_back(out);
      MetricStatus ms;
      ms.name = out.name;
      ms.average_utilization = p->utilization;
      if (m.type == "Object" || m.type == "External") {
        if (m.target.type == "Value" && !(m.type == "External" && m.target.average_value_milli)) {
          ms.value_milli = p->usage_milli;
        } else {
          ms.average_value_milli = p->usage_milli;
        }
      } else {
        ms.average_value_milli = p->usage_milli;
      }
      statuses.push_back(ms);
      if (best == 0 || p->replicas > best) best = p->replicas;
    }
    for (const MetricOutcome& o : r.metrics) {
      if (!o.ok) {
        first_error = &o;
        break;
      }
    }
    if (invalid >= static_cast<int>(spec.metrics.size()) || (invalid > 0 && best < current)) {
      // A scale-down is refused while any metric is invalid (kubernetes/kubernetes#99514).
      if (first_error != nullptr) {
        r.status.SetCondition(
            "ScalingActive", "False", first_error->reason,
            absl::StrCat("the HPA was unable to compute the replica count: ", first_error->error));
      }
      r.status.current_replicas = current;
      r.status.current_metrics = statuses;
      r.returns_error = true;
      r.error = absl::StrCat(
          "invalid metrics (", invalid, " invalid out of ", spec.metrics.size(), ")",
          first_error ? absl::StrCat(", first error is: ", first_error->error) : std::string());
      r.desired_replicas = in.status.desired_replicas;
      return r;
    }
    r.status.SetCondition("ScalingActive", "True", "ValidMetricFound",
                          "the HPA was able to successfully calculate a replica count");
    if (invalid > 0) {
      r.returns_error = true;
      r.error = absl::StrCat("invalid metrics (", invalid, " invalid out of ", spec.metrics.size(),
                             "), first error is: ", first_error->error);
    }
    r.status.current_metrics = statuses;
    r.metric_desired = best;
    if (best > desired) desired = best;

    std::vector<Recommendation>& recs = *state.recommendations;
    int32_t stabilized = 0;
    Limited limited;
    if (!spec.behavior) {
      stabilized =
          StabilizeRecommendation(recs, desired, config.downscale_stabilization_window, in.now);
      if (stabilized != desired) {
        r.status.SetCondition("AbleToScale", "True", "ScaleDownStabilized",
                              "recent recommendations were higher than current one, applying "
                              "the highest recent recommendation");
      } else {
        r.status.SetCondition("AbleToScale", "True", "ReadyForNewScale",
                              "recommended size matches current size");
      }
      limited = ConvertDesiredReplicasWithRules(current, stabilized, min_replicas,
                                                spec.max_replicas, config.scale_up_limit_factor,
                                                config.scale_up_limit_minimum);
    } else {
      const Behavior eff = EffectiveBehavior(*spec.behavior, config.downscale_stabilization_window);
      const Stabilized s = StabilizeRecommendationWithBehaviors(
          recs, current, desired,
          static_cast<Duration>(*eff.scale_up->stabilization_window_seconds) * kNanosPerSecond,
          static_cast<Duration>(*eff.scale_down->stabilization_window_seconds) * kNanosPerSecond,
          in.now);
      stabilized = s.replicas;
      if (stabilized != desired) {
        r.status.SetCondition("AbleToScale", "True", s.reason,
                              s.reason == "ScaleUpStabilized"
                                  ? "recent recommendations were lower than current one, "
                                    "applying the lowest recent recommendation"
                                  : "recent recommendations were higher than current one, "
                                    "applying the highest recent recommendation");
      } else {
        r.status.SetCondition("AbleToScale", "True", "ReadyForNewScale",
                              "recommended size matches current size");
      }
      limited = ConvertDesiredReplicasWithBehaviorRate(
          current, stabilized, min_replicas, spec.max_replicas, *eff.scale_up, *eff.scale_down,
          state.scale_up_events, state.scale_down_events, in.now);
    }
    r.stabilized = stabilized;
    r.status.SetCondition("ScalingLimited", limited.replicas == stabilized ? "False" : "True",
                          limited.reason, "");
    desired = limited.replicas;
    rescale = desired != current;
  }

  if (rescale) {
    r.action = desired > current ? ActionLabel::kScaleUp : ActionLabel::kScaleDown;
    if (in.fail_scale_update) {
      r.status.SetCondition("AbleToScale", "False", "FailedUpdateScale",
                            "the HPA controller was unable to update the target scale");
      r.status.current_replicas = current;
      r.returns_error = true;
      r.error = "failed to rescale";
      r.desired_replicas = in.status.desired_replicas;
      return r;
    }
    r.status.SetCondition(
        "AbleToScale", "True", "SucceededRescale",
        absl::StrCat("the HPA controller was able to update the target scale to ", desired));
    StoreScaleEvent(spec.behavior, state, current, desired, in.now);
    r.scale_updated = true;
    r.status.last_scale_time = in.now;
  } else {
    desired = current;
  }
  r.status.current_replicas = current;
  r.status.desired_replicas = desired;
  r.desired_replicas = desired;
  return r;
}

}  // namespace kpiscale::hpa
