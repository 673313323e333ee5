#include "kpiscale/hpa/replica_calculator.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace kpiscale::hpa {
namespace {

constexpr int32_t kInt32Max = std::numeric_limits<int32_t>::max();
constexpr int32_t kInt32Min = std::numeric_limits<int32_t>::min();
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();

// Go's int64 arithmetic wraps silently; upstream sums of pod metrics rely on that, so these do
// the same through unsigned arithmetic (signed overflow is undefined in C++).
int64_t WrapAdd(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}
int64_t WrapMul(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
}
// Go's int64 division; MinInt64 / -1 wraps instead of trapping.
int64_t GoDiv(int64_t a, int64_t b) {
  if (b == -1) return static_cast<int64_t>(0 - static_cast<uint64_t>(a));
  return a / b;
}

void RemoveMetricsForPods(PodMetricsInfo& metrics, const std::set<std::string>& pods) {
  for (const std::string& p : pods) metrics.erase(p);
}

bool IsPodReady(const Pod& pod) { return pod.ready.has_value() && pod.ready->status == "True"; }

}  // namespace

int32_t CeilToInt32(double x) {
  double c = std::ceil(x);
  if (std::isnan(c)) return 0;
  if (c >= static_cast<double>(kInt32Max)) return kInt32Max;
  if (c <= static_cast<double>(kInt32Min)) return kInt32Min;
  return static_cast<int32_t>(c);
}

int32_t TruncToInt32(double x) {
  double t = std::trunc(x);
  if (std::isnan(t)) return 0;
  if (t >= static_cast<double>(kInt32Max)) return kInt32Max;
  if (t <= static_cast<double>(kInt32Min)) return kInt32Min;
  return static_cast<int32_t>(t);
}

int64_t CeilToInt64(double x) {
  double c = std::ceil(x);
  if (std::isnan(c)) return 0;
  // 2^63 is exactly representable; anything at or above it saturates.
  if (c >= 9223372036854775808.0) return kInt64Max;
  if (c < -9223372036854775808.0) return kInt64Min;
  return static_cast<int64_t>(c);
}

int64_t SaturatingSum(const std::vector<int64_t>& values) {
  int64_t sum = 0;
  for (int64_t v : values) {
    if (v > 0 && sum > kInt64Max - v) {
      sum = kInt64Max;
    } else if (v < 0 && sum < kInt64Min - v) {
      sum = kInt64Min;
    } else {
      sum += v;
    }
  }
  return sum;
}

PodGroups GroupPods(const std::vector<Pod>& pods, const PodMetricsInfo& metrics,
                    const std::string& resource, const GroupingConfig& config, Time now) {
  PodGroups g;
  for (const Pod& pod : pods) {
    if (pod.deleted || pod.phase == PodPhase::kFailed) {
      g.ignored.insert(pod.name);
      continue;
    }
    if (pod.phase == PodPhase::kPending) {
      g.unready.insert(pod.name);
      continue;
    }
    auto it = metrics.find(pod.name);
    if (it == metrics.end()) {
      g.missing.insert(pod.name);
      continue;
    }
    if (resource == "cpu") {
      bool unready = false;
      if (!pod.ready.has_value() || !pod.start_time.has_value()) {
        unready = true;
      } else {
        const PodMetric& m = it->second;
        const ReadyCondition& c = *pod.ready;
        if (*pod.start_time + config.cpu_initialization_period > now) {
          // Still initialising: the sample must cover one full window after the last readiness
          // change, or CPU spent starting up would look like load.
          unready = c.status == "False" || m.timestamp < c.last_transition_time + m.window;
        } else {
          // Past the period: unready only if it never became ready.
          unready =
              c.status == "False" &&
              *pod.start_time + config.delay_of_initial_readiness_status > c.last_transition_time;
        }
      }
      if (unready) {
        g.unready.insert(pod.name);
        continue;
      }
    }
    g.ready_pod_count++;
  }
  return g;
}

absl::StatusOr<PodMetricsInfo> ResourceUsageFromSamples(
    const std::vector<PodResourceSample>& samples, const std::string& resource,
    const std::string& container) {
  if (samples.empty()) {
    return absl::NotFoundError("no metrics returned from resource metrics API");
  }
  PodMetricsInfo res;
  for (const PodResourceSample& s : samples) {
    if (!container.empty()) {
      for (const ContainerUsage& c : s.containers) {
        if (c.name != container) continue;
        auto u = c.usage_milli.find(resource);
        if (u != c.usage_milli.end()) res[s.pod] = PodMetric{u->second, s.timestamp, s.window};
        break;
      }
      continue;
    }
    bool missing = s.containers.empty();
    int64_t sum = 0;
    for (const ContainerUsage& c : s.containers) {
      auto u = c.usage_milli.find(resource);
      if (u == c.usage_milli.end()) {
        missing = true;
        break;
      }
      sum = WrapAdd(sum, u->second);
    }
    if (!missing) res[s.pod] = PodMetric{sum, s.timestamp, s.window};
  }
  return res;
}

absl::StatusOr<std::map<std::string, int64_t>> CalculatePodRequests(const std::vector<Pod>& pods,
                                                                    const std::string& container,
                                                                    const std::string& resource,
                                                                    bool pod_level_resources) {
  std::map<std::string, int64_t> requests;
  for (const Pod& pod : pods) {
    if (pod_level_resources && container.empty()) {
      auto it = pod.pod_requests_milli.find(resource);
      if (it != pod.pod_requests_milli.end()) {
        requests[pod.name] = it->second;
        continue;
      }
    }
    int64_t sum = 0;
    auto add = [&](const Container& c) -> absl::Status {
      if (!container.empty() && c.name != container) return absl::OkStatus();
      auto it = c.requests_milli.find(resource);
      if (it == c.requests_milli.end()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "missing request for ", resource, " in container ", c.name, " of Pod ", pod.name));
      }
      sum = WrapAdd(sum, it->second);
      return absl::OkStatus();
    };
    for (const Container& c : pod.containers) {
      if (absl::Status st = add(c); !st.ok()) return st;
    }
    for (const Container& c : pod.sidecar_containers) {
      if (absl::Status st = add(c); !st.ok()) return st;
    }
    requests[pod.name] = sum;
  }
  return requests;
}

absl::StatusOr<UtilizationRatio> GetResourceUtilizationRatio(
    const PodMetricsInfo& metrics, const std::map<std::string, int64_t>& requests,
    int32_t target_utilization) {
  int64_t metrics_total = 0;
  int64_t requests_total = 0;
  int64_t entries = 0;
  for (const auto& [pod, m] : metrics) {
    auto it = requests.find(pod);
    if (it == requests.end()) continue;  // extraneous metric: a pod outside the pod list
    metrics_total = WrapAdd(metrics_total, m.value);
    requests_total = WrapAdd(requests_total, it->second);
    entries++;
  }
  if (requests_total == 0) {
    return absl::InvalidArgumentError("no metrics returned matched known pods");
  }
  UtilizationRatio r;
  // Go: int32((metricsTotal * 100) / requestsTotal); the conversion keeps the low 32 bits.
  r.utilization = static_cast<int32_t>(GoDiv(WrapMul(metrics_total, 100), requests_total));
  r.ratio = static_cast<double>(r.utilization) / static_cast<double>(target_utilization);
  r.raw_average_milli = GoDiv(metrics_total, entries);
  return r;
}

UsageRatio GetMetricUsageRatio(const PodMetricsInfo& metrics, int64_t target_usage) {
  int64_t total = 0;
  for (const auto& [pod, m] : metrics) total = WrapAdd(total, m.value);
  UsageRatio r;
  r.usage = metrics.empty() ? 0 : GoDiv(total, static_cast<int64_t>(metrics.size()));
  r.ratio = static_cast<double>(r.usage) / static_cast<double>(target_usage);
  return r;
}

absl::StatusOr<Proposal> ReplicaCalculator::GetResourceReplicas(
    int32_t current_replicas, int32_t target_utilization, const std::string& resource,
    const std::string& container, const Tolerances& tolerances, const std::vector<Pod>& pods,
    PodMetricsInfo metrics) const {
  if (pods.empty()) {
    return absl::FailedPreconditionError(
        "no pods returned by selector while calculating replica count");
  }
  PodGroups g = GroupPods(pods, metrics, resource, grouping_, now_);
  RemoveMetricsForPods(metrics, g.ignored);
  RemoveMetricsForPods(metrics, g.unready);
  if (metrics.empty()) {
    return absl::FailedPreconditionError(
        "did not receive metrics for targeted pods (pods might be unready)");
  }
  auto requests = CalculatePodRequests(pods, container, resource, pod_level_resources_);
  if (!requests.ok()) return requests.status();
  auto first = GetResourceUtilizationRatio(metrics, *requests, target_utilization);
  if (!first.ok()) return first.status();

  Proposal p;
  p.utilization = first->utilization;
  p.usage_milli = first->raw_average_milli;
  const double usage_ratio = first->ratio;

  const bool scale_up_with_unready = !g.unready.empty() && usage_ratio > 1.0;
  if (!scale_up_with_unready && g.missing.empty()) {
    if (tolerances.IsWithin(usage_ratio)) {
      p.replicas = current_replicas;
    } else {
      p.replicas = CeilToInt32(usage_ratio * static_cast<double>(g.ready_pod_count));
    }
    return p;
  }

  if (!g.missing.empty()) {
    if (usage_ratio < 1.0) {
      // Missing pods count as max(100, target) % of their request on a scale-down.
      const int64_t fallback = std::max<int64_t>(100, target_utilization);
      for (const std::string& pod : g.missing) {
        metrics[pod] = PodMetric{GoDiv(WrapMul((*requests)[pod], fallback), 100), 0, 0};
      }
    } else if (usage_ratio > 1.0) {
      for (const std::string& pod : g.missing) metrics[pod] = PodMetric{0, 0, 0};
    }
  }
  if (scale_up_with_unready) {
    for (const std::string& pod : g.unready) metrics[pod] = PodMetric{0, 0, 0};
  }

  auto second = GetResourceUtilizationRatio(metrics, *requests, target_utilization);
  if (!second.ok()) return second.status();
  const double new_ratio = second->ratio;
  if (tolerances.IsWithin(new_ratio) || (usage_ratio < 1.0 && new_ratio > 1.0) ||
      (usage_ratio > 1.0 && new_ratio < 1.0)) {
    p.replicas = current_replicas;
    return p;
  }
  const int32_t new_replicas = CeilToInt32(new_ratio * static_cast<double>(metrics.size()));
  if ((new_ratio < 1.0 && new_replicas > current_replicas) ||
      (new_ratio > 1.0 && new_replicas < current_replicas)) {
    p.replicas = current_replicas;
    return p;
  }
  p.replicas = new_replicas;
  return p;
}

absl::StatusOr<Proposal> ReplicaCalculator::CalcPlainMetricReplicas(
    PodMetricsInfo metrics, int32_t current_replicas, int64_t target_usage,
    const Tolerances& tolerances, const std::vector<Pod>& pods, const std::string& resource) const {
  if (pods.empty()) {
    return absl::FailedPreconditionError(
        "no pods returned by selector while calculating replica count");
  }
  PodGroups g = GroupPods(pods, metrics, resource, grouping_, now_);
  RemoveMetricsForPods(metrics, g.ignored);
  RemoveMetricsForPods(metrics, g.unready);
  if (metrics.empty()) {
    return absl::FailedPreconditionError(
        "did not receive metrics for targeted pods (pods might be unready)");
  }
  const UsageRatio first = GetMetricUsageRatio(metrics, target_usage);
  Proposal p;
  p.usage_milli = first.usage;
  const double usage_ratio = first.ratio;
  const bool scale_up_with_unready = !g.unready.empty() && usage_ratio > 1.0;
  if (!scale_up_with_unready && g.missing.empty()) {
    if (tolerances.IsWithin(usage_ratio)) {
      p.replicas = current_replicas;
    } else {
      p.replicas = CeilToInt32(usage_ratio * static_cast<double>(g.ready_pod_count));
    }
    return p;
  }
  if (!g.missing.empty()) {
    // Missing pods count as exactly the target on a scale-down and as 0 on a scale-up; at a
    // ratio of exactly 1 they are left out.
    if (usage_ratio < 1.0) {
      for (const std::string& pod : g.missing) metrics[pod] = PodMetric{target_usage, 0, 0};
    } else if (usage_ratio > 1.0) {
      for (const std::string& pod : g.missing) metrics[pod] = PodMetric{0, 0, 0};
    }
  }
  if (scale_up_with_unready) {
    for (const std::string& pod : g.unready) metrics[pod] = PodMetric{0, 0, 0};
  }
  const UsageRatio second = GetMetricUsageRatio(metrics, target_usage);
  const double new_ratio = second.ratio;
  if (tolerances.IsWithin(new_ratio) || (usage_ratio < 1.0 && new_ratio > 1.0) ||
      (usage_ratio > 1.0 && new_ratio < 1.0)) {
    p.replicas = current_replicas;
    return p;
  }
  const int32_t new_replicas = CeilToInt32(new_ratio * static_cast<double>(metrics.size()));
  if ((new_ratio < 1.0 && new_replicas > current_replicas) ||
      (new_ratio > 1.0 && new_replicas < current_replicas)) {
    p.replicas = current_replicas;
    return p;
  }
  p.replicas = new_replicas;
  return p;
}

absl::StatusOr<Proposal> ReplicaCalculator::GetRawResourceReplicas(
    int32_t current_replicas, int64_t target_usage, const std::string& resource,
    const Tolerances& tolerances, const std::vector<Pod>& pods, PodMetricsInfo usage) const {
  return CalcPlainMetricReplicas(std::move(usage), current_replicas, target_usage, tolerances, pods,
                                 resource);
}

absl::StatusOr<Proposal> ReplicaCalculator::GetMetricReplicas(int32_t current_replicas,
                                                              int64_t target_usage,
                                                              const Tolerances& tolerances,
                                                              const std::vector<Pod>& pods,
                                                              PodMetricsInfo metrics) const {
  return CalcPlainMetricReplicas(std::move(metrics), current_replicas, target_usage, tolerances,
                                 pods, "");
}

absl::StatusOr<int32_t> ReplicaCalculator::UsageRatioReplicaCount(
    int32_t current_replicas, double usage_ratio, const Tolerances& tolerances,
    const std::vector<Pod>& pods) const {
  if (current_replicas == 0) {
    // Scale from zero: no tolerance at all.
    return CeilToInt32(usage_ratio);
  }
  if (tolerances.IsWithin(usage_ratio)) return current_replicas;
  if (pods.empty()) {
    return absl::FailedPreconditionError(
        "unable to calculate ready pods: no pods returned by selector while calculating replica "
        "count");
  }
  int64_t ready = 0;
  for (const Pod& pod : pods) {
    if (pod.phase == PodPhase::kRunning && IsPodReady(pod)) ready++;
  }
  return CeilToInt32(usage_ratio * static_cast<double>(ready));
}

absl::StatusOr<Proposal> ReplicaCalculator::GetObjectMetricReplicas(int32_t current_replicas,
                                                                    int64_t target_usage,
                                                                    const Tolerances& tolerances,
                                                                    const std::vector<Pod>& pods,
                                                                    int64_t usage) const {
  const double ratio = static_cast<double>(usage) / static_cast<double>(target_usage);
  auto n = UsageRatioReplicaCount(current_replicas, ratio, tolerances, pods);
  if (!n.ok()) return n.status();
  Proposal p;
  p.replicas = *n;
  p.usage_milli = usage;
  return p;
}

namespace {

Proposal PerPod(int32_t status_replicas, int64_t target, const Tolerances& tolerances,
                int64_t usage) {
  Proposal p;
  p.replicas = status_replicas;
  const double ratio = static_cast<double>(usage) /
                       (static_cast<double>(target) * static_cast<double>(status_replicas));
  if (!tolerances.IsWithin(ratio)) {
    p.replicas = CeilToInt32(static_cast<double>(usage) / static_cast<double>(target));
  }
  // The per-pod average with no replicas is undefined in releases; report 0 (status only).
  p.usage_milli =
      status_replicas == 0
          ? 0
          : CeilToInt64(static_cast<double>(usage) / static_cast<double>(status_replicas));
  return p;
}

}  // namespace

absl::StatusOr<Proposal> ReplicaCalculator::GetObjectPerPodMetricReplicas(
    int32_t status_replicas, int64_t target_average_usage, const Tolerances& tolerances,
    int64_t usage) const {
  return PerPod(status_replicas, target_average_usage, tolerances, usage);
}

absl::StatusOr<Proposal> ReplicaCalculator::GetExternalMetricReplicas(
    int32_t current_replicas, int64_t target_usage, const Tolerances& tolerances,
    const std::vector<Pod>& pods, const std::vector<int64_t>& values) const {
  const int64_t usage = SaturatingSum(values);
  return GetObjectMetricReplicas(current_replicas, target_usage, tolerances, pods, usage);
}

absl::StatusOr<Proposal> ReplicaCalculator::GetExternalPerPodMetricReplicas(
    int32_t status_replicas, int64_t target_usage_per_pod, const Tolerances& tolerances,
    const std::vector<int64_t>& values) const {
  return PerPod(status_replicas, target_usage_per_pod, tolerances, SaturatingSum(values));
}

}  // namespace kpiscale::hpa
