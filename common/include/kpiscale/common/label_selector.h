#pragma once

#include <functional>
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
  /// kEquals covers both `=` and `==`. kGreaterThan/kLessThan are the string grammar's `>`/`<`
  /// (one integer value; a label matches when it parses as an integer beyond it).
  enum class Op {
    kEquals,
    kNotEquals,
    kIn,
    kNotIn,
    kExists,
    kDoesNotExist,
    kGreaterThan,
    kLessThan
  };
  std::string key;
  Op op = Op::kEquals;
  std::vector<std::string> values;  // sorted, unique

  /// Whether `labels` satisfy this requirement. `!=` and `notin` match when the key is absent.
  bool Matches(const Labels& labels) const;
  /// Canonical form: `k=v`, `k!=v`, `k in (a,b)`, `k notin (a)`, `k`, `!k`, `k>1`, `k<1`.
  std::string ToString() const;
  bool operator==(const LabelRequirement& other) const {
    return key == other.key && op == other.op && values == other.values;
  }
};

/// A Kubernetes label selector (apimachinery pkg/labels): the string grammar
/// (`=`, `==`, `!=`, `in`, `notin`, `key`, `!key`, `>`, `<`; comma = AND; whitespace between
/// tokens ignored) and the metav1.LabelSelector object (matchLabels, matchExpressions with
/// In/NotIn/Exists/DoesNotExist). Keys (optional DNS-subdomain prefix ≤253 + `/` + name ≤63,
/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`) and values (≤63, same alphabet, or empty) are
/// validated as Kubernetes validates them. As upstream: `k=` means value "", `k in ()` means
/// the value set {""}, duplicate keys keep every requirement (all must hold). An empty selector
/// matches everything.
/// Thread-safety: immutable after construction; const methods may be called concurrently.
class LabelSelector {
 public:
  /// The empty selector (matches everything).
  LabelSelector() = default;

  /// Parses the string form (as found, URL-decoded, in `labelSelector=`). Errors are
  /// InvalidArgument and name the 0-based byte position:
  /// `invalid label selector "a=b,": found end of string, expected: identifier after ',' at
  /// position 4`; requirement errors read "unable to parse requirement: … at position N".
  static absl::StatusOr<LabelSelector> Parse(std::string_view text);
  /// The metav1.LabelSelector object form: {"matchLabels": {k: v}, "matchExpressions":
  /// [{"key", "operator", "values"}]}. null and {} select everything; unknown fields, other
  /// operators, values given to Exists/DoesNotExist, and In/NotIn without values are errors
  /// that name the field path (e.g. `matchExpressions[1].values[0]`).
  static absl::StatusOr<LabelSelector> FromJson(const nlohmann::json& object);
  static absl::StatusOr<LabelSelector> FromYaml(const YAML::Node& object);

  /// Everything matches.
  static LabelSelector Everything();

  bool Matches(const Labels& labels) const;
  bool empty() const { return requirements_.empty(); }
  /// Sorted by key (stable, so duplicate keys keep their input order).
  const std::vector<LabelRequirement>& requirements() const { return requirements_; }
  /// Canonical string form (requirements sorted by key, as apimachinery prints them); Parse of
  /// it gives an equal selector.
  std::string ToString() const;

  bool operator==(const LabelSelector& other) const { return requirements_ == other.requirements_; }

 private:
  explicit LabelSelector(std::vector<LabelRequirement> requirements);

  std::vector<LabelRequirement> requirements_;
};

}  // namespace kpiscale::common
