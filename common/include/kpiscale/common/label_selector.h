#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json_fwd.hpp"

namespace YAML {
class Node;
}

namespace kpiscale::common {

using Labels = std::map<std::string, std::string, std::less<>>;

/// One requirement of a selector: `key op values`.
struct LabelRequirement {
  enum class Op { kEquals, kNotEquals, kIn, kNotIn, kExists, kDoesNotExist };
  std::string key;
  Op op = Op::kEquals;
  std::vector<std::string> values;  // sorted, unique
};

/// A Kubernetes label selector (apimachinery pkg/labels): the string grammar
/// (`=`, `==`, `!=`, `in`, `notin`, `key`, `!key`, comma = AND) and the LabelSelector object
/// (matchLabels, matchExpressions with In/NotIn/Exists/DoesNotExist). Keys and values are
/// validated as Kubernetes validates them. An empty selector matches everything.
/// Thread-safety: immutable after construction.
class LabelSelector {
 public:
  /// Parses the string form (as found, URL-decoded, in `labelSelector=`). Errors name the
  /// position: "unable to parse requirement: … at position N".
  static absl::StatusOr<LabelSelector> Parse(std::string_view text);
  /// The metav1.LabelSelector object form.
  static absl::StatusOr<LabelSelector> FromJson(const nlohmann::json& object);
  static absl::StatusOr<LabelSelector> FromYaml(const YAML::Node& object);

  /// Everything matches.
  static LabelSelector Everything();

  bool Matches(const Labels& labels) const;
  bool empty() const { return requirements_.empty(); }
  const std::vector<LabelRequirement>& requirements() const { return requirements_; }
  /// Canonical string form (requirements sorted by key, as apimachinery prints them).
  std::string ToString() const;

 private:
  std::vector<LabelRequirement> requirements_;
};

}  // namespace kpiscale::common
