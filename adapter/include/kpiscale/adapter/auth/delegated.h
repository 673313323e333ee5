#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kpiscale/adapter/auth.h"
#include "kpiscale/adapter/auth/stats.h"
#include "kpiscale/common/clock.h"
#include "kpiscale/common/kube_client.h"

namespace kpiscale::adapter::auth {

/// The trust settings of `kube-system/extension-apiserver-authentication` (kubernetes-metrics-api
/// §7). Header names are lower-case; defaults are the apiserver's.
struct AuthnSettings {
  std::string client_ca_pem;
  std::string requestheader_ca_pem;
  std::vector<std::string> allowed_names;  // empty: any CN
  std::vector<std::string> username_headers{"x-remote-user"};
  std::vector<std::string> group_headers{"x-remote-group"};
  std::vector<std::string> extra_prefixes{"x-remote-extra-"};
  std::vector<std::string> uid_headers;
};

/// Parses the ConfigMap JSON (as GET returns it). Lists are JSON arrays inside strings; absent
/// keys keep the defaults. Also returns metadata.resourceVersion in *resource_version.
absl::StatusOr<AuthnSettings> ParseAuthenticationConfigMap(const std::string& json,
                                                           std::string* resource_version);

/// Flags that override the ConfigMap (unset = take the ConfigMap's value).
struct AuthnOverrides {
  std::string client_ca_file;
  std::string requestheader_client_ca_file;
  std::optional<std::vector<std::string>> allowed_names;
  std::optional<std::vector<std::string>> username_headers;
  std::optional<std::vector<std::string>> group_headers;
  std::optional<std::vector<std::string>> extra_prefixes;
};

/// Applies the overrides (reading the CA files) to `settings`; header names are lower-cased.
absl::Status ApplyOverrides(const AuthnOverrides& overrides, AuthnSettings* settings);

/// Keeps the current AuthnSettings of kube-system/extension-apiserver-authentication the way an
/// aggregated apiserver's informer does: a list (`fieldSelector=metadata.name=...`, which the
/// Role extension-apiserver-authentication-reader allows), then a watch from the list's
/// resourceVersion. ADDED/MODIFIED events replace the settings at once (a rotated CA is trusted
/// on the next request), DELETED keeps the last settings, BOOKMARK advances the
/// resourceVersion. When the watch ends (410 Gone as an ERROR event or HTTP status, the stream
/// closing, e.g. at its timeoutSeconds = `relist`, or any error) the source lists again and
/// re-watches, backing off exponentially (100 ms doubling to 30 s) unless the ended watch was
/// healthy. A failed load keeps the last settings; every step is counted in `stats`.
/// Thread-safety: Current() may be called concurrently with the reloads.
class AuthnConfigSource {
 public:
  /// Lists once (an error when the ConfigMap cannot be read: without the front-proxy CA the
  /// aggregator's requests could not be served), then watches on a background thread.
  static absl::StatusOr<std::unique_ptr<AuthnConfigSource>> Start(
      std::shared_ptr<common::KubeClient> client, AuthnOverrides overrides,
      std::chrono::milliseconds relist, AuthStats* stats);
  /// Fixed settings (tests, --client-ca-file-only setups): no reloads.
  static std::unique_ptr<AuthnConfigSource> Fixed(AuthnSettings settings);
  /// Ends the watch (interrupting the blocked read) and joins the thread.
  ~AuthnConfigSource();
  AuthnConfigSource(const AuthnConfigSource&) = delete;
  AuthnConfigSource& operator=(const AuthnConfigSource&) = delete;

  std::shared_ptr<const AuthnSettings> Current() const;
  /// The resourceVersion the next watch starts from (list, event or bookmark).
  std::string resource_version() const;

 private:
  enum class WatchEnd { kNone, kGone, kStreamEnd, kError };
  AuthnConfigSource() = default;
  absl::Status List();
  absl::Status ListUnchecked();  // may throw nlohmann::json::exception
  /// Applies one ConfigMap object (JSON) with the overrides; false when it does not parse.
  absl::Status Apply(const std::string& configmap_json, const char* how);
  /// Runs one watch until it ends; `*healthy` when it delivered an event.
  WatchEnd Watch(bool* healthy);
  bool OnEvent(std::string_view line, WatchEnd* end, bool* healthy);
  bool OnEventUnchecked(std::string_view line, WatchEnd* end, bool* healthy);  // may throw
  void Loop();
  bool Stopping() const;

  std::shared_ptr<common::KubeClient> client_;
  AuthnOverrides overrides_;
  std::chrono::milliseconds relist_{300000};
  AuthStats* stats_ = nullptr;
  common::StreamCanceller canceller_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::shared_ptr<const AuthnSettings> current_;
  std::string resource_version_;
  std::thread thread_;
};

/// Verifies the TLS peer of `ssl` against the CA bundle `ca_pem` for client use, returning the
/// leaf's CN and O values; an error (Unauthenticated) when it does not chain. NotFound when the
/// peer sent no certificate.
struct CertIdentity {
  std::string common_name;
  std::vector<std::string> organizations;
};
absl::StatusOr<CertIdentity> VerifyPeerCertificate(const SSL* ssl, const std::string& ca_pem);

struct AuthenticatorOptions {
  std::chrono::milliseconds token_cache_ttl{10000};
  /// TokenReview spec.audiences; empty = the API server's audience.
  std::vector<std::string> audiences;
  bool anonymous = false;
};

/// The delegating authenticator of an aggregated apiserver: request-header (front-proxy)
/// certificates, then client certificates, then bearer tokens via TokenReview (cached). Every
/// user gets `system:authenticated`. Bad credentials: Unauthenticated (401); the Kubernetes API
/// unreachable when a token had to be reviewed: Unavailable (503).
/// Thread-safety: Authenticate may be called concurrently.
AuthenticatorPtr NewDelegatingAuthenticator(std::shared_ptr<AuthnConfigSource> config,
                                            std::shared_ptr<common::KubeClient> client,
                                            AuthenticatorOptions options,
                                            const common::Clock& clock, AuthStats* stats);

/// The result of one TokenReview (shared by the API authenticator and ingest).
/// Unauthenticated for a rejected token, Unavailable when the API could not answer.
/// Thread-safety: concurrent calls are fine.
class TokenReviewer {
 public:
  TokenReviewer(std::shared_ptr<common::KubeClient> client, std::vector<std::string> audiences,
                std::chrono::milliseconds ttl, const common::Clock& clock, AuthStats* stats);
  absl::StatusOr<UserInfo> Review(const std::string& token);

 private:
  absl::StatusOr<UserInfo> ReviewUnchecked(const std::string& token);  // may throw
  struct Entry {
    std::chrono::steady_clock::time_point expires;
    std::optional<UserInfo> user;  // nullopt: rejected
  };
  std::shared_ptr<common::KubeClient> client_;
  std::vector<std::string> audiences_;
  std::chrono::milliseconds ttl_;
  const common::Clock& clock_;
  AuthStats* stats_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> cache_;  // key: SHA-256 of the token, never the token
};

struct AuthorizerOptions {
  std::chrono::milliseconds allow_ttl{10000};
  std::chrono::milliseconds deny_ttl{10000};
  /// Non-resource paths that skip authorization; a trailing `*` is a prefix match.
  std::vector<std::string> always_allow_paths{"/healthz", "/livez", "/readyz"};
  std::vector<std::string> always_allow_groups{"system:masters"};
};

/// SubjectAccessReview (authorization.k8s.io/v1) with separate allow/deny caches; members of
/// system:masters and the always-allow paths bypass it. Unavailable when the API cannot answer.
/// Thread-safety: Authorize may be called concurrently.
AuthorizerPtr NewDelegatingAuthorizer(std::shared_ptr<common::KubeClient> client,
                                      AuthorizerOptions options, const common::Clock& clock,
                                      AuthStats* stats);

/// The SubjectAccessReview request body for `attributes` (exposed for tests and docs).
std::string SubjectAccessReviewJson(const RequestAttributes& attributes);

/// The apiserver's 403 message: `forbidden: User "u" cannot get resource "pods/m" in API group
/// "custom.metrics.k8s.io" in the namespace "ns"` or `... cannot get path "/apis"`.
std::string ForbiddenMessage(const RequestAttributes& attributes);

/// Who may push a report: from a projected service-account token (TokenReview with the ingest
/// audience) or the --local shared token file.
struct IngestIdentity {
  std::string user;
  std::string ns;        // empty: any namespace (local shared token)
  std::string pod_name;  // empty: any pod of ns
};

/// Authenticates POST /v1/reports and checks a batch's pod against the identity.
/// Thread-safety: concurrent calls are fine.
class IngestAuthenticator {
 public:
  /// In a cluster: TokenReview with `audience`.
  IngestAuthenticator(std::shared_ptr<common::KubeClient> client, std::string audience,
                      std::chrono::milliseconds ttl, const common::Clock& clock, AuthStats* stats);
  /// --local: the token in `token_file` (compared in constant time).
  static absl::StatusOr<std::unique_ptr<IngestAuthenticator>> FromTokenFile(
      const std::string& token_file, AuthStats* stats);

  /// `authorization` is the Authorization header value. Unauthenticated (401) without a valid
  /// bearer token, PermissionDenied (403) for a token that is not a service account's,
  /// Unavailable (503) when TokenReview could not be asked. Every refusal is counted.
  absl::StatusOr<IngestIdentity> Authenticate(std::string_view authorization);
  /// PermissionDenied (403) when the batch is for another namespace or pod.
  static absl::Status CheckPod(const IngestIdentity& identity, std::string_view ns,
                               std::string_view pod_name);
  /// CheckPod, counting a refusal (foreign_namespace / foreign_pod) in the stats.
  absl::Status Admit(const IngestIdentity& identity, std::string_view ns,
                     std::string_view pod_name);

 private:
  IngestAuthenticator() = default;
  std::unique_ptr<TokenReviewer> reviewer_;
  std::string static_token_;
  AuthStats* stats_ = nullptr;
};

/// The bearer token of an Authorization header value, or empty.
std::string_view BearerToken(std::string_view authorization);

}  // namespace kpiscale::adapter::auth
