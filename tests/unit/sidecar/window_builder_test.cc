#include "kpiscale/sidecar/window_builder.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "kpiscale/common/clock.h"
#include "kpiscale/sidecar/stats.h"
#include "prometheus/registry.h"

namespace kpiscale::sidecar {
namespace {

// Sum of the samples of a counter, gauge or histogram (count) with the given label (all samples
// when label is empty); -1 when the family does not exist.
double MetricValue(prometheus::Registry& registry, const std::string& name,
                   const std::string& label = "", const std::string& value = "") {
  double sum = -1;
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    sum = 0;
    for (const auto& m : family.metric) {
      bool match = label.empty();
      for (const auto& l : m.label) match = match || (l.name == label && l.value == value);
      if (!match) continue;
      if (family.type == prometheus::MetricType::Counter) sum += m.counter.value;
      if (family.type == prometheus::MetricType::Gauge) sum += m.gauge.value;
      if (family.type == prometheus::MetricType::Histogram) {
        sum += static_cast<double>(m.histogram.sample_count);
      }
    }
  }
  return sum;
}

// Cumulative count of the histogram bucket with upper bound `le`.
double BucketCount(prometheus::Registry& registry, const std::string& name, double le) {
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& b : family.metric.at(0).histogram.bucket) {
      if (b.upper_bound == le) return static_cast<double>(b.cumulative_count);
    }
  }
  return -1;
}

class WindowBuilderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    layout_.slo_thresholds = {0.1, 0.2};
    layout_.buckets = ClassicBuckets(layout_.slo_thresholds);
    layout_.routes = 1;
    auto stats =
        SidecarStats::Create(registry_, layout_.slo_thresholds, layout_.buckets, {"other"});
    ASSERT_TRUE(stats.ok()) << stats.status();
    stats_ = std::move(*stats);
    builder_ = std::make_unique<WindowBuilder>(layout_, stats_.get(), clock_);
  }

  HttpLayout layout_;
  prometheus::Registry registry_;
  std::unique_ptr<SidecarStats> stats_;
  common::FakeClock clock_{1'700'000'000'000};
  std::unique_ptr<WindowBuilder> builder_;
};

TEST_F(WindowBuilderTest, ClassicBucketsIncludeThresholdsOnce) {
  const auto b = ClassicBuckets({0.2, 0.3});
  EXPECT_EQ(std::count(b.begin(), b.end(), 0.2), 1);
  EXPECT_EQ(std::count(b.begin(), b.end(), 0.3), 1);
  EXPECT_TRUE(std::is_sorted(b.begin(), b.end()));
  EXPECT_EQ(b.size(), 13u);
}

TEST_F(WindowBuilderTest, HttpWindowCountsExactly) {
  HttpSlot* a = builder_->AddHttpSlot();
  HttpSlot* b = builder_->AddHttpSlot();
  a->RecordRequest(200, 0.05, 0.01, 0);
  a->RecordRequest(200, 0.2, 0.1, 0);  // exactly at a threshold: not slow for 0.2
  b->RecordRequest(503, 0.15, 0.15, 0);
  b->RecordRequest(404, 0.3, 0.2, 0);
  b->RecordUpgrade();
  a->AddBytes(100, 1000);
  b->RecordUpstreamFailure(UpstreamFailure::kTimeout);
  clock_.Advance(std::chrono::milliseconds(1000));
  const kpiscale::v1::Window w = builder_->CloseWindow();
  EXPECT_EQ(w.sequence(), 1'700'000'000'001u);
  EXPECT_EQ(w.start_unix_ms(), 1'700'000'000'000);
  EXPECT_EQ(w.end_unix_ms(), 1'700'000'001'000);
  ASSERT_TRUE(w.has_http());
  const auto& h = w.http();
  EXPECT_EQ(h.requests(), 4u);
  EXPECT_EQ(h.errors(), 1u);
  EXPECT_EQ(h.status_2xx(), 2u);
  EXPECT_EQ(h.status_4xx(), 1u);
  EXPECT_EQ(h.status_5xx(), 1u);
  EXPECT_EQ(h.upgrades(), 1u);
  EXPECT_DOUBLE_EQ(h.duration_sum_seconds(), 0.7);
  ASSERT_EQ(h.slo_size(), 2);
  EXPECT_EQ(h.slo(0).threshold_seconds(), 0.1);
  EXPECT_EQ(h.slo(0).slow(), 3u);
  EXPECT_EQ(h.slo(1).threshold_seconds(), 0.2);
  EXPECT_EQ(h.slo(1).slow(), 1u);
  EXPECT_EQ(h.latency().count(), 4u);
  EXPECT_EQ(h.ttfb().count(), 4u);
  EXPECT_EQ(h.bytes_received(), 100u);
  EXPECT_EQ(h.bytes_sent(), 1000u);
  EXPECT_FALSE(w.has_cache());
  EXPECT_FALSE(w.has_db());

  // The same figures reached Prometheus.
  EXPECT_EQ(MetricValue(registry_, "kpiscale_sidecar_http_requests_total", "code", "2xx"), 2);
  EXPECT_EQ(MetricValue(registry_, "kpiscale_sidecar_http_requests_total", "code", "5xx"), 1);
  EXPECT_EQ(MetricValue(registry_, "kpiscale_sidecar_http_errors_total"), 1);
  EXPECT_EQ(MetricValue(registry_, "kpiscale_sidecar_http_slow_requests_total", "threshold", "0.2"),
            1);
  EXPECT_EQ(MetricValue(registry_, "kpiscale_sidecar_http_slow_requests_total", "threshold", "0.1"),
            3);
  EXPECT_EQ(
      MetricValue(registry_, "kpiscale_sidecar_http_upstream_failures_total", "reason", "timeout"),
      1);
  EXPECT_EQ(MetricValue(registry_, "kpiscale_sidecar_http_upgrades_total"), 1);
  EXPECT_EQ(BucketCount(registry_, "kpiscale_sidecar_http_request_duration_seconds", 0.2), 3);
  EXPECT_EQ(BucketCount(registry_, "kpiscale_sidecar_http_request_duration_seconds", 0.1), 1);
  EXPECT_EQ(MetricValue(registry_, "kpiscale_sidecar_http_time_to_first_byte_seconds"), 4);

  // The next window starts where this one ended and is empty, but present.
  clock_.Advance(std::chrono::milliseconds(1000));
  const kpiscale::v1::Window next = builder_->CloseWindow();
  EXPECT_EQ(next.sequence(), w.sequence() + 1);
  EXPECT_EQ(next.start_unix_ms(), w.end_unix_ms());
  ASSERT_TRUE(next.has_http());
  EXPECT_EQ(next.http().requests(), 0u);
  EXPECT_EQ(next.http().latency().count(), 0u);
  EXPECT_EQ(MetricValue(registry_, "kpiscale_sidecar_http_requests_total", "code", "2xx"), 2);
}

TEST_F(WindowBuilderTest, InFlightIsALevelAcrossWindows) {
  HttpSlot* a = builder_->AddHttpSlot();
  a->AddInFlight(3);
  a->AddInFlight(-1);
  builder_->CloseWindow();
  EXPECT_EQ(MetricValue(registry_, "kpiscale_sidecar_http_requests_in_flight"), 2);
  a->AddInFlight(-2);
  builder_->CloseWindow();
  EXPECT_EQ(MetricValue(registry_, "kpiscale_sidecar_http_requests_in_flight"), 0);
}

TEST_F(WindowBuilderTest, CacheAndDbPresentOnlyWhenObserved) {
  SignalSink& sink = *builder_;
  sink.RecordCacheCommand(0.001, CacheCommandResult{1, 0, false});
  sink.RecordCacheCommand(0.002, CacheCommandResult{0, 2, false});
  sink.RecordCacheCommand(0.003, CacheCommandResult{0, 0, true});
  sink.RecordDbQuery(0.05, false);
  sink.RecordDbQuery(0.2, true);
  clock_.Advance(std::chrono::milliseconds(500));
  const kpiscale::v1::Window w = builder_->CloseWindow();
  ASSERT_TRUE(w.has_cache());
  EXPECT_EQ(w.cache().commands(), 3u);
  EXPECT_EQ(w.cache().hits(), 1u);
  EXPECT_EQ(w.cache().misses(), 2u);
  EXPECT_EQ(w.cache().errors(), 1u);
  EXPECT_EQ(w.cache().latency().count(), 3u);
  EXPECT_FALSE(w.cache().server_wide());
  ASSERT_TRUE(w.has_db());
  EXPECT_EQ(w.db().queries(), 2u);
  EXPECT_EQ(w.db().errors(), 1u);
  EXPECT_NEAR(w.db().duration_sum_seconds(), 0.25, 1e-12);
  EXPECT_EQ(MetricValue(registry_, "kpiscale_sidecar_cache_hits_total"), 1);
  EXPECT_EQ(MetricValue(registry_, "kpiscale_sidecar_cache_misses_total"), 2);
  EXPECT_EQ(MetricValue(registry_, "kpiscale_sidecar_db_queries_total"), 2);
  EXPECT_EQ(BucketCount(registry_, "kpiscale_sidecar_db_query_duration_seconds", 0.1), 1);

  const kpiscale::v1::Window empty = builder_->CloseWindow();
  EXPECT_FALSE(empty.has_cache());
  EXPECT_FALSE(empty.has_db());

  sink.RecordCacheServerWide(10, 5);
  const kpiscale::v1::Window info = builder_->CloseWindow();
  ASSERT_TRUE(info.has_cache());
  EXPECT_TRUE(info.cache().server_wide());
  EXPECT_EQ(info.cache().hits(), 10u);
  EXPECT_EQ(info.cache().commands(), 0u);
}

TEST_F(WindowBuilderTest, SketchGivesTheQuantile) {
  HttpSlot* a = builder_->AddHttpSlot();
  for (int i = 1; i <= 1000; ++i) a->RecordRequest(200, i / 1000.0, i / 2000.0, 0);
  const kpiscale::v1::Window w = builder_->CloseWindow();
  auto sketch = common::LatencySketch::FromProto(w.http().latency());
  ASSERT_TRUE(sketch.ok()) << sketch.status();
  const auto p99 = sketch->Quantile(0.99);
  ASSERT_TRUE(p99.has_value());
  // Within two bucket widths at schema 5 (the sketch's own accuracy is tested in common/).
  EXPECT_NEAR(*p99, 0.99, 0.99 * 0.025);
  EXPECT_EQ(w.http().slo(1).slow(), 800u);  // 0.201 .. 1.0
}

TEST_F(WindowBuilderTest, RoutesLabelIsBounded) {
  prometheus::Registry registry;
  HttpLayout layout;
  layout.slo_thresholds = {0.2};
  layout.buckets = ClassicBuckets(layout.slo_thresholds);
  layout.routes = 2;
  auto stats = SidecarStats::Create(registry, layout.slo_thresholds, layout.buckets,
                                    {"/orders/{id}", "other"});
  ASSERT_TRUE(stats.ok());
  WindowBuilder builder(layout, stats->get(), clock_);
  HttpSlot* s = builder.AddHttpSlot();
  s->RecordRequest(200, 0.01, 0.01, 0);
  s->RecordRequest(200, 0.01, 0.01, 1);
  s->RecordRequest(200, 0.01, 0.01, 99);  // out of range: lands in "other"
  builder.CloseWindow();
  EXPECT_EQ(MetricValue(registry, "kpiscale_sidecar_http_requests_total", "route", "/orders/{id}"),
            1);
  EXPECT_EQ(MetricValue(registry, "kpiscale_sidecar_http_requests_total", "route", "other"), 2);
}

}  // namespace
}  // namespace kpiscale::sidecar
