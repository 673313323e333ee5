// Fuzz target for Quantity::Parse / ParseJson / FromDouble. Properties checked on every input:
// no crash; a parsed quantity's ToString parses back to an equal quantity (and prints the same
// for the decimal formats); FromDouble never yields a negative value or one above MaxMetric().
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "kpiscale/common/quantity.h"

namespace {

void Check(bool ok, const char* what, std::string_view input) {
  if (ok) return;
  std::fprintf(stderr, "quantity fuzz: %s for input \"%.*s\"\n", what,
               static_cast<int>(input.size()), input.data());
  std::abort();
}

void CheckRoundTrip(const kpiscale::common::Quantity& q, std::string_view input) {
  using kpiscale::common::Quantity;
  const std::string printed = q.ToString();
  const auto back = Quantity::Parse(printed);
  Check(back.ok(), "canonical string does not parse", input);
  Check(*back == q, "canonical string parses to a different value", input);
  if (q.format() != Quantity::Format::kBinarySI) {
    Check(back->ToString() == printed, "printing is not idempotent", input);
  }
  const int64_t milli = q.MilliValue();
  Check((milli > 0) == (q.Sign() > 0) && (milli < 0) == (q.Sign() < 0), "MilliValue sign", input);
  static_cast<void>(q.Value());
  static_cast<void>(q.ToDouble());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using kpiscale::common::Quantity;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  if (const auto q = Quantity::Parse(input); q.ok()) CheckRoundTrip(*q, input);
  if (const auto q = Quantity::ParseJson(input); q.ok()) CheckRoundTrip(*q, input);
  if (size >= sizeof(double)) {
    double d = 0;
    std::memcpy(&d, data, sizeof(d));
    const Quantity q = Quantity::FromDouble(d);
    Check(q.Sign() >= 0, "FromDouble is negative", input);
    Check(!(Quantity::MaxMetric() < q), "FromDouble above MaxMetric", input);
    CheckRoundTrip(q, input);
  }
  if (size >= 16) {
    uint64_t num = 0;
    uint64_t den = 0;
    std::memcpy(&num, data, 8);
    std::memcpy(&den, data + 8, 8);
    CheckRoundTrip(Quantity::FromRatio(num, den), input);
  }
  return 0;
}
