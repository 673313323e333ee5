#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace kpiscale::common {

/// A Kubernetes resource.Quantity (apimachinery pkg/api/resource), held as an exact decimal
/// value = unscaled × 10^scale, with the format (DecimalSI, BinarySI, DecimalExponent) it was
/// parsed with. Formatting is canonical as kube-apiserver prints it.
class Quantity {
 public:
  enum class Format { kDecimalSI, kBinarySI, kDecimalExponent };

  /// Parses the whole grammar: sign, digits, fraction, suffixes (n u m "" k M G T P E,
  /// Ki Mi Gi Ti Pi Ei, e/E exponents). Errors say what is wrong and where.
  static absl::StatusOr<Quantity> Parse(std::string_view text);

  /// Exact nano-units (value × 10^9), DecimalSI.
  static Quantity FromNano(int64_t nano);
  static Quantity FromMilli(int64_t milli);
  static Quantity FromInt(int64_t value);

  /// num / den rounded up to the next nano-unit, DecimalSI. den == 0 is clamped to 0.
  static Quantity FromRatio(uint64_t num, uint64_t den);

  /// A double rounded up to the next nano-unit. NaN, negative values and -Inf clamp to 0,
  /// +Inf and values beyond int64 nano clamp to the largest representable quantity.
  static Quantity FromDouble(double value);

  /// Canonical string, e.g. "150m", "1500m", "123400u", "2k", "1Gi".
  std::string ToString() const;

  /// The value in milli-units, rounded up (ceil), as Quantity.MilliValue() does.
  int64_t MilliValue() const;
  /// The value rounded up to an integer, as Quantity.Value() does.
  int64_t Value() const;
  double ToDouble() const;

  Format format() const { return format_; }
  int Compare(const Quantity& other) const;
  bool operator==(const Quantity& other) const { return Compare(other) == 0; }

 private:
  Quantity() = default;
  // Implementation is free to choose its representation (e.g. int128 unscaled + scale).
  __int128 unscaled_ = 0;
  int32_t scale_ = 0;
  Format format_ = Format::kDecimalSI;
};

/// The canonical quantity string the adapter writes for a metric value (FromDouble().ToString()).
std::string FormatMetricQuantity(double value);

}  // namespace kpiscale::common
