#pragma once

#include <string>
#include <string_view>

#include "absl/strings/string_view.h"
#include "kpiscale/common/label_selector.h"

namespace kpiscale::adapter::internal {

/// Debian's Abseil has its own string_view type; this bridges it to std::string_view.
inline std::string_view Sv(absl::string_view s) { return std::string_view(s.data(), s.size()); }

/// Appends s as a JSON string literal (quotes included).
void AppendJsonString(std::string* out, std::string_view s);

/// Appends a map of labels as a JSON object, or `null` when empty and null_if_empty.
void AppendLabelsObject(std::string* out, const common::Labels& labels, bool null_if_empty);

/// Appends a selector as a metav1.LabelSelector object ({"matchLabels":…,"matchExpressions":…},
/// both omitempty), or `null` when the selector is empty.
void AppendSelectorObject(std::string* out, const common::LabelSelector& selector);

/// A metav1.Status body (kubernetes-metrics-api.md §6), reason omitted when empty.
std::string StatusBody(int code, std::string_view reason, std::string_view message);

}  // namespace kpiscale::adapter::internal
