#include "kpiscale/common/quantity.h"

#include <charconv>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "kpiscale/common/absl_compat.h"
#include "kpiscale/common/text.h"
#include "nlohmann/json.hpp"

namespace kpiscale::common {
namespace {

using u128 = __uint128_t;
using i128 = __int128_t;

// Debian's Abseil has its own string_view type.
constexpr int kMaxNanoDigits = 38;  // |nano| < 10^38, i.e. |value| < 10^29.
constexpr int64_t kNanoPerUnit = 1000000000;
constexpr int64_t kNanoPerMilli = 1000000;
// Exponents beyond this only matter for zero (or give out-of-range / 1n); saturating keeps the
// digit arithmetic bounded.
constexpr int64_t kExponentSaturation = 1000000;

constexpr u128 Pow10(int n) {
  u128 r = 1;
  for (int i = 0; i < n; ++i) r *= 10;
  return r;
}
constexpr u128 kNanoLimit = Pow10(kMaxNanoDigits);  // exclusive
constexpr u128 kBinaryCapNano = u128{static_cast<uint64_t>(std::numeric_limits<int64_t>::max())} *
                                static_cast<u128>(kNanoPerUnit);

// Shows the input in error messages: quoted, non-printables escaped, long inputs cut.
std::string QuoteQuantityText(std::string_view text) { return QuoteForMessage(text, 64); }

std::string CharName(char c) {
  std::string quoted = QuoteQuantityText(std::string_view(&c, 1));
  quoted.front() = '\'';
  quoted.back() = '\'';
  return quoted;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

std::string U128ToString(u128 v) {
  if (v == 0) return "0";
  char buf[48];
  int pos = 48;
  while (v != 0) {
    buf[--pos] = static_cast<char>('0' + static_cast<int>(v % 10));
    v /= 10;
  }
  return std::string(buf + pos, buf + 48);
}

// Multiplies a decimal digit string (most significant first) by a small factor, in place.
void MultiplyDigits(std::string& digits, unsigned factor) {
  unsigned carry = 0;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    const unsigned d = static_cast<unsigned>(*it - '0') * factor + carry;
    *it = static_cast<char>('0' + d % 10);
    carry = d / 10;
  }
  while (carry != 0) {
    digits.insert(digits.begin(), static_cast<char>('0' + carry % 10));
    carry /= 10;
  }
}

// Converts digits × 10^exp10 × 1024^binary_power to nano-units, rounding the magnitude up.
// Returns false when the magnitude is 10^38 nano or more.
bool DigitsToNano(std::string digits, int64_t exp10, int binary_power, u128* nano) {
  for (int i = 0; i < binary_power; ++i) MultiplyDigits(digits, 1024);
  const std::size_t first = digits.find_first_not_of('0');
  if (first == std::string::npos) {
    *nano = 0;
    return true;
  }
  digits.erase(0, first);
  const int64_t shift = exp10 + 9;  // nano = digits × 10^shift
  const auto len = static_cast<int64_t>(digits.size());
  u128 whole = 0;
  bool sticky = false;
  int64_t whole_len = len;
  if (shift < 0) {
    const int64_t cut = -shift;
    whole_len = cut >= len ? 0 : len - cut;
    for (int64_t i = whole_len; i < len; ++i) {
      if (digits[static_cast<std::size_t>(i)] != '0') {
        sticky = true;
        break;
      }
    }
  }
  const int64_t total_digits = whole_len + (shift > 0 ? shift : 0);
  if (total_digits > kMaxNanoDigits) return false;
  for (int64_t i = 0; i < whole_len; ++i) {
    whole = whole * 10 + static_cast<u128>(digits[static_cast<std::size_t>(i)] - '0');
  }
  for (int64_t i = 0; i < shift; ++i) whole *= 10;
  if (sticky) ++whole;
  if (whole >= kNanoLimit) return false;
  *nano = whole;
  return true;
}

struct Scaled {
  bool negative = false;
  std::string digits;  // integer and fraction digits together
  int64_t exp10 = 0;   // decimal exponent applied to `digits`
  int binary_power = 0;
  Quantity::Format format = Quantity::Format::kDecimalSI;
};

absl::Status OutOfRange(std::string_view text) {
  return absl::OutOfRangeError(
      absl::StrCat("quantity ", QuoteQuantityText(text), ": magnitude must be below 1e29"));
}

// Applies apimachinery's rounding (up to nano, away from zero), BinarySI cap and BinarySI-below-1
// rule. `what` names the input for errors.
absl::StatusOr<std::pair<i128, Quantity::Format>> BuildValue(const Scaled& s,
                                                             std::string_view what) {
  u128 magnitude = 0;
  if (!DigitsToNano(s.digits, s.exp10, s.binary_power, &magnitude)) {
    if (s.format != Quantity::Format::kBinarySI) return OutOfRange(what);
    magnitude = kBinaryCapNano;
  }
  Quantity::Format format = s.format;
  if (format == Quantity::Format::kBinarySI) {
    if (magnitude > kBinaryCapNano) magnitude = kBinaryCapNano;
    if (magnitude > 0 && magnitude < static_cast<u128>(kNanoPerUnit)) {
      format = Quantity::Format::kDecimalSI;
    }
  }
  const auto value = static_cast<i128>(magnitude);
  return std::make_pair(s.negative ? -value : value, format);
}

}  // namespace

absl::StatusOr<Quantity> Quantity::Parse(std::string_view text) {
  if (text.empty()) return absl::InvalidArgumentError("quantity \"\": empty string");
  const auto error = [&](std::size_t pos, std::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("quantity ", QuoteQuantityText(text), ": ",
                                                   AbslView(what), " at position ", pos));
  };
  Scaled s;
  std::size_t pos = 0;
  if (text[0] == '-' || text[0] == '+') {
    s.negative = text[0] == '-';
    ++pos;
  }
  const std::size_t int_start = pos;
  while (pos < text.size() && IsDigit(text[pos])) ++pos;
  s.digits.assign(text.substr(int_start, pos - int_start));
  std::size_t frac_len = 0;
  if (pos < text.size() && text[pos] == '.') {
    const std::size_t frac_start = ++pos;
    while (pos < text.size() && IsDigit(text[pos])) ++pos;
    frac_len = pos - frac_start;
    s.digits.append(text.substr(frac_start, frac_len));
  }
  if (s.digits.empty()) {
    if (pos < text.size()) {
      return error(pos, absl::StrCat("expected a digit, found ", CharName(text[pos])));
    }
    return error(pos, "expected a digit, found the end");
  }
  const std::size_t suffix_pos = pos;
  const std::string_view suffix = text.substr(pos);
  int64_t exp10 = 0;
  if (suffix.empty()) {
    // No suffix: plain units, DecimalSI.
  } else if (suffix.size() == 1 &&
             std::string_view("numkMGTPE").find(suffix[0]) != std::string_view::npos) {
    switch (suffix[0]) {
      case 'n':
        exp10 = -9;
        break;
      case 'u':
        exp10 = -6;
        break;
      case 'm':
        exp10 = -3;
        break;
      case 'k':
        exp10 = 3;
        break;
      case 'M':
        exp10 = 6;
        break;
      case 'G':
        exp10 = 9;
        break;
      case 'T':
        exp10 = 12;
        break;
      case 'P':
        exp10 = 15;
        break;
      default:
        exp10 = 18;
        break;
    }
  } else if (suffix.size() == 2 && suffix[1] == 'i' &&
             std::string_view("KMGTPE").find(suffix[0]) != std::string_view::npos) {
    s.binary_power = static_cast<int>(std::string_view("KMGTPE").find(suffix[0])) + 1;
    s.format = Format::kBinarySI;
  } else if (suffix[0] == 'e' || suffix[0] == 'E') {
    std::size_t p = 1;
    bool exp_negative = false;
    if (p < suffix.size() && (suffix[p] == '-' || suffix[p] == '+')) {
      exp_negative = suffix[p] == '-';
      ++p;
    }
    if (p == suffix.size()) return error(suffix_pos + p, "exponent without digits");
    for (; p < suffix.size(); ++p) {
      if (!IsDigit(suffix[p])) {
        return error(suffix_pos + p,
                     absl::StrCat("unexpected ", CharName(suffix[p]), " in exponent"));
      }
      if (exp10 < kExponentSaturation) exp10 = exp10 * 10 + (suffix[p] - '0');
    }
    if (exp_negative) exp10 = -exp10;
    s.format = Format::kDecimalExponent;
  } else if (std::string_view("eEinumkKMGTP").find(suffix[0]) == std::string_view::npos) {
    return error(suffix_pos, absl::StrCat("unexpected ", CharName(suffix[0]),
                                          " (expected a digit, '.', or a suffix)"));
  } else {
    return error(suffix_pos,
                 absl::StrCat("unknown suffix ", QuoteQuantityText(suffix),
                              " (expected one of n u m k M G T P E Ki Mi Gi Ti Pi Ei or e<int>)"));
  }
  s.exp10 = exp10 - static_cast<int64_t>(frac_len);
  auto built = BuildValue(s, text);
  if (!built.ok()) return built.status();
  return Quantity(built->first, built->second);
}

absl::StatusOr<Quantity> Quantity::ParseJson(std::string_view raw_json) {
  const auto trim = [](std::string_view v) {
    const auto is_space = [](char c) {
      return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
    };
    while (!v.empty() && is_space(v.front())) v.remove_prefix(1);
    while (!v.empty() && is_space(v.back())) v.remove_suffix(1);
    return v;
  };
  std::string_view v = trim(raw_json);
  if (v == "null") return Quantity();
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  return Parse(trim(v));
}

absl::StatusOr<Quantity> Quantity::FromJson(const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::null:
      return Quantity();
    case nlohmann::json::value_t::string:
      return ParseJson(absl::StrCat("\"", value.get_ref<const std::string&>(), "\""));
    case nlohmann::json::value_t::number_integer:
      return FromInt(value.get<int64_t>());
    case nlohmann::json::value_t::number_unsigned:
      return Parse(std::to_string(value.get<uint64_t>()));
    case nlohmann::json::value_t::number_float: {
      const double d = value.get<double>();
      if (!std::isfinite(d)) return absl::InvalidArgumentError("quantity: non-finite number");
      char buf[64];
      const auto res = std::to_chars(buf, buf + sizeof(buf), d);
      return Parse(std::string_view(buf, static_cast<std::size_t>(res.ptr - buf)));
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("quantity: expected a string or a number, got ", value.type_name()));
  }
}

Quantity Quantity::FromNano(int64_t nano) { return Quantity(nano, Format::kDecimalSI); }

Quantity Quantity::FromMilli(int64_t milli) {
  return Quantity(static_cast<i128>(milli) * kNanoPerMilli, Format::kDecimalSI);
}

Quantity Quantity::FromInt(int64_t value) {
  return Quantity(static_cast<i128>(value) * kNanoPerUnit, Format::kDecimalSI);
}

absl::StatusOr<Quantity> Quantity::FromMantissa(int64_t mantissa, int32_t exponent10,
                                                Format format) {
  Scaled s;
  s.negative = mantissa < 0;
  const u128 magnitude =
      s.negative ? static_cast<u128>(-static_cast<i128>(mantissa)) : static_cast<u128>(mantissa);
  s.digits = U128ToString(magnitude);
  s.exp10 = exponent10;
  s.format = format;
  auto built = BuildValue(s, absl::StrCat(mantissa, "e", exponent10));
  if (!built.ok()) return built.status();
  return Quantity(built->first, built->second);
}

Quantity Quantity::FromRatio(uint64_t num, uint64_t den) {
  if (den == 0) return Quantity();
  const u128 scaled = static_cast<u128>(num) * static_cast<u128>(kNanoPerUnit);
  u128 q = scaled / den;
  if (scaled % den != 0) ++q;
  return Quantity(static_cast<i128>(q), Format::kDecimalSI);
}

Quantity Quantity::MaxMetric() { return FromMilli(std::numeric_limits<int64_t>::max()); }

Quantity Quantity::FromDouble(double value) {
  if (std::isnan(value) || !(value > 0)) return Quantity();
  const Quantity max = MaxMetric();
  // 1e16 is well above MaxMetric (≈9.22e15), so the exact check below decides the rest.
  if (std::isinf(value) || value >= 1e16) return max;
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof(buf), value);
  auto parsed = Parse(std::string_view(buf, static_cast<std::size_t>(res.ptr - buf)));
  if (!parsed.ok()) return max;  // unreachable: to_chars output is always in the grammar
  if (parsed->nano_ > max.nano_) return max;
  return Quantity(parsed->nano_, Format::kDecimalSI);
}

std::string Quantity::ToString() const {
  if (nano_ == 0) return "0";
  u128 magnitude = nano_ < 0 ? static_cast<u128>(-nano_) : static_cast<u128>(nano_);
  std::string out = nano_ < 0 ? "-" : "";
  Format format = format_;
  if (format == Format::kBinarySI) {
    if (magnitude < static_cast<u128>(1024) * kNanoPerUnit || magnitude % kNanoPerUnit != 0) {
      format = Format::kDecimalSI;
    } else {
      u128 v = magnitude / kNanoPerUnit;
      int power = 0;
      while (power < 6 && v % 1024 == 0) {
        v /= 1024;
        ++power;
      }
      static constexpr const char* kBinary[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
      return out + U128ToString(v) + kBinary[power];
    }
  }
  int exponent = -9;
  while (magnitude % 1000 == 0 && (format == Format::kDecimalExponent || exponent < 18)) {
    magnitude /= 1000;
    exponent += 3;
  }
  out += U128ToString(magnitude);
  if (format == Format::kDecimalExponent) {
    if (exponent != 0) absl::StrAppend(&out, "e", exponent);
    return out;
  }
  static constexpr const char* kDecimal[] = {"n", "u", "m", "", "k", "M", "G", "T", "P", "E"};
  return out + kDecimal[(exponent + 9) / 3];
}

namespace {
int64_t ScaleAwayFromZero(i128 nano, int64_t divisor) {
  const u128 magnitude = nano < 0 ? static_cast<u128>(-nano) : static_cast<u128>(nano);
  u128 q = magnitude / static_cast<u128>(divisor);
  if (magnitude % static_cast<u128>(divisor) != 0) ++q;
  constexpr auto kMax = static_cast<u128>(std::numeric_limits<int64_t>::max());
  if (nano < 0) {
    return q > kMax ? std::numeric_limits<int64_t>::min() : -static_cast<int64_t>(q);
  }
  return q > kMax ? std::numeric_limits<int64_t>::max() : static_cast<int64_t>(q);
}
}  // namespace

int64_t Quantity::MilliValue() const { return ScaleAwayFromZero(nano_, kNanoPerMilli); }

int64_t Quantity::Value() const { return ScaleAwayFromZero(nano_, kNanoPerUnit); }

double Quantity::ToDouble() const {
  // Split so that both halves convert exactly-ish and the division is done once.
  const i128 units = nano_ / kNanoPerUnit;
  const i128 rest = nano_ % kNanoPerUnit;
  return static_cast<double>(units) + static_cast<double>(rest) / 1e9;
}

int Quantity::Compare(const Quantity& other) const {
  if (nano_ < other.nano_) return -1;
  return nano_ > other.nano_ ? 1 : 0;
}

std::string FormatMetricQuantity(double value) { return Quantity::FromDouble(value).ToString(); }

}  // namespace kpiscale::common
