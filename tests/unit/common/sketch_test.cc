#include "kpiscale/common/sketch.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace kpiscale::common {
namespace {

using ::testing::HasSubstr;

constexpr double kQuantiles[] = {0.5, 0.9, 0.95, 0.99, 0.999};
// Boundary values may index one bucket off (one ULP), which can add a few ULPs of error.
constexpr double kUlpSlack = 1e-12;

// ---------------------------------------------------------------------------------------------
// Index semantics (measurement.md §3.2).

TEST(NativeBucketIndexTest, PinnedValuesForEverySchema) {
  for (int s = 0; s <= 8; ++s) {
    const int32_t n = int32_t{1} << s;
    EXPECT_EQ(NativeBucketIndex(1.0, s), 0) << "schema " << s;
    EXPECT_EQ(NativeBucketIndex(2.0, s), n) << "schema " << s;
    EXPECT_EQ(NativeBucketIndex(0.5, s), -n) << "schema " << s;
    EXPECT_EQ(NativeBucketIndex(4.0, s), 2 * n) << "schema " << s;
    EXPECT_EQ(NativeBucketIndex(std::nextafter(1.0, 2.0), s), 1) << "schema " << s;
    EXPECT_EQ(NativeBucketIndex(std::nextafter(1.0, 0.0), s), 0) << "schema " << s;
  }
}

TEST(NativeBucketIndexTest, NegativeSchemasGroupOctaves) {
  // Schema -1: buckets (4^(i-1), 4^i]; 0.25 = 4^-1 closes bucket -1.
  EXPECT_EQ(NativeBucketIndex(1.0, -1), 0);
  EXPECT_EQ(NativeBucketIndex(2.0, -1), 1);
  EXPECT_EQ(NativeBucketIndex(4.0, -1), 1);
  EXPECT_EQ(NativeBucketIndex(4.5, -1), 2);
  EXPECT_EQ(NativeBucketIndex(0.5, -1), 0);
  EXPECT_EQ(NativeBucketIndex(0.25, -1), -1);
  // Schema -4: factor 65536.
  EXPECT_EQ(NativeBucketIndex(65536.0, -4), 1);
  EXPECT_EQ(NativeBucketIndex(65537.0, -4), 2);
  EXPECT_EQ(NativeBucketIndex(1.0 / 65536, -4), -1);
}

TEST(NativeBucketIndexTest, SampledValuesLieInsideTheirBucket) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> exponent(-40.0, 40.0);
  for (int s = -4; s <= 8; ++s) {
    for (int k = 0; k < 20000; ++k) {
      const double v = std::exp2(exponent(rng));
      const int32_t i = NativeBucketIndex(v, s);
      const double upper = NativeBucketUpperBound(i, s);
      const double lower = NativeBucketUpperBound(i - 1, s);
      // Strictly (lower, upper], allowing one ULP at the boundaries.
      ASSERT_GT(v, std::nextafter(lower, 0.0)) << "schema " << s << " v " << v;
      ASSERT_LE(v, std::nextafter(upper, HUGE_VAL)) << "schema " << s << " v " << v;
      // And against the closed form 2^(i/2^s), within floating error.
      ASSERT_NEAR(upper / std::exp2(std::ldexp(static_cast<double>(i), -s)), 1.0, 1e-12);
    }
  }
}

TEST(NativeBucketIndexTest, UpperBoundsIndexBackToThemselves) {
  for (int s = -4; s <= 8; ++s) {
    const int32_t n = s >= 0 ? (int32_t{1} << s) : 1;
    for (int32_t i = -40 * n; i <= 40 * n; ++i) {
      ASSERT_EQ(NativeBucketIndex(NativeBucketUpperBound(i, s), s), i) << "schema " << s;
    }
  }
}

TEST(NativeBucketIndexTest, DenormalsAndExtremes) {
  const double tiny = std::numeric_limits<double>::denorm_min();
  const double big = std::numeric_limits<double>::max();
  for (int s = 0; s <= 8; ++s) {
    const int32_t n = int32_t{1} << s;
    EXPECT_EQ(NativeBucketIndex(tiny, s), -1074 * n) << s;
    EXPECT_EQ(NativeBucketIndex(big, s), 1024 * n) << s;
    const double d = std::ldexp(1.5, -1060);  // a denormal in the middle of an octave
    const int32_t i = NativeBucketIndex(d, s);
    EXPECT_EQ(i, NativeBucketIndex(1.5, s) - 1060 * n) << s;
  }
}

TEST(NativeBucketIndexTest, MeasurementReferenceBucketsFor200ms) {
  // measurement.md §3.1: the bucket holding 200 ms at schemas 3, 5 and 8.
  const struct {
    int schema;
    double lower, upper;
  } cases[] = {{3, 0.1928, 0.2102}, {5, 0.1970, 0.2013}, {8, 0.19968, 0.20022}};
  for (const auto& c : cases) {
    const int32_t i = NativeBucketIndex(0.2, c.schema);
    EXPECT_NEAR(NativeBucketUpperBound(i - 1, c.schema), c.lower, 5e-5) << c.schema;
    EXPECT_NEAR(NativeBucketUpperBound(i, c.schema), c.upper, 5e-5) << c.schema;
  }
}

TEST(NativeBucketIndexTest, OutOfContractArgumentsDoNotCrash) {
#ifdef NDEBUG
  // Release builds answer instead of asserting (debug builds abort on these).
  EXPECT_EQ(NativeBucketIndex(0.0, 5), std::numeric_limits<int32_t>::min());
  EXPECT_EQ(NativeBucketIndex(-1.0, 5), std::numeric_limits<int32_t>::min());
  EXPECT_EQ(NativeBucketIndex(std::nan(""), 5), std::numeric_limits<int32_t>::min());
  EXPECT_EQ(NativeBucketIndex(HUGE_VAL, 5), 1024 * 32);
  EXPECT_EQ(NativeBucketIndex(2.0, 42), 256);
  EXPECT_EQ(NativeBucketUpperBound(256, 42), 2.0);
#else
  EXPECT_DEATH(NativeBucketIndex(0.0, 5), "KPISCALE_CHECK");
  EXPECT_DEATH(NativeBucketUpperBound(1, 9), "KPISCALE_CHECK");
#endif
  EXPECT_EQ(NativeBucketUpperBound(std::numeric_limits<int32_t>::max(), 0), HUGE_VAL);
  EXPECT_EQ(NativeBucketUpperBound(std::numeric_limits<int32_t>::min(), -4), 0.0);
}

TEST(SketchRelativeErrorTest, StatedBounds) {
  EXPECT_NEAR(SketchRelativeError(5), 0.01083, 1e-5);
  EXPECT_LT(SketchRelativeError(5), 0.011);
  EXPECT_NEAR(SketchRelativeError(6), 0.005415, 1e-5);
  EXPECT_NEAR(SketchRelativeError(3), 0.04329, 1e-4);
}

// ---------------------------------------------------------------------------------------------
// Accuracy against exact sorted samples, 10^6 values per distribution, fixed seeds.

// Exact sample of 0-based rank floor(q * (n - 1)), the rank Quantile() estimates.
double Exact(const std::vector<double>& sorted, double q) {
  const auto rank = static_cast<std::size_t>(q * static_cast<double>(sorted.size() - 1));
  return sorted[rank];
}

// The exact samples at the ranks kQuantiles name, plus min and max, without a full sort:
// nth_element on shrinking suffixes (the ranks ascend), so 10^6 samples stay cheap under ASan.
struct ExactQuantiles {
  std::vector<double> at;  // parallel to kQuantiles
  double min = 0;
  double max = 0;
};

ExactQuantiles ComputeExact(std::vector<double> values) {
  ExactQuantiles out;
  const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
  out.min = *lo;
  out.max = *hi;
  auto from = values.begin();
  for (double q : kQuantiles) {
    const auto rank = static_cast<std::ptrdiff_t>(q * static_cast<double>(values.size() - 1));
    const auto nth = values.begin() + rank;
    std::nth_element(from, nth, values.end());
    out.at.push_back(*nth);
    from = nth;
  }
  return out;
}

void ExpectAccurate(const std::vector<double>& values, const std::vector<int>& schemas,
                    const std::string& name) {
  const ExactQuantiles exact = ComputeExact(values);
  for (int schema : schemas) {
    // A cap large enough never to downscale, so the schema's bound applies.
    LatencySketch sketch(schema, 100000);
    for (double v : values) {
      sketch.Add(v);
    }
    ASSERT_EQ(sketch.schema(), schema) << name << ": unexpected downscale";
    ASSERT_EQ(sketch.count(), values.size());
    const double bound = SketchRelativeError(schema) + kUlpSlack;
    for (std::size_t k = 0; k < std::size(kQuantiles); ++k) {
      const std::optional<double> est = sketch.Quantile(kQuantiles[k]);
      ASSERT_TRUE(est.has_value());
      EXPECT_LE(std::abs(*est - exact.at[k]) / exact.at[k], bound)
          << name << " schema " << schema << " q " << kQuantiles[k] << " exact " << exact.at[k]
          << " est " << *est;
    }
    EXPECT_EQ(*sketch.Quantile(0.0), exact.min) << name;
    EXPECT_EQ(*sketch.Quantile(1.0), exact.max) << name;
  }
}

constexpr std::size_t kSamples = 1000000;

TEST(SketchAccuracyTest, Uniform) {
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> d(0.001, 2.0);
  std::vector<double> v(kSamples);
  for (auto& x : v) {
    x = d(rng);
  }
  ExpectAccurate(v, {5}, "uniform");
}

TEST(SketchAccuracyTest, LogNormal) {
  std::mt19937_64 rng(2);
  std::lognormal_distribution<double> d(std::log(0.05), 1.0);
  std::vector<double> v(kSamples);
  for (auto& x : v) {
    x = d(rng);
  }
  ExpectAccurate(v, {5, 6}, "lognormal");
}

TEST(SketchAccuracyTest, Bimodal) {
  // A cache: 90% fast hits around 2 ms, 10% slow misses around 300 ms.
  std::mt19937_64 rng(3);
  std::normal_distribution<double> fast(0.002, 0.0003);
  std::normal_distribution<double> slow(0.3, 0.05);
  std::bernoulli_distribution is_slow(0.1);
  std::vector<double> v(kSamples);
  for (auto& x : v) {
    x = std::max(1e-6, is_slow(rng) ? slow(rng) : fast(rng));
  }
  ExpectAccurate(v, {5}, "bimodal");
}

TEST(SketchAccuracyTest, ParetoHeavyTail) {
  // Pareto with x_m = 1 ms and alpha = 1.1: p99.9 is around half a second, the max far beyond.
  std::mt19937_64 rng(4);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<double> v(kSamples);
  for (auto& x : v) {
    x = 0.001 / std::pow(1.0 - u(rng), 1.0 / 1.1);
  }
  ExpectAccurate(v, {5, 3}, "pareto");
}

TEST(SketchAccuracyTest, EverySchemaMeetsItsBound) {
  std::mt19937_64 rng(6);
  std::lognormal_distribution<double> d(std::log(0.05), 2.0);
  std::vector<double> v(20001);
  for (auto& x : v) x = d(rng);
  ExpectAccurate(v, {-4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8}, "lognormal wide");
}

TEST(SketchAccuracyTest, ConstantIsExact) {
  std::vector<double> v(kSamples, 0.123);
  ExpectAccurate(v, {5}, "constant");
  // Min/max clamping makes a constant exact at every quantile, whatever the bucket width.
  LatencySketch sketch(0);
  sketch.AddN(0.123, kSamples);
  for (double q : kQuantiles) {
    EXPECT_EQ(*sketch.Quantile(q), 0.123);
  }
}

// ---------------------------------------------------------------------------------------------
// Basics.

TEST(LatencySketchTest, EmptySketch) {
  LatencySketch sketch;
  EXPECT_TRUE(sketch.empty());
  EXPECT_EQ(sketch.count(), 0u);
  EXPECT_EQ(sketch.bucket_count(), 0u);
  EXPECT_FALSE(sketch.Quantile(0.5).has_value());
  EXPECT_FALSE(sketch.min().has_value());
  EXPECT_TRUE(sketch.Buckets().empty());
}

TEST(LatencySketchTest, SingleValue) {
  LatencySketch sketch;
  sketch.Add(0.25);
  EXPECT_EQ(sketch.count(), 1u);
  EXPECT_EQ(sketch.sum(), 0.25);
  EXPECT_EQ(sketch.bucket_count(), 1u);
  ASSERT_EQ(sketch.Buckets().size(), 1u);
  EXPECT_EQ(sketch.Buckets()[0].first, -64);  // 0.25 = 2^-2 → -2 * 32
  for (double q : {0.0, 0.5, 1.0}) {
    EXPECT_EQ(*sketch.Quantile(q), 0.25);
  }
}

TEST(LatencySketchTest, RejectsBadValues) {
  LatencySketch sketch;
  sketch.Add(std::nan(""));
  sketch.Add(-1.0);
  sketch.Add(std::numeric_limits<double>::infinity());
  sketch.Add(2 * kMaxSketchValue);
  sketch.AddN(0.1, 0);
  EXPECT_TRUE(sketch.empty());
  EXPECT_EQ(sketch.rejected(), 4u);
  sketch.Add(kMaxSketchValue);
  EXPECT_EQ(sketch.count(), 1u);
  EXPECT_FALSE(sketch.Quantile(std::nan("")).has_value());
}

TEST(LatencySketchTest, ZeroBucket) {
  LatencySketch sketch(5, 160, 1e-6);
  sketch.Add(0.0);
  sketch.Add(5e-7);
  sketch.Add(1e-6);  // at the threshold: zero bucket
  sketch.Add(0.01);
  EXPECT_EQ(sketch.zero_count(), 3u);
  EXPECT_EQ(sketch.bucket_count(), 1u);
  EXPECT_EQ(*sketch.Quantile(0.0), 0.0);
  EXPECT_EQ(*sketch.Quantile(0.5), 0.0);
  EXPECT_EQ(*sketch.Quantile(1.0), 0.01);
}

TEST(LatencySketchTest, AddNCountsAndSum) {
  LatencySketch a;
  LatencySketch b;
  a.AddN(0.5, 4);
  for (int k = 0; k < 4; ++k) {
    b.Add(0.5);
  }
  EXPECT_EQ(a.count(), 4u);
  EXPECT_EQ(a.sum(), 2.0);
  EXPECT_EQ(a.Buckets(), b.Buckets());
}

TEST(LatencySketchTest, ClearRestoresConfiguration) {
  LatencySketch sketch(5, 10);
  for (int k = 0; k < 1000; ++k) {
    sketch.Add(0.001 * (k + 1));
  }
  EXPECT_LT(sketch.schema(), 5);
  sketch.Clear();
  EXPECT_TRUE(sketch.empty());
  EXPECT_EQ(sketch.schema(), 5);
  EXPECT_EQ(sketch.bucket_count(), 0u);
  sketch.Add(1.0);
  EXPECT_EQ(sketch.Buckets()[0].first, 0);
}

TEST(LatencySketchTest, CountNeverPassesInt64Max) {
  LatencySketch sketch;
  const auto max = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  sketch.AddN(0.1, max - 1);
  sketch.AddN(0.2, 2);  // would pass INT64_MAX: refused
  EXPECT_EQ(sketch.count(), max - 1);
  EXPECT_EQ(sketch.rejected(), 2u);
  sketch.Add(0.2);
  EXPECT_EQ(sketch.count(), max);
  LatencySketch other;
  other.Add(0.3);
  sketch.Merge(other);
  EXPECT_EQ(sketch.count(), max);
  EXPECT_EQ(sketch.rejected(), 3u);
  kpiscale::v1::Sketch wire;
  sketch.ToProto(&wire);
  EXPECT_TRUE(LatencySketch::FromProto(wire).ok());
}

TEST(LatencySketchTest, QuantileLandsInTheBucketOfTheExactSample) {
  // Every rank, walked from either end, must pick the bucket that holds the exact sample.
  std::mt19937_64 rng(99);
  std::lognormal_distribution<double> d(std::log(0.02), 1.5);
  for (int round = 0; round < 20; ++round) {
    const int n = 1 + round * 37;
    std::vector<double> values(static_cast<std::size_t>(n));
    LatencySketch sketch(5, 4096);
    for (double& v : values) {
      v = d(rng);
      sketch.Add(v);
    }
    std::sort(values.begin(), values.end());
    for (int k = 0; k <= 200; ++k) {
      const double q = k / 200.0;
      const double exact = Exact(values, q);
      const double est = *sketch.Quantile(q);
      EXPECT_LE(std::abs(est - exact) / exact, SketchRelativeError(5) + kUlpSlack)
          << "n " << n << " q " << q;
    }
  }
}

TEST(LatencySketchTest, QuantileClampsQ) {
  LatencySketch sketch;
  for (double v : {0.1, 0.2, 0.3}) {
    sketch.Add(v);
  }
  EXPECT_EQ(sketch.Quantile(-1.0), sketch.Quantile(0.0));
  EXPECT_EQ(sketch.Quantile(7.0), sketch.Quantile(1.0));
  EXPECT_EQ(*sketch.Quantile(1.0), 0.3);
  EXPECT_EQ(*sketch.min(), 0.1);
  EXPECT_EQ(*sketch.max(), 0.3);
}

TEST(LatencySketchTest, SumAndCountAreExact) {
  LatencySketch sketch;
  double sum = 0;
  for (int k = 1; k <= 1000; ++k) {
    const double v = k / 1024.0;  // exact binary fractions: the running sum is exact too
    sketch.Add(v);
    sum += v;
  }
  EXPECT_EQ(sketch.count(), 1000u);
  EXPECT_EQ(sketch.sum(), sum);
}

TEST(LatencySketchTest, ConstructorClampsArguments) {
  LatencySketch a(12, 0, -1.0);
  EXPECT_EQ(a.schema(), 8);
  EXPECT_EQ(a.max_buckets(), 1u);
  EXPECT_EQ(a.zero_threshold(), 0.0);
  LatencySketch b(-9, 10, std::nan(""));
  EXPECT_EQ(b.schema(), -4);
  EXPECT_EQ(b.zero_threshold(), 0.0);
}

// ---------------------------------------------------------------------------------------------
// Bucket cap and downscaling.

TEST(LatencySketchTest, DownscalesUnderTheCapWithCeilIndexRule) {
  // 1 ms – 60 s at schema 5 spans ~508 buckets; a cap of 160 forces schema 3 (~127).
  LatencySketch capped(5, 160);
  LatencySketch full(5, 100000);
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> exponent(std::log2(0.001), std::log2(60.0));
  for (int k = 0; k < 100000; ++k) {
    const double v = std::exp2(exponent(rng));
    capped.Add(v);
    full.Add(v);
  }
  EXPECT_LE(capped.bucket_count(), 160u);
  EXPECT_EQ(capped.schema(), 3);
  EXPECT_EQ(full.schema(), 5);
  // Downscaling the uncapped buckets by hand with ((i - 1) >> 2) + 1 gives the same result.
  std::map<int32_t, uint64_t> expected;
  for (const auto& [i, c] : full.Buckets()) {
    expected[((i - 1) >> 2) + 1] += c;
  }
  const std::vector<std::pair<int32_t, uint64_t>> want(expected.begin(), expected.end());
  EXPECT_EQ(capped.Buckets(), want);
  EXPECT_EQ(capped.count(), full.count());
  // Accuracy now follows schema 3.
  for (double q : kQuantiles) {
    const double a = *capped.Quantile(q);
    const double b = *full.Quantile(q);
    EXPECT_LE(std::abs(a - b) / b, SketchRelativeError(3) + SketchRelativeError(5) + 1e-9);
  }
}

TEST(LatencySketchTest, DownscaleMovesBucketOneToOne) {
  // The Prometheus rule keeps bucket 1 at 1 (an OTel-style i >> k would move it to 0).
  LatencySketch sketch(2, 4);
  sketch.Add(1.1);  // bucket 1 at schema 2
  sketch.Add(2.0);  // bucket 4
  EXPECT_EQ(sketch.schema(), 2);
  sketch.Add(2.1);  // bucket 5 → range 1..5 > 4 → schema 1: 1→1, 4→2, 5→3
  EXPECT_EQ(sketch.schema(), 1);
  const std::vector<std::pair<int32_t, uint64_t>> want = {{1, 1}, {2, 1}, {3, 1}};
  EXPECT_EQ(sketch.Buckets(), want);
}

TEST(LatencySketchTest, CapCannotGoBelowSchemaMinus4) {
  LatencySketch sketch(0, 1, 0.0);
  sketch.Add(1e-300);
  sketch.Add(1e14);
  EXPECT_EQ(sketch.schema(), -4);
  EXPECT_EQ(sketch.bucket_count(), 2u);  // the cap of 1 cannot be met; nothing is lost
  EXPECT_EQ(sketch.count(), 2u);
  EXPECT_EQ(*sketch.Quantile(0.0), 1e-300);
}

TEST(LatencySketchTest, NegativeSchemaQuantileWithinItsBound) {
  LatencySketch sketch(-1, 100);
  std::vector<double> values;
  std::mt19937_64 rng(8);
  std::lognormal_distribution<double> d(0.0, 3.0);
  for (int k = 0; k < 10001; ++k) {
    values.push_back(d(rng));
    sketch.Add(values.back());
  }
  std::sort(values.begin(), values.end());
  for (double q : kQuantiles) {
    const double exact = Exact(values, q);
    EXPECT_LE(std::abs(*sketch.Quantile(q) - exact) / exact, SketchRelativeError(-1) + kUlpSlack);
  }
}

// ---------------------------------------------------------------------------------------------
// Merge.

LatencySketch Random(uint64_t seed, int schema, int n, double median) {
  std::mt19937_64 rng(seed);
  std::lognormal_distribution<double> d(std::log(median), 0.8);
  LatencySketch sketch(schema, 1000);
  for (int k = 0; k < n; ++k) {
    // Multiples of 2^-20 keep the double sum exact, so merge order cannot change it.
    sketch.Add(std::ldexp(std::ceil(std::ldexp(d(rng), 20)), -20));
  }
  return sketch;
}

void ExpectSame(const LatencySketch& a, const LatencySketch& b) {
  EXPECT_EQ(a.Buckets(), b.Buckets());
  EXPECT_EQ(a.count(), b.count());
  EXPECT_EQ(a.zero_count(), b.zero_count());
  EXPECT_EQ(a.schema(), b.schema());
  EXPECT_EQ(a.sum(), b.sum());
  EXPECT_EQ(a.min(), b.min());
  EXPECT_EQ(a.max(), b.max());
}

TEST(LatencySketchMergeTest, CommutativeAndAssociative) {
  const LatencySketch a = Random(11, 5, 5000, 0.01);
  const LatencySketch b = Random(12, 5, 7000, 0.05);
  const LatencySketch c = Random(13, 5, 3000, 0.2);
  LatencySketch ab = a;
  ab.Merge(b);
  LatencySketch ba = b;
  ba.Merge(a);
  ExpectSame(ab, ba);
  LatencySketch ab_c = ab;
  ab_c.Merge(c);
  LatencySketch bc = b;
  bc.Merge(c);
  LatencySketch a_bc = a;
  a_bc.Merge(bc);
  ExpectSame(ab_c, a_bc);
  EXPECT_EQ(ab_c.count(), 15000u);
}

TEST(LatencySketchMergeTest, AssociativeAndCommutativeUnderTheCap) {
  // Spreads far apart force cap-driven downscaling while merging; the result must still not
  // depend on the order.
  auto make = [](uint64_t seed, double median) {
    std::mt19937_64 rng(seed);
    std::lognormal_distribution<double> d(std::log(median), 0.5);
    LatencySketch s(6, 40);
    for (int k = 0; k < 2000; ++k) s.Add(std::ldexp(std::ceil(std::ldexp(d(rng), 30)), -30));
    return s;
  };
  const LatencySketch a = make(71, 0.002);
  const LatencySketch b = make(72, 0.1);
  const LatencySketch c = make(73, 5.0);
  LatencySketch ab_c = a;
  ab_c.Merge(b);
  ab_c.Merge(c);
  LatencySketch bc = b;
  bc.Merge(c);
  LatencySketch a_bc = a;
  a_bc.Merge(bc);
  LatencySketch ca = c;
  ca.Merge(a);
  LatencySketch ca_b = ca;
  ca_b.Merge(b);
  EXPECT_LT(ab_c.schema(), a.schema());
  EXPECT_LE(ab_c.bucket_count(), 40u);
  EXPECT_EQ(ab_c.Buckets(), a_bc.Buckets());
  EXPECT_EQ(ab_c.Buckets(), ca_b.Buckets());
  EXPECT_EQ(ab_c.schema(), a_bc.schema());
  EXPECT_EQ(ab_c.schema(), ca_b.schema());
  EXPECT_EQ(ab_c.count(), 6000u);
}

TEST(LatencySketchMergeTest, MergeEqualsAddingAllValues) {
  std::vector<double> values;
  std::mt19937_64 rng(5);
  std::lognormal_distribution<double> d(std::log(0.03), 1.2);
  LatencySketch parts[4];
  LatencySketch all(5, 1000);
  for (auto& p : parts) {
    p = LatencySketch(5, 1000);
  }
  for (int k = 0; k < 40000; ++k) {
    const double v = d(rng);
    parts[k % 4].Add(v);
    all.Add(v);
  }
  LatencySketch merged(5, 1000);
  for (const auto& p : parts) {
    merged.Merge(p);
  }
  EXPECT_EQ(merged.Buckets(), all.Buckets());
  EXPECT_EQ(merged.count(), all.count());
  for (double q : kQuantiles) {
    EXPECT_EQ(merged.Quantile(q), all.Quantile(q));
  }
}

TEST(LatencySketchMergeTest, AcrossSchemasDownscalesTheFinerOne) {
  const LatencySketch fine = Random(21, 6, 4000, 0.05);
  const LatencySketch coarse = Random(22, 3, 4000, 0.08);
  LatencySketch m1 = fine;
  m1.Merge(coarse);
  LatencySketch m2 = coarse;
  m2.Merge(fine);
  EXPECT_EQ(m1.schema(), 3);
  ExpectSame(m1, m2);
  // Same as adding every bucket of `fine` mapped down three steps.
  std::map<int32_t, uint64_t> expected;
  for (const auto& [i, c] : fine.Buckets()) {
    expected[((i - 1) >> 3) + 1] += c;
  }
  for (const auto& [i, c] : coarse.Buckets()) {
    expected[i] += c;
  }
  const std::vector<std::pair<int32_t, uint64_t>> want(expected.begin(), expected.end());
  EXPECT_EQ(m1.Buckets(), want);
}

TEST(LatencySketchMergeTest, SelfMergeDoublesEveryCount) {
  const LatencySketch a = Random(61, 5, 2000, 0.05);
  LatencySketch m = a;
  m.Merge(m);
  EXPECT_EQ(m.count(), 2 * a.count());
  std::vector<std::pair<int32_t, uint64_t>> doubled = a.Buckets();
  for (auto& [i, c] : doubled) {
    c *= 2;
  }
  EXPECT_EQ(m.Buckets(), doubled);
}

TEST(LatencySketchMergeTest, EmptyIsIdentity) {
  const LatencySketch a = Random(31, 5, 1000, 0.1);
  LatencySketch m = a;
  m.Merge(LatencySketch());
  ExpectSame(m, a);
  LatencySketch e(5, 1000);
  e.Merge(a);
  ExpectSame(e, a);
}

TEST(LatencySketchMergeTest, MergeBeyondTheCapDownscalesTheResult) {
  LatencySketch low(5, 64);
  LatencySketch high(5, 64);
  for (int k = 0; k < 100; ++k) {
    low.Add(0.001 * (1 + k / 100.0));
    high.Add(10.0 * (1 + k / 100.0));
  }
  EXPECT_EQ(low.schema(), 5);
  EXPECT_EQ(high.schema(), 5);
  LatencySketch m = low;
  m.Merge(high);
  // 1 ms .. 20 s is ~14.3 octaves: 64 buckets allow at most 4 per octave (schema 2).
  EXPECT_EQ(m.schema(), 2);
  EXPECT_LE(m.bucket_count(), 64u);
  EXPECT_EQ(m.count(), 200u);
  EXPECT_EQ(*m.Quantile(0.0), 0.001);
  EXPECT_EQ(*m.Quantile(1.0), high.max());
}

TEST(LatencySketchMergeTest, EmptyTargetAdoptsSchemaAndThreshold) {
  LatencySketch target(2, 1000, 1e-9);
  const LatencySketch fine = Random(51, 6, 1000, 0.05);
  target.Merge(fine);
  EXPECT_EQ(target.schema(), 6);
  EXPECT_EQ(target.Buckets(), fine.Buckets());
}

TEST(LatencySketchMergeTest, LargerZeroThresholdAbsorbsLowBuckets) {
  LatencySketch a(5, 1000, 1e-9);
  LatencySketch b(5, 1000, 1e-3);
  a.Add(1e-5);    // below b's threshold: joins the zero bucket
  a.Add(0.0005);  // below too
  a.Add(0.5);
  b.Add(0.0001);  // zero bucket in b
  b.Add(0.2);
  LatencySketch ab = a;
  ab.Merge(b);
  LatencySketch ba = b;
  ba.Merge(a);
  for (const LatencySketch* m : {&ab, &ba}) {
    EXPECT_EQ(m->zero_threshold(), 1e-3);
    EXPECT_EQ(m->zero_count(), 3u);
    EXPECT_EQ(m->bucket_count(), 2u);
    EXPECT_EQ(m->count(), 5u);
  }
  EXPECT_EQ(ab.Buckets(), ba.Buckets());
}

// ---------------------------------------------------------------------------------------------
// Wire format.

TEST(LatencySketchProtoTest, RoundTrip) {
  LatencySketch a = Random(41, 5, 10000, 0.05);
  a.Add(0.0);
  a.Add(1000.0);  // forces a gap and a second span
  kpiscale::v1::Sketch wire;
  a.ToProto(&wire);
  EXPECT_EQ(wire.schema(), 5);
  EXPECT_GE(wire.positive_spans_size(), 2);
  const absl::StatusOr<LatencySketch> b = LatencySketch::FromProto(wire);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->Buckets(), a.Buckets());
  EXPECT_EQ(b->count(), a.count());
  EXPECT_EQ(b->zero_count(), 1u);
  EXPECT_EQ(b->sum(), a.sum());
  EXPECT_EQ(b->schema(), a.schema());
  EXPECT_EQ(b->zero_threshold(), a.zero_threshold());
  for (double q : kQuantiles) {
    EXPECT_NEAR(*b->Quantile(q), *a.Quantile(q), *a.Quantile(q) * 1e-12);
  }
  kpiscale::v1::Sketch again;
  b->ToProto(&again);
  EXPECT_EQ(again.SerializeAsString(), wire.SerializeAsString());
}

TEST(LatencySketchProtoTest, SpanLayout) {
  LatencySketch a;
  a.AddN(1.0, 3);                  // bucket 0
  a.AddN(std::exp2(2.0 / 32), 5);  // bucket 2 (gap of one → inline)
  a.AddN(2.0, 1);                  // bucket 32 (big gap → new span)
  kpiscale::v1::Sketch wire;
  a.ToProto(&wire);
  ASSERT_EQ(wire.positive_spans_size(), 2);
  EXPECT_EQ(wire.positive_spans(0).offset(), 0);
  EXPECT_EQ(wire.positive_spans(0).length(), 3u);
  EXPECT_EQ(wire.positive_spans(1).offset(), 29);
  EXPECT_EQ(wire.positive_spans(1).length(), 1u);
  EXPECT_THAT(wire.positive_deltas(), ::testing::ElementsAre(3, -3, 5, -4));
}

kpiscale::v1::Sketch ValidWire() {
  kpiscale::v1::Sketch w;
  w.set_schema(5);
  w.set_zero_threshold(1e-9);
  w.set_zero_count(1);
  w.set_count(6);
  w.set_sum(1.0);
  auto* s = w.add_positive_spans();
  s->set_offset(-10);
  s->set_length(2);
  w.add_positive_deltas(2);
  w.add_positive_deltas(1);  // counts 2, 3
  return w;
}

void ExpectInvalid(const kpiscale::v1::Sketch& w, const std::string& fragment,
                   const SketchLimits& limits = SketchLimits{}) {
  const absl::StatusOr<LatencySketch> s = LatencySketch::FromProto(w, limits);
  ASSERT_FALSE(s.ok()) << w.DebugString();
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.status().message()), HasSubstr(fragment));
}

TEST(LatencySketchProtoTest, ValidWireIsAccepted) {
  const absl::StatusOr<LatencySketch> s = LatencySketch::FromProto(ValidWire());
  ASSERT_TRUE(s.ok()) << s.status();
  const std::vector<std::pair<int32_t, uint64_t>> want = {{-10, 2}, {-9, 3}};
  EXPECT_EQ(s->Buckets(), want);
  EXPECT_EQ(s->count(), 6u);
}

TEST(LatencySketchProtoTest, RejectsHostileInput) {
  auto w = ValidWire();
  w.set_schema(9);
  ExpectInvalid(w, "schema 9");
  w = ValidWire();
  w.set_schema(-5);
  ExpectInvalid(w, "schema -5");
  w = ValidWire();
  ExpectInvalid(w, "schema 5", SketchLimits{0, 4, 4096});

  w = ValidWire();
  w.set_sum(std::nan(""));
  ExpectInvalid(w, "sum");
  w = ValidWire();
  w.set_sum(-1);
  ExpectInvalid(w, "sum");
  w = ValidWire();
  w.set_zero_threshold(std::numeric_limits<double>::infinity());
  ExpectInvalid(w, "zero_threshold");

  w = ValidWire();
  w.set_count(7);
  ExpectInvalid(w, "count 7 != zero_count 1 + bucket counts 5");

  w = ValidWire();
  w.set_positive_deltas(1, -3);  // 2 then -1
  ExpectInvalid(w, "negative");

  w = ValidWire();
  w.mutable_positive_spans(0)->set_length(3);
  ExpectInvalid(w, "spans cover 3 buckets but 2 deltas");

  w = ValidWire();
  w.mutable_positive_spans(0)->set_length(0xffffffffu);
  ExpectInvalid(w, "more than 4096 buckets");
  w = ValidWire();
  for (int k = 0; k < 4; ++k) {
    w.add_positive_spans()->set_length(0xffffffffu);
  }
  ExpectInvalid(w, "more than 4096 buckets");

  w = ValidWire();
  ExpectInvalid(w, "more than 1 buckets", SketchLimits{-4, 8, 1});
  w = ValidWire();
  for (int k = 0; k < 5000; ++k) {
    w.add_positive_spans();  // zero-length padding
  }
  ExpectInvalid(w, "spans exceed the limit of 4096 buckets");

  w = ValidWire();
  w.mutable_positive_spans(0)->set_offset(std::numeric_limits<int32_t>::max());
  ExpectInvalid(w, "outside");
  w = ValidWire();
  auto* s2 = w.add_positive_spans();
  s2->set_offset(-3);
  s2->set_length(1);
  w.add_positive_deltas(0);
  ExpectInvalid(w, "negative offset");

  w = ValidWire();
  w.set_positive_deltas(0, std::numeric_limits<int64_t>::max());
  w.set_positive_deltas(1, std::numeric_limits<int64_t>::max());
  ExpectInvalid(w, "overflows");

  w = ValidWire();
  w.set_count(std::numeric_limits<uint64_t>::max());
  ExpectInvalid(w, "count");

  w = ValidWire();
  w.set_zero_threshold(1.0);  // buckets -10, -9 lie below 1.0
  ExpectInvalid(w, "inside the zero bucket");
}

TEST(LatencySketchProtoTest, EmptyAndNegativeSchemaRoundTrips) {
  kpiscale::v1::Sketch wire;
  LatencySketch(-2).ToProto(&wire);
  EXPECT_EQ(wire.positive_spans_size(), 0);
  absl::StatusOr<LatencySketch> e = LatencySketch::FromProto(wire);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_TRUE(e->empty());
  EXPECT_EQ(e->schema(), -2);
  EXPECT_FALSE(e->Quantile(0.5).has_value());

  LatencySketch coarse(-2, 100);
  for (double v : {1e-6, 0.001, 0.5, 3.0, 1000.0}) {
    coarse.Add(v);
  }
  coarse.ToProto(&wire);
  const absl::StatusOr<LatencySketch> back = LatencySketch::FromProto(wire);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->Buckets(), coarse.Buckets());
  EXPECT_EQ(back->schema(), -2);
}

TEST(LatencySketchProtoTest, SumMustFitTheCount) {
  kpiscale::v1::Sketch w;
  w.set_schema(5);
  w.set_sum(1.0);  // count 0
  ExpectInvalid(w, "sum 1 outside [0, 0]");
  w = ValidWire();
  w.set_sum(std::numeric_limits<double>::infinity());
  ExpectInvalid(w, "sum inf");
}

TEST(LatencySketchProtoTest, ZeroCountBucketsInSpansAreAccepted) {
  auto w = ValidWire();
  w.set_positive_deltas(0, 0);
  w.set_positive_deltas(1, 5);
  const absl::StatusOr<LatencySketch> s = LatencySketch::FromProto(w);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->bucket_count(), 1u);
}

TEST(LatencySketchProtoTest, WideWireSketchIsDownscaledToTheCap) {
  kpiscale::v1::Sketch w;
  w.set_schema(8);
  w.set_count(2);
  w.set_sum(1000.001);
  auto* a = w.add_positive_spans();
  a->set_offset(-256 * 10);  // ~1 ms
  a->set_length(1);
  auto* b = w.add_positive_spans();
  b->set_offset(256 * 20);  // ~1000 s
  b->set_length(1);
  w.add_positive_deltas(1);
  w.add_positive_deltas(0);
  const absl::StatusOr<LatencySketch> s = LatencySketch::FromProto(w, SketchLimits{-4, 8, 100});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_LT(s->schema(), 8);
  EXPECT_EQ(s->count(), 2u);
  EXPECT_EQ(s->bucket_count(), 2u);
  EXPECT_NEAR(*s->Quantile(0.0), std::exp2(-10.0), std::exp2(-10.0) * 0.2);
}

}  // namespace
}  // namespace kpiscale::common
