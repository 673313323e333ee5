#include "kpiscale/adapter/auth/stats.h"

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <string>
#include <utility>
#include <vector>

namespace kpiscale::adapter::auth {

class AuthStatsCollector final : public prometheus::Collectable {
 public:
  explicit AuthStatsCollector(std::shared_ptr<const AuthStats> stats) : stats_(std::move(stats)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    const AuthStats& s = *stats_;
    std::vector<prometheus::MetricFamily> out;
    {
      auto& f = Family(&out, "kpiscale_adapter_authentications_total",
                       "Secure-port requests by the authenticator that decided them and the "
                       "outcome (error: the Kubernetes API could not review, answered 503).");
      static const char* kMethods[] = {"requestheader", "client-cert", "token", "none"};
      static const char* kResults[] = {"success", "failure", "error"};
      for (std::size_t m = 0; m < 4; ++m) {
        for (std::size_t r = 0; r < 3; ++r) {
          Add(&f, {{"method", kMethods[m]}, {"result", kResults[r]}}, s.authn_[m * 3 + r]);
        }
      }
    }
    Labelled(&out, "kpiscale_adapter_token_reviews_total",
             "TokenReviews sent to the Kubernetes API by answer.", "result",
             {"authenticated", "unauthenticated", "error"}, s.token_reviews_);
    Labelled(&out, "kpiscale_adapter_token_review_cache_lookups_total",
             "Bearer-token cache lookups (a miss sends a TokenReview).", "result", {"hit", "miss"},
             s.token_cache_);
    Labelled(&out, "kpiscale_adapter_subject_access_reviews_total",
             "SubjectAccessReviews sent to the Kubernetes API by answer.", "result",
             {"allowed", "denied", "error"}, s.access_reviews_);
    Labelled(&out, "kpiscale_adapter_subject_access_review_cache_lookups_total",
             "Authorization cache lookups (a miss sends a SubjectAccessReview).", "result",
             {"hit", "miss"}, s.access_cache_);
    Labelled(&out, "kpiscale_adapter_authorization_decisions_total",
             "Authorization decisions of authenticated requests (bypasses included).", "decision",
             {"allow", "deny", "error"}, s.authz_);
    Labelled(&out, "kpiscale_adapter_kube_api_unavailable_total",
             "Kubernetes API calls that got no usable answer (transport error, 429/5xx after "
             "retries, or a refusal of the adapter's own credentials).",
             "call", {"token_review", "subject_access_review", "configmap_list", "configmap_watch"},
             s.kube_unavailable_);
    Labelled(&out, "kpiscale_adapter_ingest_auth_rejections_total",
             "Report batches refused by ingest authentication and dropped, by reason.", "reason",
             {"no_token", "bad_token", "not_service_account", "foreign_namespace", "foreign_pod",
              "unavailable"},
             s.ingest_rejected_);
    Labelled(&out, "kpiscale_adapter_authentication_config_loads_total",
             "Loads of kube-system/extension-apiserver-authentication (list or watch event).",
             "result", {"success", "failure"}, s.config_loads_);
    Labelled(&out, "kpiscale_adapter_authentication_config_watch_restarts_total",
             "Re-lists of extension-apiserver-authentication after its watch ended.", "reason",
             {"gone", "stream_end", "error"}, s.watch_restarts_);
    return out;
  }

 private:
  static prometheus::MetricFamily& Family(std::vector<prometheus::MetricFamily>* out,
                                          const char* name, const char* help) {
    prometheus::MetricFamily f;
    f.name = name;
    f.help = help;
    f.type = prometheus::MetricType::Counter;
    out->push_back(std::move(f));
    return out->back();
  }

  static void Add(prometheus::MetricFamily* f, std::vector<prometheus::ClientMetric::Label> labels,
                  const std::atomic<uint64_t>& value) {
    prometheus::ClientMetric m;
    m.label = std::move(labels);
    m.counter.value = static_cast<double>(value.load(std::memory_order_relaxed));
    f->metric.push_back(std::move(m));
  }

  template <std::size_t N>
  static void Labelled(std::vector<prometheus::MetricFamily>* out, const char* name,
                       const char* help, const char* label, const std::vector<const char*>& values,
                       const AuthStats::Counters<N>& counters) {
    auto& f = Family(out, name, help);
    for (std::size_t i = 0; i < N && i < values.size(); ++i) {
      Add(&f, {{label, values[i]}}, counters[i]);
    }
  }

  std::shared_ptr<const AuthStats> stats_;
};

std::shared_ptr<prometheus::Collectable> NewAuthStatsCollector(
    std::shared_ptr<const AuthStats> stats) {
  return std::make_shared<AuthStatsCollector>(std::move(stats));
}

}  // namespace kpiscale::adapter::auth
