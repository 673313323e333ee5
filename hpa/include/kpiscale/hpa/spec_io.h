#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "kpiscale/hpa/types.h"
#include "nlohmann/json.hpp"

namespace kpiscale::hpa {

/// A Kubernetes quantity ("500m", "15", "1Gi") in milli-units, rounded up as MilliValue() does.
/// A JSON/YAML number is accepted as its decimal text.
absl::StatusOr<int64_t> QuantityMilli(const nlohmann::json& value);
/// A quantity converted to the nearest double (per-HPA tolerance).
absl::StatusOr<double> QuantityDouble(const nlohmann::json& value);

/// Parses an autoscaling/v2 HorizontalPodAutoscalerSpec in JSON form (the `hpa` object of the
/// conformance cases, or a manifest's `spec`). Unknown metric types are kept (they are invalid
/// at reconcile time, as upstream). No defaulting is applied.
absl::StatusOr<HpaSpec> HpaSpecFromJson(const nlohmann::json& spec);

/// Parses scaling rules (`behavior.scaleUp`/`scaleDown`) in JSON form; null fields stay unset.
absl::StatusOr<ScalingRules> ScalingRulesFromJson(const nlohmann::json& rules);
/// Scaling rules back to JSON (for comparisons and output).
nlohmann::json ScalingRulesToJson(const ScalingRules& rules);

/// Loads a HorizontalPodAutoscaler (autoscaling/v2) from a YAML manifest (the first document of
/// that kind), applies API defaulting that the API server does for the spec (minReplicas 1, a
/// Resource cpu 80% metric when none is given) and validates behavior.
absl::StatusOr<HpaSpec> LoadHpaManifest(const std::string& path);
/// Same, from YAML text.
absl::StatusOr<HpaSpec> ParseHpaManifest(const std::string& yaml_text);

/// One YAML document → JSON with Kubernetes-like scalar typing (ints, bools, null, strings);
/// null when the text is not valid YAML or has no such document.
nlohmann::json YamlTextToJson(const std::string& yaml_text, int document_index);

}  // namespace kpiscale::hpa
