#include "kpiscale/adapter/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "kpiscale/common/sketch.h"

namespace kpiscale::adapter {
namespace {

kpiscale::v1::Sketch ProtoOf(const std::vector<double>& values, int schema = 5) {
  common::LatencySketch s(schema, 4096);
  for (double v : values) s.Add(v);
  kpiscale::v1::Sketch p;
  s.ToProto(&p);
  return p;
}

std::vector<double> LogNormal(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::lognormal_distribution<double> d(std::log(0.05), 0.8);
  std::vector<double> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = d(rng);
  return v;
}

double ExactQuantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))];
}

TEST(Histogram, FromProtoKeepsCountsAndAgreesWithLatencySketch) {
  const auto values = LogNormal(5000, 1);
  common::LatencySketch s(5, 4096);
  for (double v : values) s.Add(v);
  kpiscale::v1::Sketch p;
  s.ToProto(&p);
  auto h = Histogram::FromProto(p);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->count(), 5000u);
  EXPECT_EQ(h->schema(), 5);
  EXPECT_NEAR(h->sum(), s.sum(), 1e-9);
  for (double q : {0.5, 0.9, 0.95, 0.99}) {
    ASSERT_TRUE(h->Quantile(q).has_value());
    EXPECT_NEAR(*h->Quantile(q), *s.Quantile(q), 1e-12 * *s.Quantile(q)) << q;
  }
}

TEST(Histogram, QuantileWithinBucketErrorOfExact) {
  const auto values = LogNormal(20000, 2);
  auto h = Histogram::FromProto(ProtoOf(values));
  ASSERT_TRUE(h.ok());
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    const double exact = ExactQuantile(values, q);
    EXPECT_LE(std::fabs(*h->Quantile(q) - exact) / exact, 0.011) << q;
  }
}

TEST(Histogram, EmptyAndOutOfRangeQuantilesAreAbsent) {
  Histogram h;
  EXPECT_FALSE(h.Quantile(0.5).has_value());
  auto g = Histogram::FromProto(ProtoOf({0.1, 0.2}));
  ASSERT_TRUE(g.ok());
  EXPECT_FALSE(g->Quantile(1.5).has_value());
  EXPECT_FALSE(g->Quantile(std::nan("")).has_value());
}

TEST(Histogram, ZeroBucketAnswersZero) {
  auto h = Histogram::FromBuckets(5, 10, 0, {{0, 1}});
  EXPECT_EQ(*h.Quantile(0.5), 0.0);
  EXPECT_GT(*h.Quantile(1.0), 0.0);
}

TEST(Histogram, EncodeDecodeRoundTrip) {
  auto h = Histogram::FromProto(ProtoOf(LogNormal(300, 3)));
  ASSERT_TRUE(h.ok());
  std::string blob;
  h->AppendEncoded(&blob);
  h->AppendEncoded(&blob);
  std::size_t pos = 0;
  Histogram a, b;
  ASSERT_TRUE(Histogram::DecodeFrom(blob, &pos, &a));
  ASSERT_TRUE(Histogram::DecodeFrom(blob, &pos, &b));
  EXPECT_EQ(pos, blob.size());
  EXPECT_EQ(a.buckets(), h->buckets());
  EXPECT_EQ(b.count(), h->count());
  EXPECT_EQ(a.sum(), h->sum());
  Histogram c;
  std::size_t bad = 0;
  EXPECT_FALSE(Histogram::DecodeFrom(blob.substr(0, 3), &bad, &c));
}

TEST(Histogram, MergeAcrossSchemasKeepsTotalsAndCoarsens) {
  auto fine = Histogram::FromProto(ProtoOf(LogNormal(1000, 4), 5));
  auto coarse = Histogram::FromProto(ProtoOf(LogNormal(1000, 5), 3));
  ASSERT_TRUE(fine.ok() && coarse.ok());
  Histogram m = *fine;
  m.Merge(*coarse);
  EXPECT_EQ(m.schema(), 3);
  EXPECT_EQ(m.count(), 2000u);
  HistogramMerger merger;
  merger.Add(*fine);
  merger.Add(*coarse);
  Histogram d = merger.Finish();
  EXPECT_EQ(d.schema(), 3);
  EXPECT_EQ(d.count(), 2000u);
  EXPECT_EQ(d.buckets(), m.buckets());
  // The same merge in the other order gives the same buckets.
  HistogramMerger other;
  other.Add(*coarse);
  other.Add(*fine);
  EXPECT_EQ(other.Finish().buckets(), m.buckets());
}

TEST(Histogram, MergedQuantileIsQuantileOfAllSamples) {
  auto a = LogNormal(4000, 6);
  auto b = LogNormal(4000, 7);
  for (auto& x : b) x *= 3;  // a slower pod
  HistogramMerger merger;
  merger.Add(*Histogram::FromProto(ProtoOf(a)));
  merger.Add(*Histogram::FromProto(ProtoOf(b)));
  std::vector<double> all = a;
  all.insert(all.end(), b.begin(), b.end());
  const double exact = ExactQuantile(all, 0.99);
  EXPECT_LE(std::fabs(*merger.Finish().Quantile(0.99) - exact) / exact, 0.011);
}

TEST(Histogram, RejectsMalformedSketches) {
  auto good = ProtoOf({0.1, 0.2, 0.3});
  {
    auto p = good;
    p.set_schema(9);
    EXPECT_FALSE(Histogram::FromProto(p).ok());
  }
  {
    auto p = good;
    p.set_count(p.count() + 1);
    auto h = Histogram::FromProto(p);
    ASSERT_FALSE(h.ok());
    EXPECT_NE(h.status().message().find("differs"), absl::string_view::npos);
  }
  {
    auto p = good;
    p.add_positive_deltas(1);
    EXPECT_FALSE(Histogram::FromProto(p).ok());
  }
  {
    auto p = good;
    p.set_positive_deltas(0, -5);
    EXPECT_FALSE(Histogram::FromProto(p).ok());
  }
  {
    auto p = good;
    p.set_sum(-1);
    EXPECT_FALSE(Histogram::FromProto(p).ok());
  }
  {
    auto p = good;
    p.set_sum(std::numeric_limits<double>::infinity());
    EXPECT_FALSE(Histogram::FromProto(p).ok());
  }
  {
    kpiscale::v1::Sketch p;
    p.set_schema(0);
    auto* span = p.add_positive_spans();
    span->set_offset(1'000'000);
    span->set_length(1);
    p.add_positive_deltas(1);
    p.set_count(1);
    EXPECT_FALSE(Histogram::FromProto(p).ok());  // bucket index far outside the time range
  }
  {
    HistogramLimits limits;
    limits.max_buckets = 2;
    EXPECT_FALSE(Histogram::FromProto(good, limits).ok());
  }
}

}  // namespace
}  // namespace kpiscale::adapter
