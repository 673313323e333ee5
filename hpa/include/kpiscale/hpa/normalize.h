#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "kpiscale/hpa/types.h"

namespace kpiscale::hpa {

/// API defaulting of one direction's rules when `spec.behavior` is set (algorithm §12.1,
/// `GenerateHPAScaleUpRules`/`GenerateHPAScaleDownRules`). The scale-down window stays unset.
ScalingRules DefaultScaleUpRules(const std::optional<ScalingRules>& given);
ScalingRules DefaultScaleDownRules(const std::optional<ScalingRules>& given);

/// Defaults a whole behavior as the API server does, then fills a nil scale-down window from
/// the controller's downscale-stabilization flag (maybeInitScaleDownStabilizationWindow).
Behavior EffectiveBehavior(const Behavior& given, Duration downscale_stabilization_window);

/// Validation as the API server does it (window 0..3600, policies non-empty with value > 0 and
/// period 1..1800). Returns InvalidArgument naming the field.
absl::Status ValidateBehavior(const Behavior& behavior);

/// Legacy stabilization (no behavior, algorithm §11): the maximum over recommendations not older
/// than `window` (inclusive), then stores `desired` reusing the last old slot.
int32_t StabilizeRecommendation(std::vector<Recommendation>& recommendations, int32_t desired,
                                Duration window, Time now);

/// Result of stabilizeRecommendationWithBehaviors.
struct Stabilized {
  int32_t replicas = 0;
  std::string reason;  ///< ScaleUpStabilized / ScaleDownStabilized (used only if it changed)
};

/// Dual-window stabilization (algorithm §12.2): strict windows; stores the unstabilized value.
Stabilized StabilizeRecommendationWithBehaviors(std::vector<Recommendation>& recommendations,
                                                int32_t current, int32_t desired,
                                                Duration up_window, Duration down_window, Time now);

/// Σ change over events with age < period (strict).
int32_t GetReplicasChangePerPeriod(int32_t period_seconds, const std::vector<ScaleEvent>& events,
                                   Time now);

/// The raw policy limits (algorithm §12.3). `same_direction_only` models releases before
/// kubernetes/kubernetes#109058.
int32_t CalculateScaleUpLimitWithScalingRules(int32_t current,
                                              const std::vector<ScaleEvent>& up_events,
                                              const std::vector<ScaleEvent>& down_events,
                                              const ScalingRules& rules, Time now);
int32_t CalculateScaleDownLimitWithBehaviors(int32_t current,
                                             const std::vector<ScaleEvent>& up_events,
                                             const std::vector<ScaleEvent>& down_events,
                                             const ScalingRules& rules, Time now);

/// A limiter's result: replicas and the ScalingLimited reason.
struct Limited {
  int32_t replicas = 0;
  std::string reason;
};

/// The behavior limiter (convertDesiredReplicasWithBehaviorRate); `rules` must be defaulted.
Limited ConvertDesiredReplicasWithBehaviorRate(int32_t current, int32_t desired, int32_t min,
                                               int32_t max, const ScalingRules& up_rules,
                                               const ScalingRules& down_rules,
                                               const std::vector<ScaleEvent>& up_events,
                                               const std::vector<ScaleEvent>& down_events,
                                               Time now);

/// The legacy limiter (convertDesiredReplicasWithRules), with the scale-up cap
/// trunc(max(factor * current, minimum)).
Limited ConvertDesiredReplicasWithRules(int32_t current, int32_t desired, int32_t min, int32_t max,
                                        double scale_up_limit_factor,
                                        double scale_up_limit_minimum);

/// Records a scale event (algorithm §12.4); a nil behavior stores nothing. `behavior` must be
/// defaulted.
void StoreScaleEvent(const std::optional<Behavior>& behavior, ControllerState& state,
                     int32_t prev_replicas, int32_t new_replicas, Time now);

}  // namespace kpiscale::hpa
