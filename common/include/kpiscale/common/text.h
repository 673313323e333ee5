#pragma once

// Small text helpers shared by the parsers in common/ (quantities, label selectors, reports).

#include <cstddef>
#include <string>
#include <string_view>

namespace kpiscale::common {

/// Quotes untrusted input for an error message: `"` and `\` escaped, other bytes outside
/// printable ASCII as \xNN, and cut after `max_shown` bytes with the full length noted, so a
/// hostile 1 MiB value never becomes a 1 MiB log line.
std::string QuoteForMessage(std::string_view text, std::size_t max_shown);

constexpr bool IsAsciiAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

constexpr bool IsLowerAsciiAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

}  // namespace kpiscale::common
