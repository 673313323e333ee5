#include <gtest/gtest.h>
#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <string>

#include "kpiscale/adapter/auth/delegated.h"
#include "kpiscale/adapter/auth/stats.h"

namespace kpiscale::adapter::auth {
namespace {

std::string Exposition(const std::shared_ptr<AuthStats>& stats) {
  return prometheus::TextSerializer{}.Serialize(NewAuthStatsCollector(stats)->Collect());
}

bool Has(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

TEST(AuthStatsTest, EveryBoundedSeriesIsExportedFromZero) {
  auto stats = std::make_shared<AuthStats>();
  const std::string text = Exposition(stats);
  EXPECT_TRUE(Has(text, "# TYPE kpiscale_adapter_authentications_total counter")) << text;
  for (const char* m : {"requestheader", "client-cert", "token", "none"}) {
    for (const char* r : {"success", "failure", "error"}) {
      EXPECT_TRUE(Has(text, std::string("kpiscale_adapter_authentications_total{method=\"") + m +
                                "\",result=\"" + r + "\"} 0"))
          << m << " " << r;
    }
  }
  for (const char* reason : {"no_token", "bad_token", "not_service_account", "foreign_namespace",
                             "foreign_pod", "unavailable"}) {
    EXPECT_TRUE(Has(text, std::string("kpiscale_adapter_ingest_auth_rejections_total{reason=\"") +
                              reason + "\"} 0"));
  }
  EXPECT_TRUE(Has(text, "kpiscale_adapter_kube_api_unavailable_total{call=\"configmap_watch\"} 0"));
}

TEST(AuthStatsTest, CountersMoveUnderTheirOwnLabels) {
  auto stats = std::make_shared<AuthStats>();
  stats->Authentication(AuthnMethod::kClientCert, AuthnResult::kSuccess);
  stats->Authentication(AuthnMethod::kClientCert, AuthnResult::kSuccess);
  stats->Authentication(AuthnMethod::kToken, AuthnResult::kError);
  stats->TokenCache(CacheLookup::kHit);
  stats->AccessReview(ReviewResult::kNegative);
  stats->Authorization(AuthzDecision::kDeny);
  stats->KubeApiUnavailable(KubeCall::kSubjectAccessReview);
  stats->WatchRestarted(WatchRestart::kGone);
  stats->ConfigLoad(true);
  const std::string text = Exposition(stats);
  EXPECT_TRUE(Has(
      text, "kpiscale_adapter_authentications_total{method=\"client-cert\",result=\"success\"} 2"));
  EXPECT_TRUE(
      Has(text, "kpiscale_adapter_authentications_total{method=\"token\",result=\"error\"} 1"));
  EXPECT_TRUE(
      Has(text, "kpiscale_adapter_authentications_total{method=\"token\",result=\"success\"} 0"));
  EXPECT_TRUE(Has(text, "kpiscale_adapter_token_review_cache_lookups_total{result=\"hit\"} 1"));
  EXPECT_TRUE(Has(text, "kpiscale_adapter_subject_access_reviews_total{result=\"denied\"} 1"));
  EXPECT_TRUE(Has(text, "kpiscale_adapter_authorization_decisions_total{decision=\"deny\"} 1"));
  EXPECT_TRUE(
      Has(text, "kpiscale_adapter_kube_api_unavailable_total{call=\"subject_access_review\"} 1"));
  EXPECT_TRUE(
      Has(text, "kpiscale_adapter_authentication_config_watch_restarts_total{reason=\"gone\"} 1"));
  EXPECT_TRUE(
      Has(text, "kpiscale_adapter_authentication_config_loads_total{result=\"success\"} 1"));
}

TEST(AuthStatsTest, IngestRefusalsAreCountedByReason) {
  auto stats = std::make_shared<AuthStats>();
  const std::string dir = ::testing::TempDir();
  const std::string file = dir + "/auth_stats_ingest_token";
  {
    FILE* f = std::fopen(file.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("s3cret\n", f);
    std::fclose(f);
  }
  auto ingest = IngestAuthenticator::FromTokenFile(file, stats.get());
  ASSERT_TRUE(ingest.ok()) << ingest.status();
  EXPECT_FALSE((*ingest)->Authenticate("").ok());
  EXPECT_FALSE((*ingest)->Authenticate("Bearer nope").ok());
  EXPECT_FALSE((*ingest)->Authenticate("Bearer s3cretX").ok());
  EXPECT_TRUE((*ingest)->Authenticate("Bearer s3cret").ok());
  EXPECT_EQ(stats->ingest_rejected(IngestRejection::kNoToken), 1u);
  EXPECT_EQ(stats->ingest_rejected(IngestRejection::kBadToken), 2u);
  const IngestIdentity pod{"system:serviceaccount:a:app", "a", "web-1"};
  EXPECT_TRUE((*ingest)->Admit(pod, "a", "web-1").ok());
  EXPECT_EQ((*ingest)->Admit(pod, "b", "web-1").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ((*ingest)->Admit(pod, "a", "web-2").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(stats->ingest_rejected(IngestRejection::kForeignNamespace), 1u);
  EXPECT_EQ(stats->ingest_rejected(IngestRejection::kForeignPod), 1u);
  std::remove(file.c_str());
}

}  // namespace
}  // namespace kpiscale::adapter::auth
