#include "kpiscale/adapter/auth/setup.h"

#include "absl/strings/str_cat.h"
#include "kpiscale/common/logging.h"
#include "kpiscale/common/status.h"

namespace kpiscale::adapter::auth {
namespace {

absl::StatusOr<std::shared_ptr<common::KubeClient>> ClientFor(const std::string& kubeconfig,
                                                              const char* what) {
  auto kc = common::LoadKubeConfigOrInCluster(kubeconfig);
  if (!kc.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(what, ": ", kc.status().message()));
  }
  common::Logger(common::loggers::kAdapterAuth)
      ->info("msg=kube_api what={} {}", what, kc->Describe());
  KPISCALE_ASSIGN_OR_RETURN(auto client, common::KubeClient::Create(std::move(*kc)));
  return std::shared_ptr<common::KubeClient>(std::move(client));
}

}  // namespace

absl::StatusOr<AuthComponents> BuildAuth(const AdapterConfig& c, const common::Clock& clock) {
  AuthComponents out;
  if (c.local) {
    out.authenticator = NewLocalAuthenticator();
    out.authorizer = NewAllowAllAuthorizer();
    if (!c.ingest_token_file.empty()) {
      KPISCALE_ASSIGN_OR_RETURN(
          out.ingest, IngestAuthenticator::FromTokenFile(c.ingest_token_file, out.stats.get()));
    }
    return out;
  }
  KPISCALE_ASSIGN_OR_RETURN(auto authn_client,
                            ClientFor(c.authentication_kubeconfig, "--authentication-kubeconfig"));
  KPISCALE_ASSIGN_OR_RETURN(auto authz_client,
                            ClientFor(c.authorization_kubeconfig, "--authorization-kubeconfig"));
  AuthnOverrides o;
  o.client_ca_file = c.client_ca_file;
  o.requestheader_client_ca_file = c.requestheader_client_ca_file;
  if (!c.requestheader_allowed_names.empty()) o.allowed_names = c.requestheader_allowed_names;
  if (!c.requestheader_username_headers.empty()) {
    o.username_headers = c.requestheader_username_headers;
  }
  if (!c.requestheader_group_headers.empty()) o.group_headers = c.requestheader_group_headers;
  if (!c.requestheader_extra_headers_prefix.empty()) {
    o.extra_prefixes = c.requestheader_extra_headers_prefix;
  }
  KPISCALE_ASSIGN_OR_RETURN(out.config,
                            AuthnConfigSource::Start(authn_client, o,
                                                     std::chrono::milliseconds(std::max<int64_t>(
                                                         c.authentication_config_resync_ms, 10)),
                                                     out.stats.get()));
  AuthenticatorOptions ao;
  ao.token_cache_ttl = std::chrono::milliseconds(c.token_cache_ttl_ms);
  out.authenticator =
      NewDelegatingAuthenticator(out.config, authn_client, ao, clock, out.stats.get());
  AuthorizerOptions zo;
  zo.allow_ttl = std::chrono::milliseconds(c.authorized_cache_ttl_ms);
  zo.deny_ttl = std::chrono::milliseconds(c.unauthorized_cache_ttl_ms);
  zo.always_allow_paths = c.authorization_always_allow_paths;
  out.authorizer = NewDelegatingAuthorizer(authz_client, zo, clock, out.stats.get());
  out.ingest = std::make_unique<IngestAuthenticator>(authn_client, c.ingest_token_audience,
                                                     ao.token_cache_ttl, clock, out.stats.get());
  return out;
}

}  // namespace kpiscale::adapter::auth
