// gcc -O2 reports a false -Wnull-dereference inside nlohmann::json's inlined accessors.
#pragma GCC diagnostic ignored "-Wnull-dereference"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "kpiscale/adapter/auth/delegated.h"
#include "kpiscale/common/logging.h"
#include "kpiscale/common/status.h"

namespace kpiscale::adapter::auth {
namespace {

constexpr char kAuthenticated[] = "system:authenticated";
constexpr char kPodNameExtra[] = "authentication.kubernetes.io/pod-name";

std::string NameEntry(X509_NAME* name, int nid, int* last) {
  *last = X509_NAME_get_index_by_NID(name, nid, *last);
  if (*last < 0) return "";
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, *last));
  unsigned char* utf8 = nullptr;
  const int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) return "";
  std::string out(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

struct StoreDeleter {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
struct StoreCtxDeleter {
  void operator()(X509_STORE_CTX* s) const { X509_STORE_CTX_free(s); }
};

// url.PathUnescape: every escape decoded, or (any bad escape) the key unchanged, as
// k8s.io/apiserver headerrequest.unescapeExtraKey does.
std::string PathUnescapeOrKeep(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      return std::string(s);
    }
    out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
    i += 2;
  }
  return out;
}

void AddGroup(UserInfo* u, const std::string& g) {
  if (std::find(u->groups.begin(), u->groups.end(), g) == u->groups.end()) u->groups.push_back(g);
}

std::string Sha256Hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(hex[md[i] >> 4]);
    out.push_back(hex[md[i] & 15]);
  }
  return out;
}

class DelegatingAuthenticator final : public Authenticator {
 public:
  DelegatingAuthenticator(std::shared_ptr<AuthnConfigSource> config,
                          std::shared_ptr<common::KubeClient> client, AuthenticatorOptions options,
                          const common::Clock& clock, AuthStats* stats)
      : config_(std::move(config)), options_(options), stats_(stats) {
    if (client) {
      tokens_ = std::make_unique<TokenReviewer>(std::move(client), options.audiences,
                                                options.token_cache_ttl, clock, stats);
    }
  }

  absl::StatusOr<std::optional<UserInfo>> Authenticate(const AuthRequest& r) override {
    const auto settings = config_->Current();
    // Union semantics (k8s.io/apiserver union.New, FailOnError=false): the first authenticator
    // that succeeds wins; if none does and one failed, the request is unauthorized.
    absl::Status failure = absl::OkStatus();
    AuthnMethod failed = AuthnMethod::kNone;
    auto result = RequestHeader(*settings, r);
    if (result.ok() && result->has_value()) {
      return Finish(AuthnMethod::kRequestHeader, std::move(**result));
    }
    // A front-proxy certificate with a CN outside the allowed names is the request-header
    // authenticator's failure, whatever the client-certificate authenticator says after it.
    bool front_proxy_refused = false;
    if (!result.ok()) {
      failure = result.status();
      failed = AuthnMethod::kRequestHeader;
      front_proxy_refused = absl::IsPermissionDenied(result.status());
    }
    result = ClientCert(*settings, r);
    if (result.ok() && result->has_value()) {
      return Finish(AuthnMethod::kClientCert, std::move(**result));
    }
    if (!result.ok() && !front_proxy_refused) {
      failure = result.status();
      failed = AuthnMethod::kClientCert;
    }
    result = Token(r);
    if (result.ok() && result->has_value()) return Finish(AuthnMethod::kToken, std::move(**result));
    if (!result.ok()) {
      // The API being down is not the client's fault: 503, not 401.
      if (absl::IsUnavailable(result.status())) {
        Count(AuthnMethod::kToken, AuthnResult::kError);
        return result.status();
      }
      failure = result.status();
      failed = AuthnMethod::kToken;
    }
    if (!failure.ok()) {
      Count(failed, AuthnResult::kFailure);
      return absl::UnauthenticatedError(failure.message());
    }
    if (options_.anonymous) {
      Count(AuthnMethod::kNone, AuthnResult::kSuccess);
      return std::optional<UserInfo>();
    }
    Count(AuthnMethod::kNone, AuthnResult::kFailure);
    return absl::UnauthenticatedError("no credentials");
  }

 private:
  void Count(AuthnMethod m, AuthnResult r) {
    if (stats_ != nullptr) stats_->Authentication(m, r);
  }

  absl::StatusOr<std::optional<UserInfo>> Finish(AuthnMethod m, UserInfo u) {
    Count(m, AuthnResult::kSuccess);
    AddGroup(&u, kAuthenticated);
    return std::optional<UserInfo>(std::move(u));
  }

  absl::StatusOr<std::optional<UserInfo>> RequestHeader(const AuthnSettings& s,
                                                        const AuthRequest& r) {
    if (r.ssl == nullptr || s.requestheader_ca_pem.empty()) return std::optional<UserInfo>();
    auto id = VerifyPeerCertificate(r.ssl, s.requestheader_ca_pem);
    if (absl::IsNotFound(id.status())) return std::optional<UserInfo>();
    if (!id.ok()) return id.status();
    if (!s.allowed_names.empty() && std::find(s.allowed_names.begin(), s.allowed_names.end(),
                                              id->common_name) == s.allowed_names.end()) {
      // PermissionDenied only to tell Authenticate which authenticator refused; the request
      // still gets 401 (Unauthenticated), as in Kubernetes.
      return absl::PermissionDeniedError(absl::StrCat("request-header client certificate CN ",
                                                      id->common_name, " is not allowed"));
    }
    UserInfo u;
    for (const auto& h : s.username_headers) {
      for (auto v : r.HeaderValues(h)) {
        if (!v.empty() && u.name.empty()) u.name = std::string(v);
      }
    }
    if (u.name.empty()) return std::optional<UserInfo>();
    for (const auto& h : s.uid_headers) {
      for (auto v : r.HeaderValues(h)) {
        if (!v.empty() && u.uid.empty()) u.uid = std::string(v);
      }
    }
    for (const auto& h : s.group_headers) {
      for (auto v : r.HeaderValues(h)) u.groups.emplace_back(v);
    }
    for (const auto& prefix : s.extra_prefixes) {
      for (const auto& [name, value] : r.headers) {
        if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
        // Lower-cased first (header names are case-insensitive), then unescaped, so an escaped
        // upper-case character survives, exactly as in Kubernetes.
        std::string key(std::string_view(name).substr(prefix.size()));
        absl::AsciiStrToLower(&key);
        u.extra[PathUnescapeOrKeep(key)].push_back(value);
      }
    }
    return std::optional<UserInfo>(std::move(u));
  }

  absl::StatusOr<std::optional<UserInfo>> ClientCert(const AuthnSettings& s, const AuthRequest& r) {
    if (r.ssl == nullptr || s.client_ca_pem.empty()) return std::optional<UserInfo>();
    auto id = VerifyPeerCertificate(r.ssl, s.client_ca_pem);
    if (absl::IsNotFound(id.status())) return std::optional<UserInfo>();
    if (!id.ok()) return id.status();
    UserInfo u;
    u.name = id->common_name;
    u.groups = id->organizations;
    return std::optional<UserInfo>(std::move(u));
  }

  absl::StatusOr<std::optional<UserInfo>> Token(const AuthRequest& r) {
    std::string_view token;
    for (auto v : r.HeaderValues("authorization")) {
      token = BearerToken(v);
      if (!token.empty()) break;
    }
    if (token.empty()) return std::optional<UserInfo>();
    if (!tokens_) return absl::UnauthenticatedError("bearer tokens are not accepted");
    KPISCALE_ASSIGN_OR_RETURN(auto u, tokens_->Review(std::string(token)));
    return std::optional<UserInfo>(std::move(u));
  }

  std::shared_ptr<AuthnConfigSource> config_;
  AuthenticatorOptions options_;
  AuthStats* stats_;
  std::unique_ptr<TokenReviewer> tokens_;
};

}  // namespace

std::string_view BearerToken(std::string_view authorization) {
  auto strip = [](std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() &&
           (v.back() == ' ' || v.back() == '\t' || v.back() == '\r' || v.back() == '\n')) {
      v.remove_suffix(1);
    }
    return v;
  };
  authorization = strip(authorization);
  if (authorization.size() < 7) return {};
  std::string scheme(authorization.substr(0, 7));
  absl::AsciiStrToLower(&scheme);
  if (scheme != "bearer ") return {};
  return strip(authorization.substr(7));
}

absl::StatusOr<CertIdentity> VerifyPeerCertificate(const SSL* ssl, const std::string& ca_pem) {
  X509* leaf = SSL_get0_peer_certificate(ssl);
  if (leaf == nullptr) return absl::NotFoundError("no client certificate");
  std::unique_ptr<X509_STORE, StoreDeleter> store(X509_STORE_new());
  BIO* bio = BIO_new_mem_buf(ca_pem.data(), static_cast<int>(ca_pem.size()));
  int added = 0;
  while (X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    added += X509_STORE_add_cert(store.get(), x);
    X509_free(x);
  }
  BIO_free(bio);
  if (added == 0) return absl::UnauthenticatedError("no CA to verify client certificates");
  std::unique_ptr<X509_STORE_CTX, StoreCtxDeleter> ctx(X509_STORE_CTX_new());
  // On a server the peer chain excludes the leaf: it holds the intermediates the client sent.
  STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl);
  if (X509_STORE_CTX_init(ctx.get(), store.get(), leaf, chain) != 1) {
    return absl::InternalError("X509_STORE_CTX_init failed");
  }
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
  if (X509_verify_cert(ctx.get()) != 1) {
    return absl::UnauthenticatedError(
        absl::StrCat("client certificate: ",
                     X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()))));
  }
  CertIdentity id;
  X509_NAME* subject = X509_get_subject_name(leaf);
  int last = -1;
  id.common_name = NameEntry(subject, NID_commonName, &last);
  last = -1;
  for (;;) {
    std::string o = NameEntry(subject, NID_organizationName, &last);
    if (last < 0) break;
    id.organizations.push_back(std::move(o));
  }
  return id;
}

AuthenticatorPtr NewDelegatingAuthenticator(std::shared_ptr<AuthnConfigSource> config,
                                            std::shared_ptr<common::KubeClient> client,
                                            AuthenticatorOptions options,
                                            const common::Clock& clock, AuthStats* stats) {
  return std::make_unique<DelegatingAuthenticator>(std::move(config), std::move(client), options,
                                                   clock, stats);
}

TokenReviewer::TokenReviewer(std::shared_ptr<common::KubeClient> client,
                             std::vector<std::string> audiences, std::chrono::milliseconds ttl,
                             const common::Clock& clock, AuthStats* stats)
    : client_(std::move(client)),
      audiences_(std::move(audiences)),
      ttl_(ttl),
      clock_(clock),
      stats_(stats) {}

absl::StatusOr<UserInfo> TokenReviewer::Review(const std::string& token) {
  // nlohmann::json throws on fields of the wrong type in the API's answer.
  try {
    return ReviewUnchecked(token);
  } catch (const nlohmann::json::exception& e) {
    if (stats_ != nullptr) {
      stats_->TokenReview(ReviewResult::kError);
      stats_->KubeApiUnavailable(KubeCall::kTokenReview);
    }
    return absl::UnavailableError(absl::StrCat("TokenReview: unusable answer: ", e.what()));
  }
}

absl::StatusOr<UserInfo> TokenReviewer::ReviewUnchecked(const std::string& token) {
  // Service-account and OIDC tokens are JWTs, bootstrap and static tokens printable ASCII:
  // anything else is not worth a TokenReview (and could not be sent as JSON as it is).
  if (token.size() > 16384 || std::any_of(token.begin(), token.end(), [](char c) {
        return static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f;
      })) {
    return absl::UnauthenticatedError("malformed bearer token");
  }
  const std::string key = Sha256Hex(token);
  const auto now = clock_.SteadyNow();
  {
    std::lock_guard lock(mu_);
    if (auto it = cache_.find(key); it != cache_.end()) {
      if (it->second.expires > now) {
        if (stats_ != nullptr) stats_->TokenCache(CacheLookup::kHit);
        if (!it->second.user) return absl::UnauthenticatedError("token rejected (cached)");
        return *it->second.user;
      }
      cache_.erase(it);
    }
    // Bounded: expired entries go first, then everything (a flood of distinct bad tokens).
    if (cache_.size() >= 10000) {
      for (auto it = cache_.begin(); it != cache_.end();) {
        it = it->second.expires <= now ? cache_.erase(it) : std::next(it);
      }
      if (cache_.size() >= 10000) cache_.clear();
    }
  }
  nlohmann::json req = {{"apiVersion", "authentication.k8s.io/v1"},
                        {"kind", "TokenReview"},
                        {"spec", {{"token", token}}}};
  if (!audiences_.empty()) req["spec"]["audiences"] = audiences_;
  if (stats_ != nullptr) stats_->TokenCache(CacheLookup::kMiss);
  auto res = client_->Post("/apis/authentication.k8s.io/v1/tokenreviews", req.dump());
  if (!res.ok() || (res->status != 201 && res->status != 200)) {
    if (stats_ != nullptr) {
      stats_->TokenReview(ReviewResult::kError);
      stats_->KubeApiUnavailable(KubeCall::kTokenReview);
    }
    return absl::UnavailableError(res.ok() ? absl::StrCat("TokenReview: HTTP ", res->status)
                                           : res.status().message());
  }
  auto j = nlohmann::json::parse(res->body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    if (stats_ != nullptr) {
      stats_->TokenReview(ReviewResult::kError);
      stats_->KubeApiUnavailable(KubeCall::kTokenReview);
    }
    return absl::UnavailableError("TokenReview: unparsable answer");
  }
  Entry e;
  e.expires = now + ttl_;
  const auto& st = j.value("status", nlohmann::json::object());
  bool audience_ok = true;
  if (!audiences_.empty() && st.contains("audiences") && st["audiences"].is_array()) {
    audience_ok = false;
    for (const auto& a : st["audiences"]) {
      if (a.is_string() && std::find(audiences_.begin(), audiences_.end(), a.get<std::string>()) !=
                               audiences_.end()) {
        audience_ok = true;
      }
    }
  }
  if (st.value("authenticated", false) && audience_ok && st.contains("user")) {
    const auto& ju = st["user"];
    UserInfo u;
    u.name = ju.value("username", "");
    u.uid = ju.value("uid", "");
    if (ju.contains("groups") && ju["groups"].is_array()) {
      for (const auto& g : ju["groups"]) {
        if (g.is_string()) u.groups.push_back(g.get<std::string>());
      }
    }
    if (ju.contains("extra") && ju["extra"].is_object()) {
      for (const auto& [k, v] : ju["extra"].items()) {
        if (!v.is_array()) continue;
        for (const auto& x : v) {
          if (x.is_string()) u.extra[k].push_back(x.get<std::string>());
        }
      }
    }
    if (!u.name.empty()) e.user = std::move(u);
  }
  if (stats_ != nullptr) {
    stats_->TokenReview(e.user ? ReviewResult::kPositive : ReviewResult::kNegative);
  }
  std::lock_guard lock(mu_);
  cache_[key] = e;
  if (!e.user) return absl::UnauthenticatedError("token rejected by TokenReview");
  return *e.user;
}

IngestAuthenticator::IngestAuthenticator(std::shared_ptr<common::KubeClient> client,
                                         std::string audience, std::chrono::milliseconds ttl,
                                         const common::Clock& clock, AuthStats* stats)
    : reviewer_(std::make_unique<TokenReviewer>(
          std::move(client), std::vector<std::string>{std::move(audience)}, ttl, clock, stats)),
      stats_(stats) {}

absl::StatusOr<std::unique_ptr<IngestAuthenticator>> IngestAuthenticator::FromTokenFile(
    const std::string& token_file, AuthStats* stats) {
  std::ifstream in(token_file, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ingest token file ", token_file));
  std::ostringstream s;
  s << in.rdbuf();
  std::unique_ptr<IngestAuthenticator> a(new IngestAuthenticator());
  a->static_token_ = std::string(absl::StripAsciiWhitespace(s.str()));
  if (a->static_token_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("ingest token file ", token_file, " is empty"));
  }
  a->stats_ = stats;
  return a;
}

absl::StatusOr<IngestIdentity> IngestAuthenticator::Authenticate(std::string_view authorization) {
  auto reject = [this](IngestRejection why, absl::Status st) {
    if (stats_ != nullptr) stats_->IngestRejected(why);
    return st;
  };
  const std::string_view token = BearerToken(authorization);
  if (token.empty()) {
    return reject(IngestRejection::kNoToken,
                  absl::UnauthenticatedError("a bearer token is required"));
  }
  IngestIdentity id;
  if (!static_token_.empty()) {
    if (token.size() != static_token_.size() ||
        CRYPTO_memcmp(token.data(), static_token_.data(), token.size()) != 0) {
      return reject(IngestRejection::kBadToken, absl::UnauthenticatedError("wrong ingest token"));
    }
    id.user = "kpiscale:local-sidecar";
    return id;
  }
  auto reviewed = reviewer_->Review(std::string(token));
  if (!reviewed.ok()) {
    return reject(absl::IsUnavailable(reviewed.status()) ? IngestRejection::kUnavailable
                                                         : IngestRejection::kBadToken,
                  reviewed.status());
  }
  const UserInfo& u = *reviewed;
  // Only pods' service accounts report: system:serviceaccount:<namespace>:<name>.
  absl::string_view name = u.name;
  if (!absl::ConsumePrefix(&name, "system:serviceaccount:")) {
    return reject(IngestRejection::kNotServiceAccount,
                  absl::PermissionDeniedError(absl::StrCat(
                      "user ", u.name, " is not a service account and may not report")));
  }
  const auto colon = name.find(':');
  if (colon == absl::string_view::npos || colon == 0) {
    return reject(IngestRejection::kNotServiceAccount,
                  absl::PermissionDeniedError(absl::StrCat("malformed service account ", u.name)));
  }
  id.user = u.name;
  id.ns = std::string(name.substr(0, colon));
  if (auto it = u.extra.find(kPodNameExtra); it != u.extra.end() && !it->second.empty()) {
    id.pod_name = it->second.front();
  }
  return id;
}

absl::Status IngestAuthenticator::Admit(const IngestIdentity& identity, std::string_view ns,
                                        std::string_view pod_name) {
  absl::Status st = CheckPod(identity, ns, pod_name);
  if (!st.ok() && stats_ != nullptr) {
    stats_->IngestRejected(!identity.ns.empty() && identity.ns != ns
                               ? IngestRejection::kForeignNamespace
                               : IngestRejection::kForeignPod);
  }
  return st;
}

absl::Status IngestAuthenticator::CheckPod(const IngestIdentity& identity, std::string_view ns,
                                           std::string_view pod_name) {
  if (!identity.ns.empty() && identity.ns != ns) {
    return absl::PermissionDeniedError(absl::StrCat(identity.user, " may not report for namespace ",
                                                    std::string(ns), " (only ", identity.ns, ")"));
  }
  if (!identity.pod_name.empty() && identity.pod_name != pod_name) {
    return absl::PermissionDeniedError(absl::StrCat(identity.user, " may not report for pod ",
                                                    std::string(ns), "/", std::string(pod_name),
                                                    " (only ", identity.pod_name, ")"));
  }
  return absl::OkStatus();
}

}  // namespace kpiscale::adapter::auth
