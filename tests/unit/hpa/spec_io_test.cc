#include "kpiscale/hpa/spec_io.h"

#include "gtest/gtest.h"

namespace kpiscale::hpa {
namespace {

constexpr char kManifest[] = R"(
apiVersion: v1
kind: ConfigMap
metadata: {name: unrelated}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: web
  namespace: shop
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  maxReplicas: 10
  metrics:
    - type: Pods
      pods:
        metric:
          name: http_requests_per_second
          selector: {matchLabels: {route: checkout}}
        target: {type: AverageValue, averageValue: 500m}
    - type: Object
      object:
        describedObject: {apiVersion: apps/v1, kind: Deployment, name: web}
        metric: {name: http_slo_violations_ratio}
        target: {type: Value, value: "10m"}
    - type: External
      external:
        metric: {name: queue_depth}
        target: {type: AverageValue, averageValue: 1Ki}
  behavior:
    scaleUp:
      tolerance: "0.05"
      policies: [{type: Pods, value: 2, periodSeconds: 30}]
)";

TEST(SpecIo, ParsesManifestAndAppliesApiDefaults) {
  absl::StatusOr<HpaSpec> spec = ParseHpaManifest(kManifest);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name, "web");
  EXPECT_EQ(spec->namespace_name, "shop");
  EXPECT_EQ(*spec->min_replicas, 1);
  ASSERT_EQ(spec->metrics.size(), 3u);
  EXPECT_EQ(spec->metrics[0].target.average_value_milli, 500);
  EXPECT_EQ(spec->metrics[0].selector, "route=checkout");
  EXPECT_EQ(spec->metrics[1].target.value_milli, 10);
  EXPECT_EQ(spec->metrics[1].described_object.kind, "Deployment");
  EXPECT_EQ(spec->metrics[2].target.average_value_milli, 1024000);
  ASSERT_TRUE(spec->behavior.has_value());
  EXPECT_DOUBLE_EQ(*spec->behavior->scale_up->tolerance, 0.05);
  EXPECT_FALSE(spec->behavior->scale_down.has_value());
}

TEST(SpecIo, DefaultMetricIsCpu80) {
  absl::StatusOr<HpaSpec> spec = ParseHpaManifest(
      "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: x}\n"
      "spec: {maxReplicas: 3}\n");
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ(spec->metrics.size(), 1u);
  EXPECT_EQ(spec->metrics[0].name, "cpu");
  EXPECT_EQ(*spec->metrics[0].target.average_utilization, 80);
}

TEST(SpecIo, RejectsBadInputWithClearErrors) {
  EXPECT_EQ(ParseHpaManifest("kind: Deployment\n").status().code(), absl::StatusCode::kNotFound);
  auto bad_policy = ParseHpaManifest(
      "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nspec:\n  maxReplicas: 3\n"
      "  behavior: {scaleDown: {policies: [{type: Percent, value: 0, periodSeconds: 60}]}}\n");
  ASSERT_FALSE(bad_policy.ok());
  EXPECT_NE(bad_policy.status().message().find("value"), std::string::npos);
  auto bad_quantity = ParseHpaManifest(
      "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nspec:\n  maxReplicas: 3\n"
      "  metrics: [{type: Pods, pods: {metric: {name: q}, target: {type: AverageValue, "
      "averageValue: 12xyz}}}]\n");
  ASSERT_FALSE(bad_quantity.ok());
  EXPECT_NE(bad_quantity.status().message().find("12xyz"), std::string::npos);
  EXPECT_FALSE(ParseHpaManifest("{{{").ok());
  EXPECT_FALSE(ParseHpaManifest("apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\n"
                                "spec: {maxReplicas: 3}\n")
                   .ok());
}

TEST(SpecIo, QuantitiesRoundUpToMilli) {
  EXPECT_EQ(*QuantityMilli(nlohmann::json("15")), 15000);
  EXPECT_EQ(*QuantityMilli(nlohmann::json("6666m")), 6666);
  EXPECT_EQ(*QuantityMilli(nlohmann::json(2)), 2000);
  EXPECT_EQ(*QuantityMilli(nlohmann::json("1n")), 1);  // rounds up to the next milli
  EXPECT_DOUBLE_EQ(*QuantityDouble(nlohmann::json("0.01")), 0.01);
  EXPECT_FALSE(QuantityMilli(nlohmann::json::array()).ok());
}

}  // namespace
}  // namespace kpiscale::hpa

namespace kpiscale::hpa {
namespace {

TEST(SpecIo, WrongJsonTypesAreErrorsNotExceptions) {
  EXPECT_FALSE(ParseHpaManifest("apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\n"
                                "metadata: {name: [1]}\nspec: {maxReplicas: 3}\n")
                   .ok());
  EXPECT_FALSE(
      HpaSpecFromJson(nlohmann::json::parse(R"({"maxReplicas": 3, "metrics": [{"type": 7}]})"))
          .ok());
  EXPECT_FALSE(ScalingRulesFromJson(nlohmann::json::parse(R"({"policies": [{"type": 1}]})")).ok());
}

}  // namespace
}  // namespace kpiscale::hpa

namespace kpiscale::hpa {
namespace {

TEST(SpecIo, InvalidUtf8IsRejectedBeforeYamlParsing) {
  // A fuzz-found input on which yaml-cpp 0.7 allocates without bound.
  const std::string input =
      ",ime,cpu\n0,100m,,10M\x8a"
      "30,200m,900m,2M\xff";
  absl::StatusOr<HpaSpec> spec = ParseHpaManifest(input);
  ASSERT_FALSE(spec.ok());
  EXPECT_NE(spec.status().message().find("invalid UTF-8 at byte"), std::string::npos);
  EXPECT_TRUE(ParseHpaManifest("apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\n"
                               "metadata: {name: \"caf\xc3\xa9\"}\nspec: {maxReplicas: 3}\n")
                  .ok());
}

}  // namespace
}  // namespace kpiscale::hpa

namespace kpiscale::hpa {
namespace {

TEST(SpecIo, InputThatMakesYamlLoadAllLoopIsAnError) {
  // yaml-cpp 0.7's LoadAll never returns on this (found by the fuzz replay).
  EXPECT_FALSE(ParseHpaManifest(",cpu,cpu@web-1\n0.100m,,10\n30,200m,900m,20\n").ok());
}

TEST(SpecIo, DocumentMarkersSplitTheStream) {
  auto spec = ParseHpaManifest(
      "kind: ConfigMap\n--- # the HPA\napiVersion: autoscaling/v2\n"
      "kind: HorizontalPodAutoscaler\nspec: {maxReplicas: 4}\n...\n");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->max_replicas, 4);
}

}  // namespace
}  // namespace kpiscale::hpa
