#include "kpiscale/hpa/controller.h"

#include "gtest/gtest.h"

namespace kpiscale::hpa {
namespace {

constexpr Duration kS = kNanosPerSecond;

// Fixed metric values, by type.
class FixedMetrics final : public MetricsSource {
 public:
  absl::StatusOr<std::vector<PodResourceSample>> GetResourceMetric(const MetricSpec&) override {
    return samples;
  }
  absl::StatusOr<PodMetricsInfo> GetRawMetric(const MetricSpec&) override { return pods; }
  absl::StatusOr<int64_t> GetObjectMetric(const MetricSpec&) override {
    if (!object) return absl::NotFoundError("no object value");
    return *object;
  }
  absl::StatusOr<std::vector<int64_t>> GetExternalMetric(const MetricSpec&) override {
    return external;
  }
  std::vector<PodResourceSample> samples;
  PodMetricsInfo pods;
  std::optional<int64_t> object;
  std::vector<int64_t> external;
};

MetricSpec Cpu(int32_t percent) {
  MetricSpec m;
  m.type = "Resource";
  m.name = "cpu";
  m.target.type = "Utilization";
  m.target.average_utilization = percent;
  return m;
}

MetricSpec ObjectValue(int64_t milli) {
  MetricSpec m;
  m.type = "Object";
  m.name = "qps";
  m.described_object = {"Deployment", "apps/v1", "web"};
  m.target.type = "Value";
  m.target.value_milli = milli;
  return m;
}

class ReconcileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spec_.min_replicas = 1;
    spec_.max_replicas = 10;
    config_ = ControllerConfig::UpstreamTestConstants();
  }
  void Pods(int n, int64_t usage_each) {
    input_.pods.clear();
    metrics_.samples.clear();
    for (int i = 0; i < n; ++i) {
      Pod p;
      p.name = "p" + std::to_string(i);
      p.start_time = kZeroTime;
      p.ready = ReadyCondition{"True", kZeroTime};
      p.containers.push_back(Container{"app", {{"cpu", 1000}}});
      input_.pods.push_back(p);
      metrics_.samples.push_back({p.name, 0, 60 * kS, {{"app", {{"cpu", usage_each}}}}});
    }
  }
  ReconcileResult Run(int32_t replicas) {
    input_.spec = &spec_;
    input_.scale = Scale{replicas, replicas};
    input_.metrics = &metrics_;
    input_.status.desired_replicas = replicas;
    return Reconcile(input_, config_, state_);
  }
  static std::vector<std::string> Reasons(const ReconcileResult& r) {
    std::vector<std::string> out;
    for (const Condition& c : r.status.conditions) out.push_back(c.type + "/" + c.reason);
    return out;
  }

  HpaSpec spec_;
  ControllerConfig config_;
  ControllerState state_;
  FixedMetrics metrics_;
  ReconcileInput input_;
};

TEST_F(ReconcileTest, ScalesUpOnCpuAndRecordsConditions) {
  spec_.metrics = {Cpu(50)};
  Pods(2, 1000);
  const ReconcileResult r = Run(2);
  EXPECT_EQ(r.desired_replicas, 4);
  EXPECT_TRUE(r.scale_updated);
  EXPECT_EQ(r.action, ActionLabel::kScaleUp);
  EXPECT_EQ(Reasons(r), (std::vector<std::string>{"AbleToScale/SucceededRescale",
                                                  "ScalingActive/ValidMetricFound",
                                                  "ScalingLimited/DesiredWithinRange"}));
  ASSERT_TRUE(state_.recommendations.has_value());
  EXPECT_EQ(state_.recommendations->size(), 2u);  // the initial one and this one
  EXPECT_TRUE(state_.scale_up_events.empty());    // legacy path keeps no events
}

TEST_F(ReconcileTest, InitialRecommendationHoldsScaleDownForOneWindow) {
  spec_.metrics = {Cpu(50)};
  Pods(4, 100);
  const ReconcileResult r = Run(4);
  EXPECT_EQ(r.desired_replicas, 4);
  EXPECT_FALSE(r.scale_updated);
  EXPECT_EQ(r.status.FindCondition("AbleToScale")->reason, "ScaleDownStabilized");
  // A controller that already has (empty) history scales down at once.
  state_ = ControllerState{};
  state_.recommendations = std::vector<Recommendation>{};
  EXPECT_EQ(Run(4).desired_replicas, 1);
}

TEST_F(ReconcileTest, OutOfRangeBranchesSkipMetricsAndStoreEventsWithBehavior) {
  spec_.min_replicas = 3;
  spec_.behavior = Behavior{};
  const ReconcileResult r = Run(1);
  EXPECT_EQ(r.desired_replicas, 3);
  EXPECT_EQ(Reasons(r), (std::vector<std::string>{"AbleToScale/SucceededRescale"}));
  ASSERT_EQ(state_.scale_up_events.size(), 1u);
  EXPECT_EQ(state_.scale_up_events[0].change, 2);
  EXPECT_EQ(Run(12).desired_replicas, 10);
}

TEST_F(ReconcileTest, ZeroReplicasDisablesScaling) {
  spec_.metrics = {Cpu(50)};
  const ReconcileResult r = Run(0);
  EXPECT_EQ(r.desired_replicas, 0);
  EXPECT_FALSE(r.scale_updated);
  EXPECT_EQ(r.status.FindCondition("ScalingActive")->reason, "ScalingDisabled");
}

TEST_F(ReconcileTest, InvalidMetricBlocksScaleDownButNotScaleUp) {
  spec_.metrics = {Cpu(50), ObjectValue(1000)};
  state_.recommendations = std::vector<Recommendation>{};
  Pods(4, 100);  // cpu wants 1; the object metric has no value
  ReconcileResult r = Run(4);
  EXPECT_FALSE(r.scale_updated);
  EXPECT_TRUE(r.returns_error);
  EXPECT_EQ(r.status.FindCondition("ScalingActive")->reason, "FailedGetObjectMetric");
  Pods(4, 1000);  // cpu wants 8: the scale-up goes ahead, still reporting the error
  r = Run(4);
  EXPECT_EQ(r.desired_replicas, 8);
  EXPECT_TRUE(r.returns_error);
  EXPECT_EQ(r.status.FindCondition("ScalingActive")->reason, "ValidMetricFound");
}

TEST_F(ReconcileTest, UnknownMetricTypeIsInvalidMetricSourceType) {
  MetricSpec cheese;
  cheese.type = "CheddarCheese";
  spec_.metrics = {cheese};
  const ReconcileResult r = Run(3);
  EXPECT_TRUE(r.returns_error);
  EXPECT_EQ(r.desired_replicas, 3);
  EXPECT_EQ(r.status.FindCondition("ScalingActive")->reason, "InvalidMetricSourceType");
}

TEST_F(ReconcileTest, BehaviorPathLimitsAndRemembersEvents) {
  spec_.metrics = {Cpu(50)};
  Behavior b;
  b.scale_up = ScalingRules{};
  b.scale_up->policies = std::vector<ScalingPolicy>{{ScalingPolicy::Type::kPods, 1, 60}};
  spec_.behavior = b;
  Pods(2, 1000);
  ReconcileResult r = Run(2);
  EXPECT_EQ(r.desired_replicas, 3);
  EXPECT_EQ(r.status.FindCondition("ScalingLimited")->reason, "ScaleUpLimit");
  EXPECT_EQ(r.status.FindCondition("ScalingLimited")->status, "True");
  ASSERT_EQ(state_.scale_up_events.size(), 1u);
  // 15 s later the 60 s budget is spent.
  input_.now = 15 * kS;
  Pods(3, 1000);
  r = Run(3);
  EXPECT_EQ(r.desired_replicas, 3);
  EXPECT_FALSE(r.scale_updated);
}

TEST_F(ReconcileTest, FailedScaleReadAndWrite) {
  spec_.metrics = {Cpu(50)};
  input_.spec = &spec_;
  input_.metrics = &metrics_;
  input_.scale = absl::UnavailableError("boom");
  ReconcileResult r = Reconcile(input_, config_, state_);
  EXPECT_TRUE(r.returns_error);
  EXPECT_EQ(r.status.FindCondition("AbleToScale")->reason, "FailedGetScale");
  Pods(2, 1000);
  input_.fail_scale_update = true;
  r = Run(2);
  EXPECT_TRUE(r.returns_error);
  EXPECT_FALSE(r.scale_updated);
  EXPECT_EQ(r.status.FindCondition("AbleToScale")->reason, "FailedUpdateScale");
}

TEST(TolerancesFor, PerHpaToleranceNeedsBehaviorAndGate) {
  HpaSpec spec;
  ControllerConfig config;
  Behavior b;
  b.scale_up = ScalingRules{};
  b.scale_up->tolerance = 0.01;
  spec.behavior = b;
  EXPECT_DOUBLE_EQ(TolerancesFor(spec, config).scale_up, 0.01);
  EXPECT_DOUBLE_EQ(TolerancesFor(spec, config).scale_down, 0.1);
  config.gates.configurable_tolerance = false;
  EXPECT_DOUBLE_EQ(TolerancesFor(spec, config).scale_up, 0.1);
}

}  // namespace
}  // namespace kpiscale::hpa
