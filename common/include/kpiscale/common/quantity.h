#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json_fwd.hpp"

namespace kpiscale::common {

/// A Kubernetes resource.Quantity (apimachinery pkg/api/resource), held as an exact signed count
/// of nano-units (value × 10^9) in 128-bit integers, plus the format (DecimalSI, BinarySI,
/// DecimalExponent) it was parsed with. No floating point is used to parse or print.
///
/// Precision is nano: finer inputs are rounded up, away from zero, as apimachinery does
/// (`0.5e-9` → `1n`, `-0.5e-9` → `-1n`). Range: |value| < 10^29 (apimachinery accepts
/// arbitrarily large decimals; such inputs are rejected here with OutOfRange). BinarySI
/// magnitudes above 2^63−1 are capped to 2^63−1 (`9Ei`), as upstream does.
///
/// Formatting is canonical as kube-apiserver prints it: `0.15`→`150m`, `1.5`→`1500m`,
/// `0.1234`→`123400u`, `2000`→`2k`, `307200Ki`→`300Mi`, `1e3`→`1e3`.
///
/// Thread-safety: a value type; const methods may be called concurrently.
class Quantity {
 public:
  enum class Format { kDecimalSI, kBinarySI, kDecimalExponent };

  /// The zero quantity, "0", DecimalSI.
  Quantity() = default;

  /// Parses the whole grammar: sign, digits, fraction, suffixes (n u m "" k M G T P E,
  /// Ki Mi Gi Ti Pi Ei, e/E exponents). Errors (InvalidArgument, or OutOfRange for values
  /// of 10^29 and more) say what is wrong and at which byte position.
  /// Stricter than upstream in one respect: a number needs at least one digit ("-", "." fail).
  static absl::StatusOr<Quantity> Parse(std::string_view text);

  /// Decodes a Quantity as apimachinery's UnmarshalJSON does, from the raw JSON text of the
  /// value: `null` is zero; surrounding quotes are removed; surrounding whitespace is trimmed;
  /// so both `"1"` (string) and `1` (bare number) are accepted.
  static absl::StatusOr<Quantity> ParseJson(std::string_view raw_json);
  /// The same from a parsed JSON value: a string, an integer, a float (its shortest
  /// round-trip text is parsed exactly) or null.
  static absl::StatusOr<Quantity> FromJson(const nlohmann::json& value);

  /// Exact nano-units (value × 10^9), DecimalSI.
  static Quantity FromNano(int64_t nano);
  static Quantity FromMilli(int64_t milli);
  static Quantity FromInt(int64_t value);
  /// mantissa × 10^exponent10 held in `format`, with the same rounding and BinarySI rules as
  /// Parse (e.g. FromMantissa(1080, -3, kDecimalSI) is 1.08). OutOfRange beyond |v| ≥ 10^29.
  static absl::StatusOr<Quantity> FromMantissa(int64_t mantissa, int32_t exponent10, Format format);

  /// num / den rounded up to the next nano-unit, DecimalSI. den == 0 is clamped to 0.
  static Quantity FromRatio(uint64_t num, uint64_t den);

  /// The largest value FromDouble produces: 9223372036854775807m, the largest value whose
  /// MilliValue() (what the HPA reads) still fits in int64.
  static Quantity MaxMetric();

  /// A double converted exactly from its shortest round-trip decimal digits (std::to_chars),
  /// rounded up to the next nano-unit, DecimalSI. Clamping (never NaN/Inf/negative in the
  /// output): NaN, -Inf and negative values (also -0.0) clamp to 0; +Inf and values above
  /// MaxMetric() clamp to MaxMetric(). Callers that must treat NaN as "no data" check first.
  static Quantity FromDouble(double value);

  /// Canonical string, e.g. "150m", "1500m", "123400u", "2k", "1Gi", "80e-3".
  std::string ToString() const;

  /// The value in milli-units, rounded away from zero (so ceil for positive values), as
  /// Quantity.MilliValue() does; clamped to the int64 range instead of overflowing.
  int64_t MilliValue() const;
  /// The value rounded away from zero to an integer, as Quantity.Value() does; clamped to int64.
  int64_t Value() const;
  /// Nearest double (for display and arithmetic in the HPA engine, never for output).
  double ToDouble() const;

  /// The exact value in nano-units.
  __int128_t nano() const { return nano_; }
  bool IsZero() const { return nano_ == 0; }
  int Sign() const { return nano_ > 0 ? 1 : (nano_ < 0 ? -1 : 0); }

  Format format() const { return format_; }
  /// Compares values (the format is ignored): -1, 0 or 1.
  int Compare(const Quantity& other) const;
  bool operator==(const Quantity& other) const { return Compare(other) == 0; }
  bool operator!=(const Quantity& other) const { return Compare(other) != 0; }
  bool operator<(const Quantity& other) const { return Compare(other) < 0; }

 private:
  Quantity(__int128_t nano, Format format) : nano_(nano), format_(format) {}

  __int128_t nano_ = 0;
  Format format_ = Format::kDecimalSI;
};

/// The canonical quantity string the adapter writes for a metric value (FromDouble().ToString()).
std::string FormatMetricQuantity(double value);

}  // namespace kpiscale::common
