#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace prometheus {
class Collectable;
}  // namespace prometheus

namespace kpiscale::adapter::auth {

/// Which authenticator decided a request (`method` label).
enum class AuthnMethod { kRequestHeader, kClientCert, kToken, kNone };
/// success: a user; failure: bad or missing credentials (401); error: the Kubernetes API could
/// not review the credentials (503).
enum class AuthnResult { kSuccess, kFailure, kError };
/// What a TokenReview or SubjectAccessReview answered: authenticated/allowed, or
/// unauthenticated/denied, or no usable answer.
enum class ReviewResult { kPositive, kNegative, kError };
enum class CacheLookup { kHit, kMiss };
enum class AuthzDecision { kAllow, kDeny, kError };
/// The Kubernetes API calls whose failure is counted (each failure means a 503 or stale trust).
enum class KubeCall { kTokenReview, kSubjectAccessReview, kConfigMapList, kConfigMapWatch };
/// Why an ingest batch was dropped before it reached the store.
enum class IngestRejection {
  kNoToken,
  kBadToken,
  kNotServiceAccount,
  kForeignNamespace,
  kForeignPod,
  kUnavailable
};
/// Why the extension-apiserver-authentication watch was re-established (always after a list).
enum class WatchRestart { kGone, kStreamEnd, kError };

/// Counters of the authentication, authorization and ingest-authentication paths. Every label
/// is one of the fixed enum values above, so the exported series are bounded. Exported on the
/// adapter's /metrics through NewAuthStatsCollector.
/// Thread-safety: all methods may be called concurrently (relaxed atomics).
class AuthStats final {
 public:
  void Authentication(AuthnMethod m, AuthnResult r) { Inc(authn_, Idx(m) * 3 + Idx(r)); }
  void TokenReview(ReviewResult r) { Inc(token_reviews_, Idx(r)); }
  void TokenCache(CacheLookup l) { Inc(token_cache_, Idx(l)); }
  void AccessReview(ReviewResult r) { Inc(access_reviews_, Idx(r)); }
  void AccessCache(CacheLookup l) { Inc(access_cache_, Idx(l)); }
  void Authorization(AuthzDecision d) { Inc(authz_, Idx(d)); }
  void KubeApiUnavailable(KubeCall c) { Inc(kube_unavailable_, Idx(c)); }
  void IngestRejected(IngestRejection r) { Inc(ingest_rejected_, Idx(r)); }
  void ConfigLoad(bool ok) { Inc(config_loads_, ok ? 0 : 1); }
  void WatchRestarted(WatchRestart r) { Inc(watch_restarts_, Idx(r)); }

  uint64_t authentications(AuthnMethod m, AuthnResult r) const {
    return Get(authn_, Idx(m) * 3 + Idx(r));
  }
  uint64_t token_reviews(ReviewResult r) const { return Get(token_reviews_, Idx(r)); }
  uint64_t token_cache(CacheLookup l) const { return Get(token_cache_, Idx(l)); }
  uint64_t access_reviews(ReviewResult r) const { return Get(access_reviews_, Idx(r)); }
  uint64_t access_cache(CacheLookup l) const { return Get(access_cache_, Idx(l)); }
  uint64_t authorizations(AuthzDecision d) const { return Get(authz_, Idx(d)); }
  uint64_t kube_api_unavailable(KubeCall c) const { return Get(kube_unavailable_, Idx(c)); }
  uint64_t ingest_rejected(IngestRejection r) const { return Get(ingest_rejected_, Idx(r)); }
  uint64_t config_loads(bool ok) const { return Get(config_loads_, ok ? 0 : 1); }
  uint64_t watch_restarts(WatchRestart r) const { return Get(watch_restarts_, Idx(r)); }

 private:
  template <std::size_t N>
  using Counters = std::array<std::atomic<uint64_t>, N>;

  template <typename E>
  static constexpr std::size_t Idx(E e) {
    return static_cast<std::size_t>(e);
  }
  template <std::size_t N>
  static void Inc(Counters<N>& c, std::size_t i) {
    c[i].fetch_add(1, std::memory_order_relaxed);
  }
  template <std::size_t N>
  static uint64_t Get(const Counters<N>& c, std::size_t i) {
    return c[i].load(std::memory_order_relaxed);
  }

  friend class AuthStatsCollector;
  Counters<12> authn_{};
  Counters<3> token_reviews_{};
  Counters<2> token_cache_{};
  Counters<3> access_reviews_{};
  Counters<2> access_cache_{};
  Counters<3> authz_{};
  Counters<4> kube_unavailable_{};
  Counters<6> ingest_rejected_{};
  Counters<2> config_loads_{};
  Counters<3> watch_restarts_{};
};

/// A prometheus Collectable exporting `stats` as the kpiscale_adapter_authentications_total,
/// _token_reviews_total, _token_review_cache_lookups_total, _subject_access_reviews_total,
/// _subject_access_review_cache_lookups_total, _authorization_decisions_total,
/// _kube_api_unavailable_total, _ingest_auth_rejections_total,
/// _authentication_config_loads_total and _authentication_config_watch_restarts_total counter
/// families (every label value always present, starting at 0).
/// Thread-safety: Collect may run concurrently with the counters moving.
std::shared_ptr<prometheus::Collectable> NewAuthStatsCollector(
    std::shared_ptr<const AuthStats> stats);

}  // namespace kpiscale::adapter::auth
