#include "kpiscale/common/quantity.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace kpiscale::common {
// A namespace of its own: in unity builds several test files share one translation unit.
namespace quantity_test {
namespace {

using ::testing::HasSubstr;
using Format = Quantity::Format;

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

std::vector<std::string> SplitTabs(const std::string& line) {
  std::vector<std::string> cols;
  std::stringstream ss(line);
  std::string col;
  while (std::getline(ss, col, '\t')) cols.push_back(col);
  if (!line.empty() && line.back() == '\t') cols.emplace_back();
  return cols;
}

std::string Unquote(const std::string& s) {
  if (s.size() >= 2 && s.front() == '\'' && s.back() == '\'') return s.substr(1, s.size() - 2);
  return s;
}

// Evaluates the vector file's mantissa expressions: "8*1024", ".5*1024*1024", "MAX(2^63-1)".
__int128_t EvalMantissa(const std::string& expr) {
  if (expr == "MAX(2^63-1)") return kInt64Max;
  __int128_t num = 1;
  __int128_t den = 1;
  std::stringstream ss(expr);
  std::string factor;
  while (std::getline(ss, factor, '*')) {
    const std::size_t dot = factor.find('.');
    std::string digits = factor;
    if (dot != std::string::npos) {
      digits.erase(dot, 1);
      for (std::size_t i = dot; i < factor.size() - 1; ++i) den *= 10;
    }
    __int128_t v = 0;
    for (char c : digits) {
      EXPECT_TRUE(c >= '0' && c <= '9') << expr;
      v = v * 10 + (c - '0');
    }
    num *= v;
  }
  EXPECT_EQ(num % den, 0) << expr;
  return num / den;
}

Format ParseFormat(const std::string& name) {
  if (name == "BinarySI") return Format::kBinarySI;
  if (name == "DecimalExponent") return Format::kDecimalExponent;
  EXPECT_EQ(name, "DecimalSI");
  return Format::kDecimalSI;
}

std::string ToString128(__int128_t v) {
  if (v == 0) return "0";
  const bool negative = v < 0;
  std::string out;
  while (v != 0) {
    const int digit = static_cast<int>(v % 10);
    out.insert(out.begin(), static_cast<char>('0' + (negative ? -digit : digit)));
    v /= 10;
  }
  return negative ? "-" + out : out;
}

Quantity MustParse(const std::string& text) {
  auto q = Quantity::Parse(text);
  EXPECT_TRUE(q.ok()) << text << ": " << q.status();
  return q.ok() ? *q : Quantity();
}

// Every vector of the shared reference file, section by section.
TEST(QuantityVectorsTest, EveryVectorInTheReferenceFile) {
  const std::string path = KPISCALE_SHARED_DIR "/reference/quantity-vectors.tsv";
  std::ifstream in(path);
  ASSERT_TRUE(in.is_open()) << path;
  char section = 0;
  std::map<char, int> checked;
  std::string line;
  // Our own FromDouble results for Section F's inputs (the file lists other adapters' output).
  const std::map<std::string, std::string> our_float_output = {
      {"20.5", "20500m"}, {"0.0004", "400u"}, {"NaN", "0"}};
  while (std::getline(in, line)) {
    if (line.rfind("# Section ", 0) == 0) {
      section = line[10];
      continue;
    }
    if (line.empty() || line[0] == '#') continue;
    const std::vector<std::string> c = SplitTabs(line);
    SCOPED_TRACE("section " + std::string(1, section) + ": " + line);
    switch (section) {
      case 'A': {
        ASSERT_EQ(c.size(), 4u);
        const Quantity q = MustParse(c[0]);
        __int128_t want = EvalMantissa(c[1]);
        const int exp = std::stoi(c[2]);
        ASSERT_GE(exp, -9);
        for (int i = 0; i < exp + 9; ++i) want *= 10;
        EXPECT_EQ(ToString128(q.nano()), ToString128(want));
        EXPECT_EQ(q.format(), ParseFormat(c[3]));
        // Round trip: the canonical string parses back to the same value.
        EXPECT_EQ(MustParse(q.ToString()), q) << q.ToString();
        break;
      }
      case 'B': {
        ASSERT_EQ(c.size(), 2u);
        ASSERT_EQ(c[0], "INVALID");
        const auto q = Quantity::Parse(Unquote(c[1]));
        EXPECT_FALSE(q.ok()) << q->ToString();
        EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument);
        EXPECT_THAT(std::string(q.status().message()), HasSubstr("at position"));
        break;
      }
      case 'C': {
        ASSERT_GE(c.size(), 4u);
        const __int128_t mantissa = EvalMantissa(c[0]);
        ASSERT_LE(mantissa, kInt64Max);
        const auto q = Quantity::FromMantissa(static_cast<int64_t>(mantissa), std::stoi(c[1]),
                                              ParseFormat(c[2]));
        ASSERT_TRUE(q.ok()) << q.status();
        EXPECT_EQ(q->ToString(), c[3]);
        if (c.size() > 4 && !c[4].empty()) {
          EXPECT_EQ(MustParse(c[4]).ToString(), c[3]);
        }
        break;
      }
      case 'D': {
        ASSERT_EQ(c.size(), 2u);
        EXPECT_EQ(MustParse(c[0]).ToString(), c[1]);
        EXPECT_EQ(MustParse("-" + c[0]).ToString(), "-" + c[1]);
        break;
      }
      case 'E': {
        ASSERT_EQ(c.size(), 2u);
        const auto q = Quantity::ParseJson(Unquote(c[0]));
        ASSERT_TRUE(q.ok()) << q.status();
        EXPECT_EQ(q->ToString(), c[1]);
        // The same raw text through a JSON parser and FromJson.
        const auto parsed = Quantity::FromJson(nlohmann::json::parse(Unquote(c[0])));
        ASSERT_TRUE(parsed.ok()) << parsed.status();
        EXPECT_EQ(parsed->ToString(), c[1]);
        break;
      }
      case 'F': {
        ASSERT_EQ(c.size(), 4u);
        const int64_t hpa = std::stoll(c[3]);
        // What the HPA reads from the other adapters' strings.
        EXPECT_EQ(MustParse(c[1]).MilliValue(), hpa);
        EXPECT_EQ(MustParse(c[2]).MilliValue(), hpa);
        // Ours: exact, rounded up; never reads lower than theirs.
        const double in_value = c[0] == "NaN" ? std::nan("") : std::stod(c[0]);
        const Quantity ours = Quantity::FromDouble(in_value);
        ASSERT_EQ(our_float_output.count(c[0]), 1u) << "add the expected output for " << c[0];
        EXPECT_EQ(ours.ToString(), our_float_output.at(c[0]));
        EXPECT_GE(ours.MilliValue(), hpa);
        break;
      }
      default:
        FAIL() << "vector outside a known section";
    }
    ++checked[section];
  }
  // Guards against a silently mis-read file.
  EXPECT_EQ(checked['A'], 48);
  EXPECT_EQ(checked['B'], 6);
  EXPECT_EQ(checked['C'], 21);
  EXPECT_EQ(checked['D'], 4);
  EXPECT_EQ(checked['E'], 4);
  EXPECT_EQ(checked['F'], 3);
}

TEST(QuantityFormatTest, CanonicalExamplesFromTheIssue) {
  EXPECT_EQ(MustParse("0.15").ToString(), "150m");
  EXPECT_EQ(MustParse("1.5").ToString(), "1500m");
  EXPECT_EQ(MustParse("0.1234").ToString(), "123400u");
  EXPECT_EQ(MustParse("2000").ToString(), "2k");
  EXPECT_EQ(Quantity::FromDouble(0.15).ToString(), "150m");
  EXPECT_EQ(Quantity::FromDouble(1.5).ToString(), "1500m");
  EXPECT_EQ(Quantity::FromDouble(0.1234).ToString(), "123400u");
  EXPECT_EQ(Quantity::FromDouble(2000).ToString(), "2k");
}

TEST(QuantityFormatTest, DecimalSuffixesStopAtExa) {
  EXPECT_EQ(MustParse("1000E").ToString(), "1000E");
  EXPECT_EQ(MustParse("1e21").ToString(), "1e21");  // DecimalExponent has no such limit
  EXPECT_EQ(MustParse("1000P").ToString(), "1E");
  EXPECT_EQ(MustParse("1000000000n").ToString(), "1");
  EXPECT_EQ(MustParse("0").ToString(), "0");
  EXPECT_EQ(MustParse("-0").ToString(), "0");
  EXPECT_EQ(MustParse("0e5").ToString(), "0");
  EXPECT_EQ(MustParse("1.000").ToString(), "1");
  EXPECT_EQ(MustParse("+12k").ToString(), "12k");
  EXPECT_EQ(MustParse("0012").ToString(), "12");
}

TEST(QuantityFormatTest, BinaryKeptBinaryOnlyWhenExact) {
  EXPECT_EQ(MustParse("1024").ToString(), "1024");
  EXPECT_EQ(MustParse("1Ki").ToString(), "1Ki");
  EXPECT_EQ(MustParse("1.5Ki").ToString(), "1536");
  EXPECT_EQ(MustParse("1.5Gi").ToString(), "1536Mi");
  EXPECT_EQ(MustParse("1023Ki").ToString(), "1023Ki");
  EXPECT_EQ(MustParse("0.5Ki").ToString(), "512");
  EXPECT_EQ(MustParse("1Ei").ToString(), "1Ei");
  EXPECT_EQ(MustParse("8Ei").ToString(), "9223372036854775807");  // capped at 2^63-1
  EXPECT_EQ(MustParse("-8Ei").ToString(), "-9223372036854775807");
  EXPECT_EQ(MustParse("0.1Ki").format(), Format::kBinarySI);
  EXPECT_EQ(MustParse("0.0001Ki").format(), Format::kDecimalSI);  // below 1 becomes DecimalSI
  EXPECT_EQ(MustParse("100000000000000000000000000000000000000000000Ki").ToString(),
            "9223372036854775807");
}

TEST(QuantityParseTest, RoundsUpToNanoAwayFromZero) {
  EXPECT_EQ(MustParse("0.5e-9").ToString(), "1e-9");
  EXPECT_EQ(MustParse("0.0000000005").ToString(), "1n");
  EXPECT_EQ(MustParse("-0.0000000005").ToString(), "-1n");
  EXPECT_EQ(MustParse("1.0000000001").ToString(), "1000000001n");
  EXPECT_EQ(MustParse("1.00000000000000000000000000000000000000000000000001").ToString(),
            "1000000001n");
  EXPECT_EQ(MustParse("1.000000000000000000000000000000000000000000000000000").ToString(), "1");
  EXPECT_EQ(MustParse("1e-1000000000000").ToString(), "1e-9");
  EXPECT_EQ(MustParse("123456789123456789123456789.123456789").ToString(),
            "123456789123456789123456789123456789n");
}

TEST(QuantityParseTest, ErrorsNameWhatAndWhere) {
  const auto expect_error = [](const std::string& text, const std::string& what) {
    const auto q = Quantity::Parse(text);
    ASSERT_FALSE(q.ok()) << text;
    EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(std::string(q.status().message()), HasSubstr(what)) << text;
  };
  expect_error("", "empty");
  expect_error("1.1.M", "unexpected '.' (expected a digit, '.', or a suffix) at position 3");
  expect_error("0.1mi", "unknown suffix \"mi\"");
  expect_error("0.1mi", "at position 3");
  expect_error("1 ", "unexpected ' '");
  expect_error(" 1", "expected a digit, found ' ' at position 0");
  expect_error("-3.01e-", "exponent without digits at position 7");
  expect_error("1e3x", "unexpected 'x' in exponent at position 3");
  expect_error("-", "expected a digit, found the end at position 1");
  expect_error(".", "expected a digit");
  expect_error("1K", "unknown suffix \"K\"");
  expect_error("1\x01", "\\x01");
  expect_error("1e", "exponent without digits at position 2");
}

TEST(QuantityParseTest, HugeValuesAreOutOfRangeNotWrapped) {
  const auto big = Quantity::Parse("1e29");
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_FALSE(Quantity::Parse("100000000000000000000000000000").ok());
  EXPECT_FALSE(Quantity::Parse("1e1000000000000000").ok());
  const Quantity just_below = MustParse("99999999999999999999999999999.999999999");
  EXPECT_EQ(just_below.ToString(), "99999999999999999999999999999999999999n");
  EXPECT_EQ(MustParse(just_below.ToString()), just_below);
  EXPECT_FALSE(Quantity::Parse("99999999999999999999999999999.9999999991").ok());
  EXPECT_EQ(just_below.MilliValue(), kInt64Max);
  EXPECT_EQ(MustParse("-1e28").MilliValue(), std::numeric_limits<int64_t>::min());
}

TEST(QuantityValueTest, MilliValueAndValueRoundAwayFromZero) {
  EXPECT_EQ(MustParse("1.5").MilliValue(), 1500);
  EXPECT_EQ(MustParse("1.5").Value(), 2);
  EXPECT_EQ(MustParse("1n").MilliValue(), 1);
  EXPECT_EQ(MustParse("1n").Value(), 1);
  EXPECT_EQ(MustParse("-1n").MilliValue(), -1);
  EXPECT_EQ(MustParse("1000001n").MilliValue(), 2);
  EXPECT_EQ(MustParse("1m").MilliValue(), 1);
  EXPECT_EQ(MustParse("0").MilliValue(), 0);
  EXPECT_EQ(MustParse("2k").Value(), 2000);
  EXPECT_EQ(MustParse("9223372036854775807").Value(), kInt64Max);
  EXPECT_EQ(MustParse("9223372036854775807").MilliValue(), kInt64Max);  // clamped
  EXPECT_DOUBLE_EQ(MustParse("1500m").ToDouble(), 1.5);
  EXPECT_DOUBLE_EQ(MustParse("-2.25").ToDouble(), -2.25);
}

TEST(QuantityFactoryTest, IntegerFactoriesAreExactDecimalSI) {
  EXPECT_EQ(Quantity::FromNano(150000000).ToString(), "150m");
  EXPECT_EQ(Quantity::FromNano(-5).ToString(), "-5n");
  EXPECT_EQ(Quantity::FromMilli(1500).ToString(), "1500m");
  EXPECT_EQ(Quantity::FromMilli(kInt64Max).ToString(), "9223372036854775807m");
  EXPECT_EQ(Quantity::FromInt(2000).ToString(), "2k");
  EXPECT_EQ(Quantity::FromInt(std::numeric_limits<int64_t>::min()).ToString(),
            "-9223372036854775808");
  EXPECT_EQ(Quantity().ToString(), "0");
  EXPECT_EQ(Quantity::FromInt(3).format(), Format::kDecimalSI);
}

TEST(QuantityFactoryTest, FromRatioIsExactAndRoundsUp) {
  EXPECT_EQ(Quantity::FromRatio(1, 3).ToString(), "333333334n");
  EXPECT_EQ(Quantity::FromRatio(2, 3).ToString(), "666666667n");
  EXPECT_EQ(Quantity::FromRatio(3, 2).ToString(), "1500m");
  EXPECT_EQ(Quantity::FromRatio(10, 5).ToString(), "2");
  EXPECT_EQ(Quantity::FromRatio(0, 7).ToString(), "0");
  EXPECT_EQ(Quantity::FromRatio(7, 0).ToString(), "0");
  EXPECT_EQ(Quantity::FromRatio(UINT64_MAX, 1).ToString(), "18446744073709551615");
  EXPECT_EQ(Quantity::FromRatio(1, UINT64_MAX).ToString(), "1n");
}

TEST(QuantityFactoryTest, FromDoubleClampsAsDocumented) {
  EXPECT_EQ(Quantity::FromDouble(std::nan("")).ToString(), "0");
  EXPECT_EQ(Quantity::FromDouble(-1.5).ToString(), "0");
  EXPECT_EQ(Quantity::FromDouble(-0.0).ToString(), "0");
  EXPECT_EQ(Quantity::FromDouble(-std::numeric_limits<double>::infinity()).ToString(), "0");
  EXPECT_EQ(Quantity::FromDouble(std::numeric_limits<double>::infinity()), Quantity::MaxMetric());
  EXPECT_EQ(Quantity::FromDouble(1e300), Quantity::MaxMetric());
  EXPECT_EQ(Quantity::FromDouble(9.3e15), Quantity::MaxMetric());
  EXPECT_EQ(Quantity::MaxMetric().ToString(), "9223372036854775807m");
  EXPECT_EQ(Quantity::FromDouble(9.2e15).ToString(), "9200T");
  EXPECT_EQ(Quantity::FromDouble(0.0004).MilliValue(), 1);
  EXPECT_EQ(Quantity::FromDouble(0.0237).ToString(), "23700u");
  EXPECT_EQ(Quantity::FromDouble(5e-324).ToString(), "1n");  // denormal min rounds up
  EXPECT_EQ(Quantity::FromDouble(0.1).ToString(), "100m");   // shortest digits, not 0.1000…05
  EXPECT_EQ(Quantity::FromDouble(1e-10).ToString(), "1n");
  EXPECT_EQ(Quantity::FromDouble(123456.789).ToString(), "123456789m");
  EXPECT_EQ(FormatMetricQuantity(20.5), "20500m");
  EXPECT_EQ(Quantity::FromDouble(1e15).format(), Format::kDecimalSI);
}

TEST(QuantityCompareTest, OrdersByValueIgnoringFormat) {
  EXPECT_EQ(MustParse("1Ki"), MustParse("1024"));
  EXPECT_EQ(MustParse("1e3"), MustParse("1k"));
  EXPECT_LT(MustParse("999m"), MustParse("1"));
  EXPECT_LT(MustParse("-1"), MustParse("1n"));
  EXPECT_NE(MustParse("1n"), MustParse("0"));
  EXPECT_EQ(MustParse("1Mi").Compare(MustParse("1M")), 1);
  EXPECT_EQ(MustParse("1M").Compare(MustParse("1Mi")), -1);
  EXPECT_EQ(MustParse("-5").Sign(), -1);
  EXPECT_TRUE(MustParse("0Gi").IsZero());
}

TEST(QuantityJsonTest, AcceptsStringsNumbersAndNull) {
  EXPECT_EQ(Quantity::ParseJson("\"150m\"")->ToString(), "150m");
  EXPECT_EQ(Quantity::ParseJson("  \" 2k \"  ")->ToString(), "2k");
  EXPECT_EQ(Quantity::ParseJson("null")->ToString(), "0");
  EXPECT_EQ(Quantity::ParseJson("1.5")->ToString(), "1500m");
  EXPECT_FALSE(Quantity::ParseJson("\"abc\"").ok());
  EXPECT_FALSE(Quantity::ParseJson("").ok());
  EXPECT_EQ(Quantity::FromJson(nlohmann::json(0.25))->ToString(), "250m");
  EXPECT_EQ(Quantity::FromJson(nlohmann::json(UINT64_MAX))->ToString(), "18446744073709551615");
  EXPECT_EQ(Quantity::FromJson(nlohmann::json(-3))->ToString(), "-3");
  EXPECT_EQ(Quantity::FromJson(nlohmann::json("1Gi"))->ToString(), "1Gi");
  EXPECT_EQ(Quantity::FromJson(nlohmann::json(nullptr))->ToString(), "0");
  EXPECT_FALSE(Quantity::FromJson(nlohmann::json::array()).ok());
  EXPECT_FALSE(Quantity::FromJson(nlohmann::json(true)).ok());
}

// Round trip over a grid of mantissas, exponents and formats: ToString parses back to an equal
// quantity, and printing is idempotent.
TEST(QuantityRoundTripTest, CanonicalStringParsesBackEqual) {
  const int64_t mantissas[] = {1,         7,
                               10,        999,
                               1000,      1001,
                               1024,      1536,
                               123456789, -42,
                               -1024000,  1000000007,
                               kInt64Max, std::numeric_limits<int64_t>::min() + 1};
  int checked = 0;
  int refused = 0;
  for (int64_t m : mantissas) {
    for (int exp = -12; exp <= 12; ++exp) {
      for (Format f : {Format::kDecimalSI, Format::kBinarySI, Format::kDecimalExponent}) {
        const auto q = Quantity::FromMantissa(m, exp, f);
        if (!q.ok()) {
          // Only decimal values of 10^29 and more are refused (BinarySI is capped instead).
          EXPECT_EQ(q.status().code(), absl::StatusCode::kOutOfRange) << m << "e" << exp;
          EXPECT_NE(f, Format::kBinarySI);
          EXPECT_GE(exp, 29 - 19);
          ++refused;
          continue;
        }
        const std::string s = q->ToString();
        const Quantity back = MustParse(s);
        EXPECT_EQ(back, *q) << s;
        // A BinarySI value printed without a suffix ("1025") reads back as DecimalSI, so printing
        // is idempotent only for the decimal formats (as upstream).
        if (f != Format::kBinarySI) {
          EXPECT_EQ(back.ToString(), s);
        }
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked + refused, 14 * 25 * 3);
  EXPECT_GT(checked, 1000);
}

}  // namespace
}  // namespace quantity_test
}  // namespace kpiscale::common
