#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "kpiscale/adapter/auth.h"
#include "kpiscale/adapter/auth/delegated.h"
#include "kpiscale/adapter/config.h"
#include "kpiscale/common/clock.h"

namespace kpiscale::adapter::auth {

/// Everything the server needs for authentication and authorization, built from the flags.
/// Not --local: the delegating authenticator/authorizer over the Kubernetes API named by
/// --authentication-kubeconfig / --authorization-kubeconfig (in-cluster when empty), and
/// TokenReview-based ingest. --local: the allow-all pair; ingest needs --ingest-token-file's
/// token when that flag is set, nothing otherwise (ingest is null).
struct AuthComponents {
  std::shared_ptr<AuthStats> stats = std::make_shared<AuthStats>();  // exported on /metrics
  std::shared_ptr<AuthnConfigSource> config;  // owns the ConfigMap reload thread
  AuthenticatorPtr authenticator;
  AuthorizerPtr authorizer;
  std::unique_ptr<IngestAuthenticator> ingest;  // null: ingest is not authenticated (--local)
};

absl::StatusOr<AuthComponents> BuildAuth(const AdapterConfig& config, const common::Clock& clock);

}  // namespace kpiscale::adapter::auth
