// gcc -O2 reports a false -Wnull-dereference inside nlohmann::json's inlined accessors.
#pragma GCC diagnostic ignored "-Wnull-dereference"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "kpiscale/adapter/auth/delegated.h"
#include "kpiscale/common/logging.h"

namespace kpiscale::adapter::auth {
namespace {

nlohmann::json SarSpec(const RequestAttributes& a) {
  nlohmann::json spec = {{"user", a.user.name}, {"groups", a.user.groups}};
  if (!a.user.uid.empty()) spec["uid"] = a.user.uid;
  if (!a.user.extra.empty()) spec["extra"] = a.user.extra;
  if (a.resource_request) {
    nlohmann::json ra = {{"verb", a.verb},
                         {"group", a.api_group},
                         {"version", a.api_version},
                         {"resource", a.resource}};
    if (!a.ns.empty()) ra["namespace"] = a.ns;
    if (!a.subresource.empty()) ra["subresource"] = a.subresource;
    if (!a.name.empty()) ra["name"] = a.name;
    spec["resourceAttributes"] = ra;
  } else {
    spec["nonResourceAttributes"] = {{"path", a.path}, {"verb", a.verb}};
  }
  return spec;
}

class DelegatingAuthorizer final : public Authorizer {
 public:
  DelegatingAuthorizer(std::shared_ptr<common::KubeClient> client, AuthorizerOptions options,
                       const common::Clock& clock, AuthStats* stats)
      : client_(std::move(client)), options_(std::move(options)), clock_(clock), stats_(stats) {}

  absl::StatusOr<Decision> Authorize(const RequestAttributes& a) override {
    // nlohmann::json throws on fields of the wrong type in the API's answer.
    try {
      return AuthorizeUnchecked(a);
    } catch (const nlohmann::json::exception& e) {
      Unavailable();
      return absl::UnavailableError(
          absl::StrCat("SubjectAccessReview: unusable answer: ", e.what()));
    }
  }

 private:
  absl::StatusOr<Decision> AuthorizeUnchecked(const RequestAttributes& a) {
    for (const auto& g : a.user.groups) {
      if (std::find(options_.always_allow_groups.begin(), options_.always_allow_groups.end(), g) !=
          options_.always_allow_groups.end()) {
        return Decided(Decision::kAllow);
      }
    }
    if (!a.resource_request) {
      for (const auto& p : options_.always_allow_paths) {
        if (p == a.path ||
            (absl::EndsWith(p, "*") && a.path.compare(0, p.size() - 1, p, 0, p.size() - 1) == 0)) {
          return Decided(Decision::kAllow);
        }
      }
    }
    const std::string body = SubjectAccessReviewJson(a);
    const auto now = clock_.SteadyNow();
    {
      std::lock_guard lock(mu_);
      if (auto it = cache_.find(body); it != cache_.end()) {
        if (it->second.expires > now) {
          if (stats_ != nullptr) stats_->AccessCache(CacheLookup::kHit);
          return Decided(it->second.decision);
        }
        cache_.erase(it);
      }
      if (cache_.size() >= 10000) {
        for (auto it = cache_.begin(); it != cache_.end();) {
          it = it->second.expires <= now ? cache_.erase(it) : std::next(it);
        }
        if (cache_.size() >= 10000) cache_.clear();
      }
    }
    if (stats_ != nullptr) stats_->AccessCache(CacheLookup::kMiss);
    auto res = client_->Post("/apis/authorization.k8s.io/v1/subjectaccessreviews", body);
    if (!res.ok() || (res->status != 201 && res->status != 200)) {
      Unavailable();
      return absl::UnavailableError(res.ok()
                                        ? absl::StrCat("SubjectAccessReview: HTTP ", res->status)
                                        : std::string(res.status().message()));
    }
    auto j = nlohmann::json::parse(res->body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      Unavailable();
      return absl::UnavailableError("SubjectAccessReview: unparsable answer");
    }
    const auto st = j.value("status", nlohmann::json::object());
    Entry e;
    if (st.value("allowed", false)) {
      e.decision = Decision::kAllow;
      e.expires = now + options_.allow_ttl;
    } else {
      e.decision = st.value("denied", false) ? Decision::kDeny : Decision::kNoOpinion;
      e.expires = now + options_.deny_ttl;
    }
    if (stats_ != nullptr) {
      stats_->AccessReview(e.decision == Decision::kAllow ? ReviewResult::kPositive
                                                          : ReviewResult::kNegative);
    }
    std::lock_guard lock(mu_);
    cache_[body] = e;
    return Decided(e.decision);
  }

  Decision Decided(Decision d) {
    if (stats_ != nullptr) {
      stats_->Authorization(d == Decision::kAllow ? AuthzDecision::kAllow : AuthzDecision::kDeny);
    }
    return d;
  }
  void Unavailable() {
    if (stats_ == nullptr) return;
    stats_->AccessReview(ReviewResult::kError);
    stats_->Authorization(AuthzDecision::kError);
    stats_->KubeApiUnavailable(KubeCall::kSubjectAccessReview);
  }

  struct Entry {
    std::chrono::steady_clock::time_point expires;
    Decision decision = Decision::kNoOpinion;
  };
  std::shared_ptr<common::KubeClient> client_;
  AuthorizerOptions options_;
  const common::Clock& clock_;
  AuthStats* stats_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> cache_;  // key: the review body (all attributes)
};

}  // namespace

std::string SubjectAccessReviewJson(const RequestAttributes& a) {
  nlohmann::json j = {{"apiVersion", "authorization.k8s.io/v1"},
                      {"kind", "SubjectAccessReview"},
                      {"spec", SarSpec(a)}};
  // Paths, user names and extra values come from clients and may be invalid UTF-8; Go's
  // encoding/json (kube-apiserver) replaces such bytes with U+FFFD, and so do we, instead of
  // throwing.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string ForbiddenMessage(const RequestAttributes& a) {
  if (!a.resource_request) {
    return absl::StrCat("forbidden: User \"", a.user.name, "\" cannot ", a.verb, " path \"", a.path,
                        "\"");
  }
  std::string resource = a.resource;
  if (!a.subresource.empty()) absl::StrAppend(&resource, "/", a.subresource);
  std::string what = a.resource;
  if (!a.api_group.empty()) absl::StrAppend(&what, ".", a.api_group);
  if (!a.name.empty()) absl::StrAppend(&what, " \"", a.name, "\"");
  std::string scope = a.ns.empty() ? std::string("at the cluster scope")
                                   : absl::StrCat("in the namespace \"", a.ns, "\"");
  return absl::StrCat(what, " is forbidden: User \"", a.user.name, "\" cannot ", a.verb,
                      " resource \"", resource, "\" in API group \"", a.api_group, "\" ", scope);
}

AuthorizerPtr NewDelegatingAuthorizer(std::shared_ptr<common::KubeClient> client,
                                      AuthorizerOptions options, const common::Clock& clock,
                                      AuthStats* stats) {
  return std::make_unique<DelegatingAuthorizer>(std::move(client), std::move(options), clock,
                                                stats);
}

}  // namespace kpiscale::adapter::auth
