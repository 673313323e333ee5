#include "kpiscale/hpa/normalize.h"

#include "gtest/gtest.h"

namespace kpiscale::hpa {
// A namespace of its own: in unity builds several test files share one translation unit.
namespace normalize_test {
namespace {

constexpr Duration kS = kNanosPerSecond;

ScalingRules Rules(SelectPolicy select, std::vector<ScalingPolicy> policies) {
  ScalingRules r;
  r.select_policy = select;
  r.policies = std::move(policies);
  r.stabilization_window_seconds = 0;
  return r;
}

TEST(Defaults, FillBothDirectionsAndReplacePolicies) {
  const ScalingRules up = DefaultScaleUpRules(std::nullopt);
  EXPECT_EQ(*up.stabilization_window_seconds, 0);
  EXPECT_EQ(*up.select_policy, SelectPolicy::kMax);
  ASSERT_EQ(up.policies->size(), 2u);
  EXPECT_EQ((*up.policies)[0].type, ScalingPolicy::Type::kPods);
  EXPECT_EQ((*up.policies)[0].value, 4);
  EXPECT_EQ((*up.policies)[1].period_seconds, 15);
  const ScalingRules down = DefaultScaleDownRules(std::nullopt);
  EXPECT_FALSE(down.stabilization_window_seconds.has_value());
  ASSERT_EQ(down.policies->size(), 1u);
  EXPECT_EQ((*down.policies)[0].value, 100);
  ScalingRules given;
  given.policies = std::vector<ScalingPolicy>{{ScalingPolicy::Type::kPercent, 50, 60}};
  EXPECT_EQ(DefaultScaleDownRules(given).policies->size(), 1u);
  Behavior b;
  b.scale_up = given;
  const Behavior eff = EffectiveBehavior(b, 300 * kS);
  EXPECT_EQ(*eff.scale_down->stabilization_window_seconds, 300);
  EXPECT_EQ((*eff.scale_up->policies)[0].value, 50);
}

TEST(Validation, RejectsOutOfRangeFields) {
  Behavior b;
  b.scale_up = ScalingRules{};
  b.scale_up->stabilization_window_seconds = 3601;
  EXPECT_FALSE(ValidateBehavior(b).ok());
  b.scale_up->stabilization_window_seconds = 0;
  b.scale_up->policies = std::vector<ScalingPolicy>{};
  EXPECT_FALSE(ValidateBehavior(b).ok());
  b.scale_up->policies = std::vector<ScalingPolicy>{{ScalingPolicy::Type::kPods, 1, 1801}};
  EXPECT_FALSE(ValidateBehavior(b).ok());
  b.scale_up->policies = std::vector<ScalingPolicy>{{ScalingPolicy::Type::kPods, 1, 1800}};
  EXPECT_TRUE(ValidateBehavior(b).ok());
}

TEST(LegacyStabilization, MaximumOverInclusiveWindowAndSlotReuse) {
  std::vector<Recommendation> recs{{10, -600 * kS}, {4, -60 * kS}, {5, -300 * kS}};
  // -300 is exactly the window: counts (inclusive). -600 is old: its slot is reused.
  EXPECT_EQ(StabilizeRecommendation(recs, 3, 300 * kS, 0), 5);
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[0].value, 3);
  EXPECT_EQ(recs[0].time, 0);
}

TEST(BehaviorStabilization, StrictDualWindowsClampAroundCurrent) {
  std::vector<Recommendation> recs{{2, -6000 * kS}, {1, -180 * kS}};
  const Stabilized s = StabilizeRecommendationWithBehaviors(recs, 2, 3, 300 * kS, 300 * kS, 0);
  EXPECT_EQ(s.replicas, 2);  // up wants min(3, 1) = 1 → never below current 2
  EXPECT_EQ(s.reason, "ScaleUpStabilized");
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].value, 3);  // the unstabilized value took the old slot
  // An entry exactly W old is neither counted nor reusable.
  std::vector<Recommendation> edge{{9, -300 * kS}};
  EXPECT_EQ(StabilizeRecommendationWithBehaviors(edge, 5, 3, 0, 300 * kS, 0).replicas, 3);
  EXPECT_EQ(edge.size(), 2u);
}

TEST(Policies, BudgetCountsBothDirections) {
  const ScalingRules up = Rules(SelectPolicy::kMax, {{ScalingPolicy::Type::kPercent, 100, 60}});
  const std::vector<ScaleEvent> ups{{4, -30 * kS, false}};
  const std::vector<ScaleEvent> downs{{2, -10 * kS, false}};
  // start = 8 - 4 + 2 = 6 → ceil(6 × 2) = 12.
  EXPECT_EQ(CalculateScaleUpLimitWithScalingRules(8, ups, downs, up, 0), 12);
  // The event exactly 60 s old no longer counts.
  const std::vector<ScaleEvent> aged{{4, -60 * kS, false}};
  EXPECT_EQ(CalculateScaleUpLimitWithScalingRules(8, aged, {}, up, 0), 16);
}

TEST(Policies, PercentScaleDownTruncatesAndMinMaxSelect) {
  const ScalingRules down = Rules(SelectPolicy::kMax, {{ScalingPolicy::Type::kPods, 4, 60},
                                                       {ScalingPolicy::Type::kPercent, 10, 60}});
  EXPECT_EQ(CalculateScaleDownLimitWithBehaviors(80, {}, {}, down, 0), 72);  // min(76, 72)
  ScalingRules min_change = down;
  min_change.select_policy = SelectPolicy::kMin;
  EXPECT_EQ(CalculateScaleDownLimitWithBehaviors(80, {}, {}, min_change, 0), 76);
  ScalingRules disabled = down;
  disabled.select_policy = SelectPolicy::kDisabled;
  EXPECT_EQ(CalculateScaleDownLimitWithBehaviors(80, {}, {}, disabled, 0), 80);
  // The worked example of algorithm §12.3: 72 × 0.9 = 64.8 → 64.
  EXPECT_EQ(CalculateScaleDownLimitWithBehaviors(72, {}, {}, down, 0), 64);
}

TEST(BehaviorLimiter, ReasonsAndSpentBudget) {
  const ScalingRules up = Rules(SelectPolicy::kMax, {{ScalingPolicy::Type::kPods, 2, 30}});
  const ScalingRules down = Rules(SelectPolicy::kMax, {{ScalingPolicy::Type::kPercent, 50, 60}});
  EXPECT_EQ(ConvertDesiredReplicasWithBehaviorRate(3, 9, 1, 10, up, down, {}, {}, 0).replicas, 5);
  EXPECT_EQ(ConvertDesiredReplicasWithBehaviorRate(3, 9, 1, 10, up, down, {}, {}, 0).reason,
            "ScaleUpLimit");
  EXPECT_EQ(ConvertDesiredReplicasWithBehaviorRate(9, 12, 1, 10, up, down, {}, {}, 0).reason,
            "TooManyReplicas");
  // Budget spent: +2 within the last 30 s keeps the count at current.
  const std::vector<ScaleEvent> spent{{2, -5 * kS, false}};
  EXPECT_EQ(ConvertDesiredReplicasWithBehaviorRate(5, 9, 1, 10, up, down, spent, {}, 0).replicas,
            5);
  const Limited d = ConvertDesiredReplicasWithBehaviorRate(10, 1, 3, 10, up, down, {}, {}, 0);
  EXPECT_EQ(d.replicas, 5);
  EXPECT_EQ(d.reason, "ScaleDownLimit");
  const Limited floor = ConvertDesiredReplicasWithBehaviorRate(4, 1, 3, 10, up, down, {}, {}, 0);
  EXPECT_EQ(floor.replicas, 3);
  EXPECT_EQ(floor.reason, "TooFewReplicas");
}

TEST(LegacyLimiter, ScaleUpCapIsPerReconcile) {
  EXPECT_EQ(ConvertDesiredReplicasWithRules(1, 100, 1, 100, 2.0, 4.0).replicas, 4);
  EXPECT_EQ(ConvertDesiredReplicasWithRules(4, 100, 1, 100, 2.0, 4.0).replicas, 8);
  EXPECT_EQ(ConvertDesiredReplicasWithRules(4, 100, 1, 100, 2.0, 4.0).reason, "ScaleUpLimit");
  EXPECT_EQ(ConvertDesiredReplicasWithRules(4, 100, 1, 6, 2.0, 4.0).reason, "TooManyReplicas");
  EXPECT_EQ(ConvertDesiredReplicasWithRules(4, 0, 2, 6, 2.0, 4.0).reason, "TooFewReplicas");
}

TEST(ScaleEvents, ReuseTheLastOutdatedSlot) {
  Behavior b;
  b.scale_up = Rules(SelectPolicy::kMax, {{ScalingPolicy::Type::kPods, 10, 60}});
  ControllerState state;
  state.scale_up_events = {{7, -61 * kS, false}, {6, -59 * kS, false}, {1, -90 * kS, false}};
  StoreScaleEvent(b, state, 10, 15, 0);
  ASSERT_EQ(state.scale_up_events.size(), 3u);
  EXPECT_EQ(state.scale_up_events[2].change, 5);  // the LAST outdated entry is replaced
  EXPECT_TRUE(state.scale_up_events[0].outdated);
  EXPECT_FALSE(state.scale_up_events[1].outdated);
  StoreScaleEvent(std::nullopt, state, 15, 10, 0);
  EXPECT_TRUE(state.scale_down_events.empty());
}

}  // namespace
}  // namespace normalize_test
}  // namespace kpiscale::hpa
