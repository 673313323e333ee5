#include "kpiscale/adapter/catalog.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace kpiscale::adapter {
// A namespace of its own: in unity builds several test files share one translation unit.
namespace catalog_test {
namespace {

using testing::Decode;
using testing::HttpWindow;
using testing::Pod;

constexpr int64_t kNow = 1'700'000'000'000;

class CatalogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StoreOptions o;
    store_ = std::move(CreateMemoryWindowStore(o)).value();
  }
  PodViewPtr Ingest(common::ReportBatchBuilder b) {
    auto r = store_->Ingest(Decode(b.Build(), kNow));
    EXPECT_TRUE(r.ok()) << r.status();
    for (const auto& v : store_->FreshPods("", kNow)) {
      if (v->identity->name == b.batch().pod().pod_name()) return v;
    }
    return nullptr;
  }
  SeriesChoice Default(const MetricDef& m) {
    return **ChooseSeries(m, common::LabelSelector::Everything());
  }
  std::unique_ptr<WindowStore> store_;
};

TEST_F(CatalogTest, CatalogHasEveryMetricAndAliases) {
  for (const char* name :
       {"http_requests_per_second", "http_requests_in_flight", "http_errors_ratio",
        "http_request_duration_seconds", "http_slo_violations_ratio", "cache_hit_ratio",
        "cache_requests_per_second", "cache_command_duration_seconds", "db_queries_per_second",
        "db_query_duration_seconds", "db_errors_ratio", "http_request_duration_p50_seconds",
        "http_request_duration_p95_seconds", "http_request_duration_p99_seconds"}) {
    EXPECT_NE(FindMetric(name), nullptr) << name;
  }
  EXPECT_EQ(FindMetric("nope"), nullptr);
}

TEST_F(CatalogTest, PodRateRatioAndQuantile) {
  auto v = Ingest(Pod("ns", "p1")
                      .AddWindow(HttpWindow(1, kNow - 1000, 15, 3, {0.1}))
                      .AddWindow(HttpWindow(2, kNow, 15, 0, {0.1})));
  ASSERT_NE(v, nullptr);
  auto rate = EvaluatePod(*FindMetric("http_requests_per_second"),
                          Default(*FindMetric("http_requests_per_second")), *v);
  ASSERT_TRUE(rate.has_value());
  EXPECT_EQ(rate->quantity, "15");
  EXPECT_EQ(rate->timestamp_ms, kNow);
  EXPECT_EQ(rate->window_seconds, 2);
  auto errors =
      EvaluatePod(*FindMetric("http_errors_ratio"), Default(*FindMetric("http_errors_ratio")), *v);
  EXPECT_EQ(errors->quantity, "100m");
  auto inflight = EvaluatePod(*FindMetric("http_requests_in_flight"),
                              Default(*FindMetric("http_requests_in_flight")), *v);
  EXPECT_EQ(inflight->quantity, "1500m");  // 30 requests x 0.1 s over 2 s
  const MetricDef& p99 = *FindMetric("http_request_duration_seconds");
  auto q = EvaluatePod(p99, Default(p99), *v);
  ASSERT_TRUE(q.has_value());
  EXPECT_NEAR(q->value, 0.1, 0.1 * 0.011);
  auto slo = EvaluatePod(*FindMetric("http_slo_violations_ratio"),
                         Default(*FindMetric("http_slo_violations_ratio")), *v);
  EXPECT_EQ(slo->quantity, "0");
}

TEST_F(CatalogTest, MissingSignalsAndEmptyRatiosAreAbsent) {
  common::WindowBuilder idle;
  auto v = Ingest(Pod("ns", "idle").AddWindow(idle.Finish(1, kNow - 1000, kNow)));
  ASSERT_NE(v, nullptr);
  for (const auto& m : Catalog()) {
    auto s = ChooseSeries(m, common::LabelSelector::Everything());
    ASSERT_TRUE(s.ok() && s->has_value());
    EXPECT_FALSE(EvaluatePod(m, **s, *v).has_value()) << m.name;
  }
  common::WindowBuilder cache_only;
  cache_only.RecordCacheCommand(common::WindowBuilder::CacheResult::kNone, false, 0.001);
  auto c = Ingest(Pod("ns", "c").AddWindow(cache_only.Finish(1, kNow - 1000, kNow)));
  EXPECT_FALSE(
      EvaluatePod(*FindMetric("cache_hit_ratio"), Default(*FindMetric("cache_hit_ratio")), *c)
          .has_value());
  EXPECT_EQ(EvaluatePod(*FindMetric("cache_requests_per_second"),
                        Default(*FindMetric("cache_requests_per_second")), *c)
                ->quantity,
            "1");
}

TEST_F(CatalogTest, CacheAndDbMetrics) {
  common::WindowBuilder b;
  using R = common::WindowBuilder::CacheResult;
  for (int i = 0; i < 9; ++i) b.RecordCacheCommand(R::kHit, false, 0.001);
  b.RecordCacheCommand(R::kMiss, false, 0.002);
  for (int i = 0; i < 4; ++i) b.RecordQuery(i == 0, 0.05);
  auto v = Ingest(Pod("ns", "cd").AddWindow(b.Finish(1, kNow - 1000, kNow)));
  EXPECT_EQ(EvaluatePod(*FindMetric("cache_hit_ratio"), Default(*FindMetric("cache_hit_ratio")), *v)
                ->quantity,
            "900m");
  EXPECT_EQ(EvaluatePod(*FindMetric("db_queries_per_second"),
                        Default(*FindMetric("db_queries_per_second")), *v)
                ->quantity,
            "4");
  EXPECT_EQ(EvaluatePod(*FindMetric("db_errors_ratio"), Default(*FindMetric("db_errors_ratio")), *v)
                ->quantity,
            "250m");
  auto dbq = EvaluatePod(*FindMetric("db_query_duration_p50_seconds"),
                         Default(*FindMetric("db_query_duration_p50_seconds")), *v);
  EXPECT_NEAR(dbq->value, 0.05, 0.05 * 0.011);
}

TEST_F(CatalogTest, GroupMergesCountsNeverAveragesPercentiles) {
  // Pod a: 99 fast requests; pod b: 1 request, very slow. The mean of per-pod p99s would be
  // (~10ms + 2s) / 2; the merged p99 of 100 requests is the 99th fastest (10ms).
  auto a = Ingest(Pod("ns", "a").AddWindow(HttpWindow(1, kNow, 99, 0, {0.01})));
  auto b = Ingest(Pod("ns", "b").AddWindow(HttpWindow(1, kNow, 1, 1, {2.0})));
  const MetricDef& p99 = *FindMetric("http_request_duration_seconds");
  auto merged = EvaluateGroup(p99, Default(p99), {a.get(), b.get()});
  ASSERT_TRUE(merged.has_value());
  EXPECT_NEAR(merged->value, 0.01, 0.01 * 0.011);
  auto rate = EvaluateGroup(*FindMetric("http_requests_per_second"),
                            Default(*FindMetric("http_requests_per_second")), {a.get(), b.get()});
  EXPECT_EQ(rate->quantity, "100");  // summed over pods
  auto errors = EvaluateGroup(*FindMetric("http_errors_ratio"),
                              Default(*FindMetric("http_errors_ratio")), {a.get(), b.get()});
  EXPECT_EQ(errors->quantity, "10m");  // 1 / 100, not (0 + 1) / 2
}

TEST_F(CatalogTest, ChooseSeriesByMetricLabels) {
  const MetricDef& q = *FindMetric("http_request_duration_seconds");
  auto pinned = ChooseSeries(q, *common::LabelSelector::Parse("quantile=0.95"));
  ASSERT_TRUE(pinned.ok() && pinned->has_value());
  EXPECT_DOUBLE_EQ((*pinned)->quantile, 0.95);
  EXPECT_EQ((*pinned)->labels.at("quantile"), "0.95");
  auto in = ChooseSeries(q, *common::LabelSelector::Parse("quantile in (0.5)"));
  EXPECT_DOUBLE_EQ((*in)->quantile, 0.5);
  auto notin = ChooseSeries(q, *common::LabelSelector::Parse("quantile notin (0.99)"));
  ASSERT_TRUE(notin->has_value());
  EXPECT_DOUBLE_EQ((*notin)->quantile, 0.5);
  EXPECT_FALSE(ChooseSeries(q, *common::LabelSelector::Parse("quantile=2")).ok());
  EXPECT_FALSE(ChooseSeries(q, *common::LabelSelector::Parse("quantile=abc")).ok());
  auto other = ChooseSeries(q, *common::LabelSelector::Parse("route=checkout"));
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->has_value());
  const MetricDef& slo = *FindMetric("http_slo_violations_ratio");
  auto t = ChooseSeries(slo, *common::LabelSelector::Parse("threshold=200ms"));
  EXPECT_DOUBLE_EQ((*t)->threshold, 0.2);
  auto rate = ChooseSeries(*FindMetric("http_requests_per_second"),
                           *common::LabelSelector::Parse("quantile=0.5"));
  EXPECT_FALSE(rate->has_value());
}

TEST_F(CatalogTest, SloForUnconfiguredThresholdIsAbsent) {
  auto v = Ingest(Pod("ns", "p").AddWindow(HttpWindow(1, kNow, 10, 0, {0.3})));
  const MetricDef& slo = *FindMetric("http_slo_violations_ratio");
  EXPECT_EQ(EvaluatePod(slo, Default(slo), *v)->quantity, "1");
  auto other = ChooseSeries(slo, *common::LabelSelector::Parse("threshold=0.5"));
  EXPECT_FALSE(EvaluatePod(slo, **other, *v).has_value());
}

}  // namespace
}  // namespace catalog_test
}  // namespace kpiscale::adapter
