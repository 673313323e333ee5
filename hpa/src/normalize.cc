#include "kpiscale/hpa/normalize.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "kpiscale/hpa/replica_calculator.h"

namespace kpiscale::hpa {
namespace {

Duration SecondsOf(int32_t s) { return static_cast<Duration>(s) * kNanosPerSecond; }

// Go's int32 arithmetic wraps; replica arithmetic is done in int64 and narrowed the same way.
int32_t Narrow(int64_t v) { return static_cast<int32_t>(static_cast<uint32_t>(v)); }

int32_t LongestPolicyPeriod(const ScalingRules& rules) {
  int32_t longest = 0;
  if (rules.policies) {
    for (const ScalingPolicy& p : *rules.policies) longest = std::max(longest, p.period_seconds);
  }
  return longest;
}

void StoreIn(std::vector<ScaleEvent>& events, int32_t change, int32_t longest_period, Time now) {
  const Time cutoff = now - SecondsOf(longest_period);
  bool found = false;
  size_t index = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    if (events[i].time < cutoff) events[i].outdated = true;
    if (events[i].outdated) {
      found = true;
      index = i;
    }
  }
  if (found) {
    events[index] = ScaleEvent{change, now, false};
  } else {
    events.push_back(ScaleEvent{change, now, false});
  }
}

}  // namespace

ScalingRules DefaultScaleUpRules(const std::optional<ScalingRules>& given) {
  ScalingRules r = given.value_or(ScalingRules{});
  if (!r.stabilization_window_seconds) r.stabilization_window_seconds = 0;
  if (!r.select_policy) r.select_policy = SelectPolicy::kMax;
  if (!r.policies) {
    r.policies = std::vector<ScalingPolicy>{{ScalingPolicy::Type::kPods, 4, 15},
                                            {ScalingPolicy::Type::kPercent, 100, 15}};
  }
  return r;
}

ScalingRules DefaultScaleDownRules(const std::optional<ScalingRules>& given) {
  ScalingRules r = given.value_or(ScalingRules{});
  if (!r.select_policy) r.select_policy = SelectPolicy::kMax;
  if (!r.policies) {
    r.policies = std::vector<ScalingPolicy>{{ScalingPolicy::Type::kPercent, 100, 15}};
  }
  return r;
}

Behavior EffectiveBehavior(const Behavior& given, Duration downscale_stabilization_window) {
  Behavior b;
  b.scale_up = DefaultScaleUpRules(given.scale_up);
  b.scale_down = DefaultScaleDownRules(given.scale_down);
  if (!b.scale_down->stabilization_window_seconds) {
    b.scale_down->stabilization_window_seconds =
        static_cast<int32_t>(downscale_stabilization_window / kNanosPerSecond);
  }
  return b;
}

absl::Status ValidateBehavior(const Behavior& behavior) {
  auto check = [](const std::optional<ScalingRules>& r, const char* dir) -> absl::Status {
    if (!r) return absl::OkStatus();
    if (r->stabilization_window_seconds &&
        (*r->stabilization_window_seconds < 0 || *r->stabilization_window_seconds > 3600)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "spec.behavior.", dir, ".stabilizationWindowSeconds: must be in 0..3600, got ",
          *r->stabilization_window_seconds));
    }
    if (r->policies) {
      if (r->policies->empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("spec.behavior.", dir, ".policies: must specify at least one policy"));
      }
      for (size_t i = 0; i < r->policies->size(); ++i) {
        const ScalingPolicy& p = (*r->policies)[i];
        if (p.value <= 0) {
          return absl::InvalidArgumentError(absl::StrCat("spec.behavior.", dir, ".policies[", i,
                                                         "].value: must be greater than zero"));
        }
        if (p.period_seconds < 1 || p.period_seconds > 1800) {
          return absl::InvalidArgumentError(absl::StrCat("spec.behavior.", dir, ".policies[", i,
                                                         "].periodSeconds: must be in 1..1800"));
        }
      }
    }
    if (r->tolerance && *r->tolerance < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("spec.behavior.", dir, ".tolerance: must be greater than or equal to 0"));
    }
    return absl::OkStatus();
  };
  if (absl::Status st = check(behavior.scale_up, "scaleUp"); !st.ok()) return st;
  return check(behavior.scale_down, "scaleDown");
}

int32_t StabilizeRecommendation(std::vector<Recommendation>& recommendations, int32_t desired,
                                Duration window, Time now) {
  int32_t max_recommendation = desired;
  bool found_old = false;
  size_t old_index = 0;
  const Time cutoff = now - window;
  for (size_t i = 0; i < recommendations.size(); ++i) {
    if (recommendations[i].time < cutoff) {
      found_old = true;
      old_index = i;
    } else if (recommendations[i].value > max_recommendation) {
      max_recommendation = recommendations[i].value;
    }
  }
  if (found_old) {
    recommendations[old_index] = Recommendation{desired, now};
  } else {
    recommendations.push_back(Recommendation{desired, now});
  }
  return max_recommendation;
}

Stabilized StabilizeRecommendationWithBehaviors(std::vector<Recommendation>& recommendations,
                                                int32_t current, int32_t desired,
                                                Duration up_window, Duration down_window,
                                                Time now) {
  bool found_old = false;
  size_t old_index = 0;
  int32_t up = desired;
  int32_t down = desired;
  const Time up_cutoff = now - up_window;
  const Time down_cutoff = now - down_window;
  for (size_t i = 0; i < recommendations.size(); ++i) {
    const Recommendation& r = recommendations[i];
    if (r.time > up_cutoff) up = std::min(r.value, up);
    if (r.time > down_cutoff) down = std::max(r.value, down);
    if (r.time < up_cutoff && r.time < down_cutoff) {
      found_old = true;
      old_index = i;
    }
  }
  int32_t recommendation = current;
  if (recommendation < up) recommendation = up;
  if (recommendation > down) recommendation = down;
  if (found_old) {
    recommendations[old_index] = Recommendation{desired, now};
  } else {
    recommendations.push_back(Recommendation{desired, now});
  }
  Stabilized s;
  s.replicas = recommendation;
  s.reason = desired >= current ? "ScaleUpStabilized" : "ScaleDownStabilized";
  return s;
}

int32_t GetReplicasChangePerPeriod(int32_t period_seconds, const std::vector<ScaleEvent>& events,
                                   Time now) {
  const Time cutoff = now - SecondsOf(period_seconds);
  int64_t replicas = 0;
  for (const ScaleEvent& e : events) {
    if (e.time > cutoff) replicas += e.change;
  }
  return Narrow(replicas);
}

int32_t CalculateScaleUpLimitWithScalingRules(int32_t current,
                                              const std::vector<ScaleEvent>& up_events,
                                              const std::vector<ScaleEvent>& down_events,
                                              const ScalingRules& rules, Time now) {
  const SelectPolicy select = rules.select_policy.value_or(SelectPolicy::kMax);
  if (select == SelectPolicy::kDisabled) return current;
  const bool pick_min = select == SelectPolicy::kMin;
  int32_t result =
      pick_min ? std::numeric_limits<int32_t>::max() : std::numeric_limits<int32_t>::min();
  if (!rules.policies) return result;
  for (const ScalingPolicy& p : *rules.policies) {
    const int32_t added = GetReplicasChangePerPeriod(p.period_seconds, up_events, now);
    const int32_t deleted = GetReplicasChangePerPeriod(p.period_seconds, down_events, now);
    const int32_t start = Narrow(int64_t{current} - added + deleted);
    int32_t proposed = 0;
    if (p.type == ScalingPolicy::Type::kPods) {
      proposed = Narrow(int64_t{start} + p.value);
    } else {
      // Rounded up so that a small percentage still adds at least one replica.
      proposed = CeilToInt32(static_cast<double>(start) * (1 + static_cast<double>(p.value) / 100));
    }
    result = pick_min ? std::min(result, proposed) : std::max(result, proposed);
  }
  return result;
}

int32_t CalculateScaleDownLimitWithBehaviors(int32_t current,
                                             const std::vector<ScaleEvent>& up_events,
                                             const std::vector<ScaleEvent>& down_events,
                                             const ScalingRules& rules, Time now) {
  const SelectPolicy select = rules.select_policy.value_or(SelectPolicy::kMax);
  if (select == SelectPolicy::kDisabled) return current;
  const bool pick_min_change = select == SelectPolicy::kMin;
  int32_t result =
      pick_min_change ? std::numeric_limits<int32_t>::min() : std::numeric_limits<int32_t>::max();
  if (!rules.policies) return result;
  for (const ScalingPolicy& p : *rules.policies) {
    const int32_t added = GetReplicasChangePerPeriod(p.period_seconds, up_events, now);
    const int32_t deleted = GetReplicasChangePerPeriod(p.period_seconds, down_events, now);
    const int32_t start = Narrow(int64_t{current} - added + deleted);
    int32_t proposed = 0;
    if (p.type == ScalingPolicy::Type::kPods) {
      proposed = Narrow(int64_t{start} - p.value);
    } else {
      proposed =
          TruncToInt32(static_cast<double>(start) * (1 - static_cast<double>(p.value) / 100));
    }
    result = pick_min_change ? std::max(result, proposed) : std::min(result, proposed);
  }
  return result;
}

Limited ConvertDesiredReplicasWithBehaviorRate(int32_t current, int32_t desired, int32_t min,
                                               int32_t max, const ScalingRules& up_rules,
                                               const ScalingRules& down_rules,
                                               const std::vector<ScaleEvent>& up_events,
                                               const std::vector<ScaleEvent>& down_events,
                                               Time now) {
  if (desired > current) {
    int32_t limit =
        CalculateScaleUpLimitWithScalingRules(current, up_events, down_events, up_rules, now);
    // Once the budget is spent nothing moves up until events age out.
    if (limit < current) limit = current;
    int32_t maximum = max;
    std::string reason;
    if (maximum > limit) {
      maximum = limit;
      reason = "ScaleUpLimit";
    } else {
      reason = "TooManyReplicas";
    }
    if (desired > maximum) return Limited{maximum, reason};
  } else if (desired < current) {
    int32_t limit =
        CalculateScaleDownLimitWithBehaviors(current, up_events, down_events, down_rules, now);
    if (limit > current) limit = current;
    int32_t minimum = min;
    std::string reason;
    if (minimum < limit) {
      minimum = limit;
      reason = "ScaleDownLimit";
    } else {
      reason = "TooFewReplicas";
    }
    if (desired < minimum) return Limited{minimum, reason};
  }
  return Limited{desired, "DesiredWithinRange"};
}

Limited ConvertDesiredReplicasWithRules(int32_t current, int32_t desired, int32_t min, int32_t max,
                                        double scale_up_limit_factor,
                                        double scale_up_limit_minimum) {
  const int32_t scale_up_limit = TruncToInt32(
      std::max(scale_up_limit_factor * static_cast<double>(current), scale_up_limit_minimum));
  int32_t maximum = 0;
  std::string reason;
  if (max > scale_up_limit) {
    maximum = scale_up_limit;
    reason = "ScaleUpLimit";
  } else {
    maximum = max;
    reason = "TooManyReplicas";
  }
  if (desired < min) return Limited{min, "TooFewReplicas"};
  if (desired > maximum) return Limited{maximum, reason};
  return Limited{desired, "DesiredWithinRange"};
}

void StoreScaleEvent(const std::optional<Behavior>& behavior, ControllerState& state,
                     int32_t prev_replicas, int32_t new_replicas, Time now) {
  if (!behavior) return;  // the legacy path never reads events
  if (new_replicas > prev_replicas) {
    const ScalingRules rules = DefaultScaleUpRules(behavior->scale_up);
    StoreIn(state.scale_up_events, Narrow(int64_t{new_replicas} - prev_replicas),
            LongestPolicyPeriod(rules), now);
  } else {
    const ScalingRules rules = DefaultScaleDownRules(behavior->scale_down);
    StoreIn(state.scale_down_events, Narrow(int64_t{prev_replicas} - new_replicas),
            LongestPolicyPeriod(rules), now);
  }
}

}  // namespace kpiscale::hpa
