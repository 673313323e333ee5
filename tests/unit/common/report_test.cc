#include "kpiscale/common/report.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>

#include "kpiscale/common/http_util.h"
#include "kpiscale/common/report_builder.h"
#include "kpiscale/common/status.h"

namespace kpiscale::common {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr int64_t kT0 = 1'700'000'000'000;

// A realistic, valid batch: two windows with all three signals.
kpiscale::v1::ReportBatch ValidBatch() {
  ReportBatchBuilder b("shop", "checkout-7d9f-abcde", "6f1c2a9e-0d7b-4c0e-9a57-2b1f3c4d5e6f");
  b.NodeName("node-1")
      .Workload("Deployment", "checkout")
      .ServiceName("checkout")
      .Label("app", "checkout")
      .Label("app.kubernetes.io/part-of", "shop")
      .Label("empty", "")
      .SidecarVersion("0.1.0");
  WindowBuilder wb({0.1, 0.2});
  for (int seq = 1; seq <= 2; ++seq) {
    wb.RecordHttpRequest(200, 0.05, 0.01, 100, 2000);
    wb.RecordHttpRequest(404, 0.15, 0.02);
    wb.RecordHttpRequest(503, 0.5, 0.4);
    wb.RecordUpstreamFailure(502, 1.0);
    wb.RecordUpgrade();
    wb.RecordCacheCommand(WindowBuilder::CacheResult::kHit, false, 0.0002);
    wb.RecordCacheCommand(WindowBuilder::CacheResult::kMiss, false, 0.0003);
    wb.RecordCacheCommand(WindowBuilder::CacheResult::kNone, true, 0.0004);
    wb.RecordQuery(false, 0.003);
    wb.RecordQuery(true, 0.004);
    b.AddWindow(wb.Finish(seq, kT0 + (seq - 1) * 1000, kT0 + seq * 1000));
  }
  return b.Build();
}

absl::Status Validate(const kpiscale::v1::ReportBatch& batch) {
  return ValidateReportBatch(batch, ReportLimits{});
}

TEST(ReportBuilderTest, BuildsConsistentCountsAndSketches) {
  const auto batch = ValidBatch();
  ASSERT_EQ(batch.windows_size(), 2);
  const auto& http = batch.windows(0).http();
  EXPECT_EQ(http.requests(), 4u);
  EXPECT_EQ(http.errors(), 2u);  // 503 and the upstream 502
  EXPECT_EQ(http.status_2xx(), 1u);
  EXPECT_EQ(http.status_4xx(), 1u);
  EXPECT_EQ(http.status_5xx(), 2u);
  EXPECT_EQ(http.upgrades(), 1u);
  EXPECT_DOUBLE_EQ(http.duration_sum_seconds(), 1.7);
  ASSERT_EQ(http.slo_size(), 2);
  EXPECT_EQ(http.slo(0).threshold_seconds(), 0.1);
  EXPECT_EQ(http.slo(0).slow(), 3u);  // 0.15, 0.5, 1.0
  EXPECT_EQ(http.slo(1).slow(), 2u);  // 0.5, 1.0
  EXPECT_EQ(http.latency().count(), 4u);
  EXPECT_EQ(http.ttfb().count(), 3u);  // the upstream failure sent no first byte of its own
  EXPECT_EQ(http.bytes_sent(), 2000u);
  const auto& cache = batch.windows(0).cache();
  EXPECT_EQ(cache.commands(), 3u);
  EXPECT_EQ(cache.hits(), 1u);
  EXPECT_EQ(cache.misses(), 1u);
  EXPECT_EQ(cache.errors(), 1u);
  EXPECT_EQ(batch.windows(1).db().queries(), 2u);
  EXPECT_EQ(batch.windows(1).db().errors(), 1u);
  EXPECT_TRUE(Validate(batch).ok()) << Validate(batch);
}

TEST(ReportBuilderTest, SlowIsStrictlyAboveTheThreshold) {
  WindowBuilder wb({0.2});
  wb.RecordHttpRequest(200, 0.2);
  wb.RecordHttpRequest(200, 0.2000001);
  const auto w = wb.Finish(1, kT0, kT0 + 1000);
  EXPECT_EQ(w.http().slo(0).slow(), 1u);
}

TEST(ReportBuilderTest, UnobservedSignalsAreAbsentAndFinishResets) {
  WindowBuilder wb;
  EXPECT_TRUE(wb.empty());
  wb.RecordQuery(false, 0.01);
  EXPECT_FALSE(wb.empty());
  auto w = wb.Finish(7, kT0, kT0 + 1000);
  EXPECT_FALSE(w.has_http());
  EXPECT_FALSE(w.has_cache());
  EXPECT_TRUE(w.has_db());
  EXPECT_EQ(w.sequence(), 7u);
  EXPECT_TRUE(wb.empty());
  w = wb.Finish(8, kT0 + 1000, kT0 + 2000);
  EXPECT_FALSE(w.has_db());
}

TEST(ReportBuilderTest, ServerWideCacheCountsMayExceedCommands) {
  WindowBuilder wb;
  wb.SetServerWideCacheCounts(900, 100);
  wb.RecordCacheCommand(WindowBuilder::CacheResult::kHit, false, 0.001);
  ReportBatchBuilder b("ns", "pod", "uid-1");
  b.AddWindow(wb.Finish(1, kT0, kT0 + 1000));
  const auto batch = b.Build();
  EXPECT_TRUE(batch.windows(0).cache().server_wide());
  EXPECT_EQ(batch.windows(0).cache().hits(), 900u);
  EXPECT_TRUE(Validate(batch).ok()) << Validate(batch);
}

TEST(ReportBuilderTest, BadDurationsAreCountedButNotSummed) {
  WindowBuilder wb;
  wb.RecordHttpRequest(200, std::nan(""));
  wb.RecordHttpRequest(200, -1.0);
  const auto w = wb.Finish(1, kT0, kT0 + 1000);
  EXPECT_EQ(w.http().requests(), 2u);
  EXPECT_EQ(w.http().duration_sum_seconds(), 0.0);
}

TEST(ReportValidationTest, EmptyPodIdentityIsNamedField) {
  auto batch = ValidBatch();
  batch.mutable_pod()->clear_pod_uid();
  batch.mutable_pod()->clear_namespace_();
  const absl::Status st = Validate(batch);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("pod.pod_uid: must not be empty"));
  EXPECT_THAT(st.message(), HasSubstr("pod.namespace: must not be empty"));
  batch = ValidBatch();
  batch.clear_pod();
  EXPECT_THAT(Validate(batch).message(), HasSubstr("pod: is missing"));
  batch = ValidBatch();
  batch.mutable_pod()->clear_pod_name();
  EXPECT_THAT(Validate(batch).message(), HasSubstr("pod.pod_name: must not be empty"));
}

TEST(ReportValidationTest, NamesMustBeKubernetesNames) {
  auto batch = ValidBatch();
  batch.mutable_pod()->set_namespace_("Shop");
  EXPECT_THAT(Validate(batch).message(), HasSubstr("pod.namespace: \"Shop\" has an invalid"));
  batch = ValidBatch();
  batch.mutable_pod()->set_pod_name("checkout-.x");
  EXPECT_THAT(Validate(batch).message(), HasSubstr("pod.pod_name"));
  batch = ValidBatch();
  batch.mutable_pod()->set_workload_kind("");
  EXPECT_THAT(Validate(batch).message(),
              HasSubstr("workload_kind and workload_name must be set together"));
}

TEST(ReportValidationTest, LabelKeysAndValuesFollowKubernetesRules) {
  EXPECT_TRUE(ValidateLabelKey("app").ok());
  EXPECT_TRUE(ValidateLabelKey("app.kubernetes.io/name").ok());
  EXPECT_TRUE(ValidateLabelKey("a_b.c-d").ok());
  EXPECT_TRUE(ValidateLabelKey(std::string(63, 'a')).ok());
  EXPECT_THAT(ValidateLabelKey(std::string(64, 'a')).message(), HasSubstr("no more than 63"));
  EXPECT_THAT(ValidateLabelKey("").message(), HasSubstr("must not be empty"));
  EXPECT_THAT(ValidateLabelKey("/name").message(), HasSubstr("prefix before '/'"));
  EXPECT_THAT(ValidateLabelKey("example.com/").message(), HasSubstr("name part must not be"));
  EXPECT_THAT(ValidateLabelKey("a/b/c").message(), HasSubstr("at most one '/'"));
  EXPECT_THAT(ValidateLabelKey("Example.com/x").message(), HasSubstr("prefix"));
  EXPECT_THAT(ValidateLabelKey("-app").message(), HasSubstr("begin and end"));
  EXPECT_THAT(ValidateLabelKey("app name").message(), HasSubstr("invalid character at position 3"));
  EXPECT_TRUE(ValidateLabelValue("").ok());
  EXPECT_TRUE(ValidateLabelValue("v1.2_3-x").ok());
  EXPECT_FALSE(ValidateLabelValue("v1 ").ok());
  EXPECT_FALSE(ValidateLabelValue(std::string(64, 'v')).ok());

  auto batch = ValidBatch();
  (*batch.mutable_pod()->mutable_labels())["bad key"] = "x";
  EXPECT_THAT(Validate(batch).message(), HasSubstr("pod.labels: label key \"bad key\""));
  batch = ValidBatch();
  (*batch.mutable_pod()->mutable_labels())["app"] = "bad value";
  EXPECT_THAT(Validate(batch).message(), HasSubstr("pod.labels[\"app\"]: label value"));
}

TEST(ReportValidationTest, TooManyLabels) {
  auto batch = ValidBatch();
  for (int i = 0; i < 64; ++i) {
    (*batch.mutable_pod()->mutable_labels())["k" + std::to_string(i)] = "v";
  }
  EXPECT_THAT(Validate(batch).message(),
              HasSubstr("pod.labels: has 67 labels, more than the limit of 64"));
}

TEST(ReportValidationTest, WindowTimes) {
  auto batch = ValidBatch();
  batch.mutable_windows(1)->set_end_unix_ms(batch.windows(1).start_unix_ms());
  EXPECT_THAT(Validate(batch).message(), HasSubstr("windows[1].end_unix_ms: end "));
  batch = ValidBatch();
  batch.mutable_windows(0)->set_end_unix_ms(kT0 + 60'001);
  EXPECT_THAT(Validate(batch).message(),
              HasSubstr("windows[0].end_unix_ms: window of 60001 ms is longer than the limit"));
  batch.mutable_windows(0)->set_end_unix_ms(kT0 + 60'000);
  EXPECT_TRUE(Validate(batch).ok());
  batch.mutable_windows(0)->set_start_unix_ms(0);
  EXPECT_THAT(Validate(batch).message(), HasSubstr("windows[0].start_unix_ms: must be > 0"));
  // Extreme values must not overflow end - start.
  batch.mutable_windows(0)->set_start_unix_ms(1);
  batch.mutable_windows(0)->set_end_unix_ms(std::numeric_limits<int64_t>::max());
  EXPECT_THAT(Validate(batch).message(), HasSubstr("longer than the limit"));
}

TEST(ReportValidationTest, WindowCountLimits) {
  auto batch = ValidBatch();
  batch.clear_windows();
  EXPECT_THAT(Validate(batch).message(), HasSubstr("windows: must hold at least one window"));
  batch = ValidBatch();
  while (batch.windows_size() <= 120) {
    auto* w = batch.add_windows();
    *w = batch.windows(0);
    w->set_sequence(static_cast<uint64_t>(batch.windows_size()) + 10);
  }
  EXPECT_THAT(Validate(batch).message(), HasSubstr("has 121 windows, more than the limit of 120"));
}

TEST(ReportValidationTest, DuplicateSequenceNamesBothWindows) {
  auto batch = ValidBatch();
  batch.mutable_windows(1)->set_sequence(1);
  EXPECT_THAT(Validate(batch).message(),
              HasSubstr("windows[1].sequence: duplicate sequence 1 (also windows[0])"));
}

TEST(ReportValidationTest, HttpCountsMustBeConsistent) {
  auto batch = ValidBatch();
  batch.mutable_windows(0)->mutable_http()->set_errors(5);
  EXPECT_THAT(Validate(batch).message(),
              HasSubstr("windows[0].http.errors: 5 exceeds requests (4)"));
  batch = ValidBatch();
  batch.mutable_windows(0)->mutable_http()->set_status_3xx(1);
  EXPECT_THAT(
      Validate(batch).message(),
      HasSubstr("windows[0].http.status_*: status classes sum to 5, more than requests (4)"));
  batch = ValidBatch();
  batch.mutable_windows(0)->mutable_http()->set_status_1xx(std::numeric_limits<uint64_t>::max());
  EXPECT_THAT(Validate(batch).message(), HasSubstr("status classes sum to"));
  batch = ValidBatch();
  batch.mutable_windows(0)->mutable_http()->set_errors(1);
  EXPECT_THAT(Validate(batch).message(), HasSubstr("http.status_5xx: 2 exceeds errors (1)"));
}

TEST(ReportValidationTest, SumsMustBeFiniteAndNonNegative) {
  auto batch = ValidBatch();
  batch.mutable_windows(0)->mutable_http()->set_duration_sum_seconds(std::nan(""));
  EXPECT_THAT(Validate(batch).message(), HasSubstr("windows[0].http.duration_sum_seconds: is NaN"));
  batch = ValidBatch();
  batch.mutable_windows(1)->mutable_db()->set_duration_sum_seconds(-0.5);
  EXPECT_THAT(Validate(batch).message(),
              HasSubstr("windows[1].db.duration_sum_seconds: is negative (-0.5)"));
  batch = ValidBatch();
  batch.mutable_windows(0)->mutable_cache()->set_duration_sum_seconds(
      std::numeric_limits<double>::infinity());
  EXPECT_THAT(Validate(batch).message(), HasSubstr("cache.duration_sum_seconds: is infinite"));
}

TEST(ReportValidationTest, SloThresholds) {
  auto batch = ValidBatch();
  auto* http = batch.mutable_windows(0)->mutable_http();
  http->mutable_slo(1)->set_slow(3);
  http->mutable_slo(0)->set_slow(2);
  EXPECT_THAT(
      Validate(batch).message(),
      HasSubstr("windows[0].http.slo: slow count 3 above threshold 0.2s exceeds the count 2"));
  batch = ValidBatch();
  batch.mutable_windows(0)->mutable_http()->mutable_slo(0)->set_slow(9);
  EXPECT_THAT(Validate(batch).message(), HasSubstr("http.slo[0].slow: 9 exceeds requests (4)"));
  batch = ValidBatch();
  batch.mutable_windows(0)->mutable_http()->mutable_slo(1)->set_threshold_seconds(0.1);
  EXPECT_THAT(Validate(batch).message(),
              HasSubstr("slo[1].threshold_seconds: duplicate threshold"));
  batch = ValidBatch();
  batch.mutable_windows(0)->mutable_http()->mutable_slo(1)->set_threshold_seconds(-1);
  EXPECT_THAT(Validate(batch).message(), HasSubstr("must be a finite number > 0"));
  batch = ValidBatch();
  for (int i = 0; i < 7; ++i) {
    auto* slo = batch.mutable_windows(0)->mutable_http()->add_slo();
    slo->set_threshold_seconds(1.0 + i);
  }
  EXPECT_THAT(Validate(batch).message(), HasSubstr("http.slo: has 9 thresholds, more than"));
}

TEST(ReportValidationTest, CacheCounts) {
  auto batch = ValidBatch();
  batch.mutable_windows(0)->mutable_cache()->set_hits(3);
  EXPECT_THAT(Validate(batch).message(),
              HasSubstr("windows[0].cache.hits: hits + misses (4) exceed commands (3)"));
  batch.mutable_windows(0)->mutable_cache()->set_server_wide(true);
  EXPECT_TRUE(Validate(batch).ok());
  batch.mutable_windows(0)->mutable_cache()->set_errors(4);
  EXPECT_THAT(Validate(batch).message(), HasSubstr("cache.errors: 4 exceeds commands (3)"));
  batch = ValidBatch();
  batch.mutable_windows(0)->mutable_db()->set_errors(3);
  EXPECT_THAT(Validate(batch).message(), HasSubstr("db.errors: 3 exceeds queries (2)"));
}

TEST(ReportValidationTest, SketchesAreValidatedAndBoundedByTheirSignal) {
  auto batch = ValidBatch();
  batch.mutable_windows(0)->mutable_http()->mutable_latency()->set_schema(42);
  EXPECT_THAT(Validate(batch).message(), HasSubstr("windows[0].http.latency: "));
  batch = ValidBatch();
  // A sketch that counts more events than its signal had: take the db sketch (2 queries) and
  // put it on a signal with fewer.
  auto* db = batch.mutable_windows(0)->mutable_db();
  db->set_queries(2);
  *batch.mutable_windows(0)->mutable_cache()->mutable_latency() = db->latency();
  batch.mutable_windows(0)->mutable_cache()->set_commands(2);
  batch.mutable_windows(0)->mutable_cache()->set_hits(1);
  batch.mutable_windows(0)->mutable_cache()->set_misses(0);
  batch.mutable_windows(0)->mutable_cache()->set_errors(0);
  EXPECT_TRUE(Validate(batch).ok()) << Validate(batch);
  batch.mutable_windows(0)->mutable_cache()->set_commands(1);
  batch.mutable_windows(0)->mutable_cache()->set_hits(0);
  EXPECT_THAT(Validate(batch).message(),
              HasSubstr("windows[0].cache.latency.count: 2 exceeds commands (1)"));
}

TEST(ReportValidationTest, ProblemListIsBounded) {
  auto batch = ValidBatch();
  for (int i = 0; i < 2; ++i) {
    auto* http = batch.mutable_windows(i)->mutable_http();
    http->set_errors(100);
    http->set_duration_sum_seconds(-1);
    http->set_status_2xx(100);
    http->mutable_slo(0)->set_slow(100);
    http->mutable_slo(1)->set_slow(100);
  }
  ReportLimits limits;
  limits.max_reported_problems = 3;
  const absl::Status st = ValidateReportBatch(batch, limits);
  EXPECT_THAT(st.message(), HasSubstr("more problems"));
  EXPECT_THAT(st.message(), Not(HasSubstr("windows[1]")));
}

TEST(ReportValidationTest, HostileStringsAreCutShortInMessages) {
  auto batch = ValidBatch();
  batch.mutable_pod()->set_pod_uid(std::string(100, 'u') + "\n");
  ReportLimits limits;
  limits.max_uid_length = 1000;
  const absl::Status st = ValidateReportBatch(batch, limits);
  EXPECT_THAT(st.message(), HasSubstr("...(101 bytes)"));
  EXPECT_LT(st.message().size(), 400u);
}

TEST(ParseReportBatchTest, DecodesValidBodies) {
  const std::string body = ValidBatch().SerializeAsString();
  const auto batch = ParseReportBatch(body, ReportLimits{});
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_EQ(batch->windows_size(), 2);
  EXPECT_EQ(batch->pod().pod_uid(), "6f1c2a9e-0d7b-4c0e-9a57-2b1f3c4d5e6f");
}

TEST(ParseReportBatchTest, OversizedBodyIs413AndGarbageIs400) {
  const std::string body = ValidBatch().SerializeAsString();
  ReportLimits small;
  small.max_body_bytes = body.size() - 1;
  const auto too_big = ParseReportBatch(body, small);
  EXPECT_EQ(HttpCodeOf(too_big.status()), 413);
  EXPECT_THAT(too_big.status().message(), HasSubstr("exceeds the limit of"));
  const auto garbage = ParseReportBatch("\xff\xff\xff\xff", ReportLimits{});
  EXPECT_EQ(HttpCodeOf(garbage.status()), 400);
  EXPECT_THAT(garbage.status().message(), HasSubstr("not a kpiscale.v1.ReportBatch"));
  auto invalid = ValidBatch();
  invalid.mutable_windows(0)->mutable_http()->set_errors(99);
  const auto bad = ParseReportBatch(invalid.SerializeAsString(), ReportLimits{});
  EXPECT_EQ(HttpCodeOf(bad.status()), 400);
  EXPECT_EQ(HttpCodeOf(absl::UnavailableError("x")), 503);
  EXPECT_EQ(HttpCodeOf(WithHttpCode(absl::UnavailableError("x"), 429)), 429);
  EXPECT_EQ(HttpCodeOf(absl::OkStatus()), 200);
  EXPECT_FALSE(AttachedHttpCode(absl::InternalError("x")).has_value());
}

std::string ReadSeed(const std::string& name) {
  std::ifstream in(std::string(KPISCALE_SOURCE_DIR) + "/tests/fuzz/corpus/report/" + name,
                   std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The fuzz seeds cover both sides of the validator, so the replay starts from accepted and
// refused bodies alike.
TEST(ParseReportBatchTest, FuzzSeedsAreAcceptedOrRefusedAsNamed) {
  for (const char* name : {"valid_full.bin", "minimal.bin", "server_wide.bin"}) {
    const auto batch = ParseReportBatch(ReadSeed(name), ReportLimits{});
    EXPECT_TRUE(batch.ok()) << name << ": " << batch.status();
  }
  const auto bad = ParseReportBatch(ReadSeed("invalid_counts.bin"), ReportLimits{});
  EXPECT_THAT(bad.status().message(), HasSubstr("windows[1].sequence: duplicate sequence 1"));
  EXPECT_THAT(bad.status().message(), HasSubstr("windows[0].http.errors: 5 exceeds requests (1)"));
}

TEST(DownwardApiLabelsTest, ParsesGoQuotedValues) {
  const auto labels = ParseDownwardApiLabels(
      "app=\"checkout\"\npod-template-hash=\"7d9f\"\nnote=\"a \\\"q\\\" \\u00e9\\n\"\n\n");
  ASSERT_TRUE(labels.ok()) << labels.status();
  ASSERT_EQ(labels->size(), 3u);
  EXPECT_EQ((*labels)[0], (std::pair<std::string, std::string>("app", "checkout")));
  EXPECT_EQ((*labels)[2].second, "a \"q\" \xc3\xa9\n");
  EXPECT_THAT(ParseDownwardApiLabels("app=checkout").status().message(),
              HasSubstr("line 1: value must be a double-quoted string"));
  EXPECT_THAT(ParseDownwardApiLabels("a=\"x\"\nnovalue").status().message(), HasSubstr("line 2"));
  EXPECT_THAT(ParseDownwardApiLabels("a=\"\\u12\"").status().message(), HasSubstr("line 1"));
}

}  // namespace
}  // namespace kpiscale::common
