#pragma once

// Debian 12 builds Abseil with its own string_view type (absl::string_view is not
// std::string_view there), so calls into absl::StrSplit, SimpleAtoi and friends need an explicit
// view conversion. One definition here instead of one per source file.

#include <string_view>

#include "absl/strings/string_view.h"

namespace kpiscale::common {

inline absl::string_view AbslView(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

}  // namespace kpiscale::common
