#include "kpiscale/adapter/auth.h"

#include <vector>

namespace kpiscale::adapter {
namespace {

class LocalAuthenticator final : public Authenticator {
 public:
  absl::StatusOr<std::optional<UserInfo>> Authenticate(const AuthRequest&) override {
    UserInfo user;
    user.name = "kpiscale:local";
    user.groups = {"system:authenticated"};
    return std::optional<UserInfo>(std::move(user));
  }
};

class AllowAllAuthorizer final : public Authorizer {
 public:
  absl::StatusOr<Decision> Authorize(const RequestAttributes&) override { return Decision::kAllow; }
};

std::vector<std::string_view> Split(std::string_view path) {
  std::vector<std::string_view> out;
  while (!path.empty()) {
    if (path.front() == '/') {
      path.remove_prefix(1);
      continue;
    }
    const auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path = path.substr(slash);
  }
  return out;
}

}  // namespace

std::vector<std::string_view> AuthRequest::HeaderValues(std::string_view lower_name) const {
  std::vector<std::string_view> out;
  for (const auto& [k, v] : headers) {
    if (k == lower_name) out.emplace_back(v);
  }
  return out;
}

RequestAttributes AttributesFor(std::string_view method, std::string_view path,
                                const UserInfo& user) {
  RequestAttributes a;
  a.user = user;
  a.path = std::string(path);
  std::string verb = "get";
  if (method == "POST") verb = "create";
  if (method == "PUT") verb = "update";
  if (method == "DELETE") verb = "delete";
  if (method == "PATCH") verb = "patch";
  a.verb = verb;
  const auto seg = Split(path);
  // /apis/<group>/<version>/<rest...>; anything shorter is a non-resource path.
  if (seg.size() < 4 || seg[0] != "apis") return a;
  a.resource_request = true;
  a.api_group = std::string(seg[1]);
  a.api_version = std::string(seg[2]);
  std::vector<std::string_view> rest(seg.begin() + 3, seg.end());
  if (rest.size() >= 2 && rest[0] == "namespaces") {
    a.ns = std::string(rest[1]);
    rest.erase(rest.begin(), rest.begin() + 2);
    if (rest.empty()) {
      // /namespaces/{ns} itself: the namespaces resource.
      a.resource = "namespaces";
      a.name = a.ns;
      return a;
    }
  }
  if (a.api_group == "external.metrics.k8s.io") {
    // E/namespaces/ns/m is a list of resource m.
    if (!rest.empty()) a.resource = std::string(rest[0]);
    if (method == "GET" || method == "HEAD") a.verb = "list";
    return a;
  }
  if (!rest.empty()) a.resource = std::string(rest[0]);
  if (rest.size() >= 2) a.name = std::string(rest[1]);
  if (rest.size() >= 3) a.subresource = std::string(rest[2]);
  return a;
}

AuthenticatorPtr NewLocalAuthenticator() { return std::make_unique<LocalAuthenticator>(); }
AuthorizerPtr NewAllowAllAuthorizer() { return std::make_unique<AllowAllAuthorizer>(); }

}  // namespace kpiscale::adapter
