#include "kpiscale/hpa/replica_calculator.h"

#include <limits>

#include "gtest/gtest.h"

namespace kpiscale::hpa {
// A namespace of its own: in unity builds several test files share one translation unit.
namespace replica_calculator_test {
namespace {

constexpr Duration kS = kNanosPerSecond;

Pod ReadyPod(const std::string& name, int64_t cpu_request = 1000, Time start = kZeroTime) {
  Pod p;
  p.name = name;
  p.start_time = start;
  p.ready = ReadyCondition{"True", start};
  p.containers.push_back(Container{"app", {{"cpu", cpu_request}}});
  return p;
}

PodMetricsInfo Usage(std::initializer_list<std::pair<std::string, int64_t>> values) {
  PodMetricsInfo m;
  for (const auto& [pod, v] : values) m[pod] = PodMetric{v, 0, 60 * kS};
  return m;
}

GroupingConfig TestGrouping() { return GroupingConfig{120 * kS, 10 * kS}; }

TEST(GroupPods, ClassifiesIgnoredUnreadyMissingAndReady) {
  std::vector<Pod> pods;
  pods.push_back(ReadyPod("ready"));
  Pod deleted = ReadyPod("deleted");
  deleted.deleted = true;
  pods.push_back(deleted);
  Pod failed = ReadyPod("failed");
  failed.phase = PodPhase::kFailed;
  pods.push_back(failed);
  Pod pending = ReadyPod("pending");
  pending.phase = PodPhase::kPending;
  pods.push_back(pending);
  pods.push_back(ReadyPod("nometric"));
  const PodMetricsInfo m = Usage({{"ready", 1}, {"deleted", 1}, {"failed", 1}, {"pending", 1}});
  const PodGroups g = GroupPods(pods, m, "cpu", TestGrouping(), 0);
  EXPECT_EQ(g.ready_pod_count, 1);
  EXPECT_EQ(g.ignored, (std::set<std::string>{"deleted", "failed"}));
  EXPECT_EQ(g.unready, (std::set<std::string>{"pending"}));
  EXPECT_EQ(g.missing, (std::set<std::string>{"nometric"}));
}

TEST(GroupPods, CpuChecksInsideInitializationPeriodUseSampleFreshness) {
  // Started 60 s ago (inside the 120 s period), Ready since 30 s ago, 60 s window.
  Pod p = ReadyPod("p", 1000, -60 * kS);
  p.ready = ReadyCondition{"True", -30 * kS};
  PodMetricsInfo m;
  m["p"] = PodMetric{100, 0, 60 * kS};  // 0 < -30 + 60: stale
  EXPECT_EQ(GroupPods({p}, m, "cpu", TestGrouping(), 0).unready.count("p"), 1u);
  m["p"].timestamp = 30 * kS;  // exactly lastTransition + window: fresh
  EXPECT_EQ(GroupPods({p}, m, "cpu", TestGrouping(), 0).ready_pod_count, 1);
  // The same pod for a memory metric is never CPU-tested.
  m["p"].timestamp = 0;
  EXPECT_EQ(GroupPods({p}, m, "memory", TestGrouping(), 0).ready_pod_count, 1);
}

TEST(GroupPods, AfterPeriodOnlyNeverReadyPodsAreUnready) {
  Pod p = ReadyPod("p", 1000, -300 * kS);
  p.ready = ReadyCondition{"False", -295 * kS};  // start + 10 s delay > transition: never ready
  PodMetricsInfo m = Usage({{"p", 5}});
  EXPECT_EQ(GroupPods({p}, m, "cpu", TestGrouping(), 0).unready.count("p"), 1u);
  p.ready->last_transition_time = -290 * kS;  // start + delay == transition: was ready
  EXPECT_EQ(GroupPods({p}, m, "cpu", TestGrouping(), 0).ready_pod_count, 1);
  Pod no_start = ReadyPod("n");
  no_start.start_time.reset();
  EXPECT_EQ(GroupPods({no_start}, Usage({{"n", 5}}), "cpu", TestGrouping(), 0).unready.size(), 1u);
}

TEST(ResourceUsage, SumsContainersAndDropsIncompletePods) {
  std::vector<PodResourceSample> s(3);
  s[0] = {"a", 0, 60 * kS, {{"c1", {{"cpu", 100}}}, {"c2", {{"cpu", 50}}}}};
  s[1] = {"b", 0, 60 * kS, {{"c1", {{"cpu", 100}}}, {"", {}}}};
  s[2] = {"c", 0, 60 * kS, {}};
  auto pod_level = ResourceUsageFromSamples(s, "cpu", "");
  ASSERT_TRUE(pod_level.ok());
  ASSERT_EQ(pod_level->size(), 1u);
  EXPECT_EQ(pod_level->at("a").value, 150);
  auto container = ResourceUsageFromSamples(s, "cpu", "c1");
  ASSERT_TRUE(container.ok());
  EXPECT_EQ(container->size(), 2u);  // "c" has no c1: missing
  EXPECT_FALSE(ResourceUsageFromSamples({}, "cpu", "").ok());
}

TEST(PodRequests, MissingRequestIsAnError) {
  Pod p = ReadyPod("p");
  p.containers.push_back(Container{"no-request", {}});
  auto r = CalculatePodRequests({p}, "", "cpu", false);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("missing request for cpu"), std::string::npos);
  auto only_app = CalculatePodRequests({p}, "app", "cpu", false);
  ASSERT_TRUE(only_app.ok());
  EXPECT_EQ(only_app->at("p"), 1000);
  p.sidecar_containers.push_back(Container{"proxy", {{"cpu", 200}}});
  p.containers.pop_back();
  EXPECT_EQ(CalculatePodRequests({p}, "", "cpu", false)->at("p"), 1200);
}

TEST(Utilization, UsesTruncatedPercentAndSkipsUnknownPods) {
  const std::map<std::string, int64_t> req{{"a", 1000}, {"b", 1000}};
  // 1029 + 1029 of 2000 = 102.9 % → 102 %.
  auto r = GetResourceUtilizationRatio(Usage({{"a", 1029}, {"b", 1029}, {"x", 99999}}), req, 100);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->utilization, 102);
  EXPECT_DOUBLE_EQ(r->ratio, 1.02);
  EXPECT_EQ(r->raw_average_milli, 1029);
  EXPECT_FALSE(GetResourceUtilizationRatio(Usage({{"x", 1}}), req, 100).ok());
}

TEST(ResourceReplicas, FastPathAndTolerance) {
  const ReplicaCalculator calc(TestGrouping(), 0);
  std::vector<Pod> pods{ReadyPod("a"), ReadyPod("b"), ReadyPod("c")};
  const Tolerances tol;
  auto up = calc.GetResourceReplicas(3, 30, "cpu", "", tol, pods,
                                     Usage({{"a", 300}, {"b", 500}, {"c", 700}}));
  ASSERT_TRUE(up.ok());
  EXPECT_EQ(up->replicas, 5);  // 50 % / 30 % × 3 = 5
  EXPECT_EQ(up->utilization, 50);
  auto within = calc.GetResourceReplicas(3, 48, "cpu", "", tol, pods,
                                         Usage({{"a", 300}, {"b", 500}, {"c", 700}}));
  EXPECT_EQ(within->replicas, 3);
  EXPECT_FALSE(calc.GetResourceReplicas(3, 30, "cpu", "", tol, {}, Usage({{"a", 1}})).ok());
}

TEST(ResourceReplicas, MissingPodsFillInByDirection) {
  const ReplicaCalculator calc(TestGrouping(), 0);
  std::vector<Pod> pods{ReadyPod("a"), ReadyPod("b"), ReadyPod("c"), ReadyPod("d")};
  const Tolerances tol;
  // Scale-down: d counts as max(100, 50) = 100 % → (100+100+100+1000)/4000 = 32.5 % → 32 %.
  auto down = calc.GetResourceReplicas(4, 50, "cpu", "", tol, pods,
                                       Usage({{"a", 100}, {"b", 100}, {"c", 100}}));
  ASSERT_TRUE(down.ok());
  EXPECT_EQ(down->replicas, 3);  // ceil(0.64 × 4)
  EXPECT_EQ(down->utilization, 10);
  // Scale-up: the missing pod counts as 0 %.
  auto up = calc.GetResourceReplicas(4, 50, "cpu", "", tol, pods,
                                     Usage({{"a", 900}, {"b", 900}, {"c", 900}}));
  ASSERT_TRUE(up.ok());
  EXPECT_EQ(up->replicas, 6);  // 2700/4000 = 67 % → ceil(1.34 × 4) = 6
}

TEST(PlainReplicas, AverageIncludesExtraneousPods) {
  const ReplicaCalculator calc(TestGrouping(), 0);
  std::vector<Pod> pods{ReadyPod("a"), ReadyPod("b")};
  auto p = calc.GetMetricReplicas(2, 10000, Tolerances{}, pods,
                                  Usage({{"a", 20000}, {"b", 20000}, {"x", 50000}}));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->usage_milli, 30000);
  EXPECT_EQ(p->replicas, 6);  // ratio 3 × 2 ready pods
}

TEST(ObjectReplicas, ValueUsesRunningReadyPodsAndScalesFromZeroWithoutTolerance) {
  const ReplicaCalculator calc(TestGrouping(), 0);
  Pod unready = ReadyPod("u");
  unready.ready->status = "False";
  std::vector<Pod> pods{ReadyPod("a"), unready, ReadyPod("b")};
  auto p = calc.GetObjectMetricReplicas(3, 1000, Tolerances{}, pods, 3000);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->replicas, 6);  // ratio 3 × 2 ready
  EXPECT_EQ(calc.GetObjectMetricReplicas(0, 1000, Tolerances{}, {}, 1050)->replicas, 2);
  EXPECT_EQ(calc.GetObjectMetricReplicas(0, 1000, Tolerances{}, {}, 0)->replicas, 0);
  EXPECT_EQ(
      calc.GetObjectMetricReplicas(3, 1, Tolerances{}, pods, std::numeric_limits<int64_t>::max())
          ->replicas,
      std::numeric_limits<int32_t>::max());
}

TEST(PerPodReplicas, UsesStatusReplicasAndReportsCeilAverage) {
  const ReplicaCalculator calc(TestGrouping(), 0);
  auto p = calc.GetExternalPerPodMetricReplicas(3, 1000, Tolerances{}, {2000, 2001});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->replicas, 5);        // ceil(4001 / 1000)
  EXPECT_EQ(p->usage_milli, 1334);  // ceil(4001 / 3)
  auto zero = calc.GetObjectPerPodMetricReplicas(0, 1000, Tolerances{}, 2500);
  EXPECT_EQ(zero->replicas, 3);
  EXPECT_EQ(zero->usage_milli, 0);
}

TEST(Tolerances, ReleaseProfilesDifferAtTheUpperEdge) {
  Tolerances latest;
  EXPECT_TRUE(latest.IsWithin(1.1));
  EXPECT_TRUE(latest.IsWithin(0.9));
  Tolerances old;
  old.profile = VersionProfile::kV1_32;
  EXPECT_FALSE(old.IsWithin(1.1));  // |1 - 1.1| = 0.10000000000000009 > 0.1
  EXPECT_TRUE(old.IsWithin(0.9));
  Tolerances asymmetric{0.5, 0.01, VersionProfile::kLatest};
  EXPECT_FALSE(asymmetric.IsWithin(1.02));
  EXPECT_TRUE(asymmetric.IsWithin(0.6));
}

TEST(Saturation, ConversionsNeverOverflow) {
  EXPECT_EQ(CeilToInt32(1e300), std::numeric_limits<int32_t>::max());
  EXPECT_EQ(CeilToInt32(std::nan("")), 0);
  EXPECT_EQ(TruncToInt32(64.8), 64);
  EXPECT_EQ(CeilToInt64(9.3e18), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(SaturatingSum({std::numeric_limits<int64_t>::max(), 1}),
            std::numeric_limits<int64_t>::max());
}

}  // namespace
}  // namespace replica_calculator_test
}  // namespace kpiscale::hpa
