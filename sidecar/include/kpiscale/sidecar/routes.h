#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace kpiscale::sidecar {

/// Route templates for the Prometheus `route` label (never for the window report). One template
/// per line: `[METHOD ]/path/{param}/literal[/*]`; `{x}` matches one non-empty segment, a final
/// `*` matches the rest, the query string is ignored, `#` starts a comment. Everything unmatched
/// is "other", so the label stays bounded whatever the traffic (scanners included).
/// Thread-safety: immutable after construction.
class RouteTable {
 public:
  static constexpr std::size_t kMaxRoutes = 64;

  /// Only the "other" route.
  RouteTable() : names_{"other"} {}
  static absl::StatusOr<RouteTable> Parse(std::string_view text);
  static absl::StatusOr<RouteTable> Load(const std::string& path);

  /// Number of label values, "other" included (it is the last).
  std::size_t size() const { return names_.size(); }
  const std::vector<std::string>& names() const { return names_; }
  /// Index of the first matching template, or size() - 1 ("other").
  std::size_t Match(std::string_view method, std::string_view target) const;

 private:
  struct Route {
    std::string method;  // empty: any
    std::vector<std::string> segments;
    bool prefix = false;  // ends in "*"
  };
  std::vector<Route> routes_;
  std::vector<std::string> names_;
};

}  // namespace kpiscale::sidecar
