#include "kpiscale/hpa/simulator.h"

#include "gtest/gtest.h"
#include "kpiscale/hpa/spec_io.h"

namespace kpiscale::hpa {
namespace {

constexpr char kHpa[] = R"(
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 8
  metrics:
    - type: Pods
      pods:
        metric: {name: http_requests_per_second}
        target: {type: AverageValue, averageValue: "50"}
)";

HpaSpec Spec() {
  absl::StatusOr<HpaSpec> s = ParseHpaManifest(kHpa);
  EXPECT_TRUE(s.ok()) << s.status();
  return *s;
}

TEST(Trace, ParsesLoadModelHeaderAndRejectsBadRows) {
  absl::StatusOr<Trace> t = ParseTrace(
      "# a comment: with a colon\n# capacity_per_replica: 120\n# cpu_request: 250m\n"
      "time,demand\n0,10\n60,100\n");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->kind, Trace::Kind::kLoad);
  EXPECT_DOUBLE_EQ(t->model.capacity_per_replica, 120);
  EXPECT_EQ(t->model.cpu_request_milli, 250);
  EXPECT_FALSE(ParseTrace("time,demand\n0,1\n0,2\n").ok());  // times must increase
  EXPECT_FALSE(ParseTrace("time,demand\n0,-1\n").ok());      // negative demand
  EXPECT_FALSE(ParseTrace("time,demand\n0,1,2\n").ok());     // cell count
  EXPECT_FALSE(ParseTrace("# bogus_key: 1\ntime,demand\n0,1\n").ok());
  EXPECT_FALSE(ParseTrace("").ok());
}

TEST(Trace, MetricsTraceKeepsEmptyCellsAsUnknown) {
  absl::StatusOr<Trace> t = ParseTrace("time,cpu,cpu@web-1\n0,100m,\n30,200m,900m\n");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->kind, Trace::Kind::kMetrics);
  EXPECT_EQ(t->columns.at("cpu")[1], 200);
  EXPECT_FALSE(t->columns.at("cpu@web-1")[0].has_value());
}

TEST(Simulate, TicksWithDriftAndScalesUpWithStartupDelays) {
  absl::StatusOr<Trace> t = ParseTrace(
      "# startup_delay_s: 20\n# readiness_delay_s: 10\ntime,demand\n0,100\n59,100\n60,400\n"
      "300,400\n");
  ASSERT_TRUE(t.ok());
  SimulationOptions opt;
  absl::StatusOr<std::vector<TimelineRow>> rows = Simulate(Spec(), *t, opt);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_GE(rows->size(), 3u);
  EXPECT_DOUBLE_EQ((*rows)[1].time_s, 15.05);
  EXPECT_DOUBLE_EQ((*rows)[2].time_s, 30.1);
  EXPECT_EQ((*rows)[0].spec_replicas, 2);
  EXPECT_EQ((*rows)[0].desired_replicas, 2);  // 50 req/s per pod: on target
  // After the step to 400 req/s (200 per pod, capped at the 100 req/s capacity) the HPA
  // scales up, and new pods are Pending before they are ready.
  int32_t max_desired = 0;
  bool saw_pending = false;
  for (const TimelineRow& r : *rows) {
    max_desired = std::max(max_desired, r.desired_replicas);
    saw_pending = saw_pending || r.pending_replicas > 0;
    EXPECT_LE(r.desired_replicas, 8);
    EXPECT_GE(r.desired_replicas, 2);
  }
  EXPECT_EQ(max_desired, 8);
  EXPECT_TRUE(saw_pending);
  EXPECT_EQ(rows->back().ready_replicas, 8);
  // Deterministic: the same input gives the same timeline.
  EXPECT_EQ(TimelineToCsv(*rows), TimelineToCsv(*Simulate(Spec(), *t, opt)));
}

TEST(Simulate, UnknownValueIsAnInvalidMetricNotZero) {
  absl::StatusOr<Trace> t = ParseTrace("time,http_requests_per_second\n0,\n100,\n");
  ASSERT_TRUE(t.ok());
  absl::StatusOr<std::vector<TimelineRow>> rows = Simulate(Spec(), *t, SimulationOptions{});
  ASSERT_TRUE(rows.ok());
  for (const TimelineRow& r : *rows) {
    EXPECT_EQ(r.desired_replicas, 2);
    EXPECT_EQ(r.active_reason, "FailedGetPodsMetric");
    EXPECT_FALSE(r.metrics[0].value.has_value());
  }
}

TEST(Simulate, OutputsCsvJsonAndSvg) {
  absl::StatusOr<Trace> t = ParseTrace("time,demand\n0,100\n60,100\n");
  ASSERT_TRUE(t.ok());
  auto rows = Simulate(Spec(), *t, SimulationOptions{});
  ASSERT_TRUE(rows.ok());
  const std::string csv = TimelineToCsv(*rows);
  EXPECT_EQ(csv.rfind("time_s,demand,spec_replicas,desired_replicas", 0), 0u);
  EXPECT_NE(csv.find("pods/http_requests_per_second_target"), std::string::npos);
  const nlohmann::json j = TimelineToJson(*rows);
  ASSERT_TRUE(j.is_array());
  EXPECT_EQ(j[0]["metrics"][0]["target"], 50.0);
  const std::string svg = TimelineToSvg(Spec(), *rows);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("pods/http_requests_per_second"), std::string::npos);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
}

}  // namespace
}  // namespace kpiscale::hpa
