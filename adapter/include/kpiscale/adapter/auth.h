#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

typedef struct ssl_st SSL;

namespace kpiscale::adapter {

/// Who made a request (user.Info of k8s.io/apiserver).
struct UserInfo {
  std::string name;
  std::string uid;
  std::vector<std::string> groups;
  std::map<std::string, std::vector<std::string>> extra;
};

/// What an authenticator may look at. Header names are lower-case.
struct AuthRequest {
  std::string method;
  std::string path;  // decoded path, no query
  std::vector<std::pair<std::string, std::string>> headers;
  std::string remote_addr;
  /// The TLS connection (peer certificate chain for request-header and client-cert
  /// authentication); null on plain connections. Valid only during the call.
  const SSL* ssl = nullptr;

  /// Every value of a header (lower-case name), in order.
  std::vector<std::string_view> HeaderValues(std::string_view lower_name) const;
};

/// Authenticates a request (request-header front-proxy certificates, client certificates,
/// bearer tokens via TokenReview, ... are separate implementations, tried in order by a union).
/// Thread-safety: implementations must be safe to call concurrently.
class Authenticator {
 public:
  virtual ~Authenticator() = default;
  /// The user, or nullopt when this authenticator finds no credentials it handles (the next one
  /// is tried). Unauthenticated when credentials are present but bad (the request gets 401).
  virtual absl::StatusOr<std::optional<UserInfo>> Authenticate(const AuthRequest& request) = 0;
};
using AuthenticatorPtr = std::unique_ptr<Authenticator>;

/// The authorizer attributes of a request (k8s.io/apiserver pkg/endpoints/request/requestinfo.go
/// and authorizer.Attributes), as a SubjectAccessReview carries them.
struct RequestAttributes {
  UserInfo user;
  std::string verb;  // get, list, create (write-metrics) ...
  bool resource_request = false;
  // Resource requests:
  std::string api_group;
  std::string api_version;
  std::string ns;
  std::string resource;
  std::string subresource;
  std::string name;
  // Non-resource requests:
  std::string path;
};

/// Derives the attributes the apiserver would derive for a request path (see
/// kubernetes-metrics-api.md §7): `P/namespaces/ns/pods/*/m` is get pods/m name "*",
/// `P/namespaces/ns/metrics/m` is get metrics name m, `E/namespaces/ns/m` is list m,
/// discovery and /openapi/v2 are non-resource paths.
RequestAttributes AttributesFor(std::string_view method, std::string_view path,
                                const UserInfo& user);

enum class Decision { kAllow, kDeny, kNoOpinion };

/// Authorizes a request (SubjectAccessReview with caching, system:masters bypass, ... are
/// separate implementations). Health paths never reach it.
/// Thread-safety: implementations must be safe to call concurrently.
class Authorizer {
 public:
  virtual ~Authorizer() = default;
  /// kDeny/kNoOpinion answer 403; an error answers 500 (and is logged).
  virtual absl::StatusOr<Decision> Authorize(const RequestAttributes& attributes) = 0;
};
using AuthorizerPtr = std::unique_ptr<Authorizer>;

/// --local: every request is the local user `kpiscale:local` in `system:authenticated`, whatever
/// credentials it carries (loopback only; the adapter logs a warning at start).
AuthenticatorPtr NewLocalAuthenticator();
/// --local: allows everything.
AuthorizerPtr NewAllowAllAuthorizer();

}  // namespace kpiscale::adapter
