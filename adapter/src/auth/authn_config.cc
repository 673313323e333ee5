// gcc -O2 reports a false -Wnull-dereference inside nlohmann::json's inlined accessors.
#pragma GCC diagnostic ignored "-Wnull-dereference"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "kpiscale/adapter/auth/delegated.h"
#include "kpiscale/common/logging.h"
#include "kpiscale/common/status.h"

namespace kpiscale::adapter::auth {
namespace {

constexpr char kConfigMapPath[] =
    "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication";

absl::StatusOr<std::vector<std::string>> JsonList(const std::string& text, const char* key) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(key, ": want a JSON array of strings"));
  }
  std::vector<std::string> out;
  for (const auto& v : j) {
    if (!v.is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(key, ": want a JSON array of strings"));
    }
    out.push_back(v.get<std::string>());
  }
  return out;
}

std::vector<std::string> LowerAll(std::vector<std::string> v) {
  for (auto& s : v) absl::AsciiStrToLower(&s);
  return v;
}

absl::StatusOr<std::string> ReadPem(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read CA file ", path));
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

absl::StatusOr<AuthnSettings> ParseAuthenticationConfigMap(const std::string& json,
                                                           std::string* resource_version) {
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError("extension-apiserver-authentication: not a JSON object");
  }
  if (resource_version != nullptr) {
    *resource_version = j.value("/metadata/resourceVersion"_json_pointer, std::string());
  }
  AuthnSettings s;
  if (!j.contains("data") || !j["data"].is_object()) return s;
  const auto& d = j["data"];
  auto str = [&](const char* key) -> std::optional<std::string> {
    if (d.contains(key) && d[key].is_string()) return d[key].get<std::string>();
    return std::nullopt;
  };
  if (auto v = str("client-ca-file")) s.client_ca_pem = *v;
  if (auto v = str("requestheader-client-ca-file")) s.requestheader_ca_pem = *v;
  struct ListKey {
    const char* key;
    std::vector<std::string>* out;
    bool lower;
  };
  for (const ListKey& k : {ListKey{"requestheader-allowed-names", &s.allowed_names, false},
                           ListKey{"requestheader-username-headers", &s.username_headers, true},
                           ListKey{"requestheader-group-headers", &s.group_headers, true},
                           ListKey{"requestheader-extra-headers-prefix", &s.extra_prefixes, true},
                           ListKey{"requestheader-uid-headers", &s.uid_headers, true}}) {
    if (auto v = str(k.key)) {
      KPISCALE_ASSIGN_OR_RETURN(auto list, JsonList(*v, k.key));
      *k.out = k.lower ? LowerAll(std::move(list)) : std::move(list);
    }
  }
  return s;
}

absl::Status ApplyOverrides(const AuthnOverrides& o, AuthnSettings* s) {
  if (!o.client_ca_file.empty()) {
    KPISCALE_ASSIGN_OR_RETURN(s->client_ca_pem, ReadPem(o.client_ca_file));
  }
  if (!o.requestheader_client_ca_file.empty()) {
    KPISCALE_ASSIGN_OR_RETURN(s->requestheader_ca_pem, ReadPem(o.requestheader_client_ca_file));
  }
  if (o.allowed_names) s->allowed_names = *o.allowed_names;
  if (o.username_headers) s->username_headers = LowerAll(*o.username_headers);
  if (o.group_headers) s->group_headers = LowerAll(*o.group_headers);
  if (o.extra_prefixes) s->extra_prefixes = LowerAll(*o.extra_prefixes);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<AuthnConfigSource>> AuthnConfigSource::Start(
    std::shared_ptr<common::KubeClient> client, AuthnOverrides overrides,
    std::chrono::milliseconds resync, AuthStats* stats) {
  std::unique_ptr<AuthnConfigSource> s(new AuthnConfigSource());
  s->client_ = std::move(client);
  s->overrides_ = std::move(overrides);
  s->resync_ = resync;
  s->stats_ = stats;
  // As an aggregated apiserver does, refuse to start without the ConfigMap: serving with no
  // front-proxy CA would reject every request the aggregator forwards.
  KPISCALE_RETURN_IF_ERROR(s->Reload());
  s->thread_ = std::thread([p = s.get()] { p->Loop(); });
  return s;
}

std::unique_ptr<AuthnConfigSource> AuthnConfigSource::Fixed(AuthnSettings settings) {
  std::unique_ptr<AuthnConfigSource> s(new AuthnConfigSource());
  s->current_ = std::make_shared<const AuthnSettings>(std::move(settings));
  return s;
}

AuthnConfigSource::~AuthnConfigSource() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::shared_ptr<const AuthnSettings> AuthnConfigSource::Current() const {
  std::lock_guard lock(mu_);
  return current_;
}

absl::Status AuthnConfigSource::Reload() {
  KPISCALE_ASSIGN_OR_RETURN(auto res, client_->Get(kConfigMapPath));
  if (res.status != 200) {
    return absl::UnavailableError(absl::StrCat(
        "GET kube-system/extension-apiserver-authentication: HTTP ", res.status,
        res.status == 403 ? " (bind the Role extension-apiserver-authentication-reader)" : ""));
  }
  std::string rv;
  KPISCALE_ASSIGN_OR_RETURN(auto settings, ParseAuthenticationConfigMap(res.body, &rv));
  {
    std::lock_guard lock(mu_);
    if (current_ && rv == resource_version_) return absl::OkStatus();
  }
  KPISCALE_RETURN_IF_ERROR(ApplyOverrides(overrides_, &settings));
  auto log = common::Logger(common::loggers::kAdapterAuth);
  log->info(
      "msg=authentication_config_loaded resource_version={} client_ca={} "
      "requestheader_ca={} allowed_names={}",
      common::LogfmtValue(rv), !settings.client_ca_pem.empty(),
      !settings.requestheader_ca_pem.empty(), settings.allowed_names.size());
  std::lock_guard lock(mu_);
  current_ = std::make_shared<const AuthnSettings>(std::move(settings));
  resource_version_ = rv;
  if (stats_ != nullptr) ++stats_->config_reloads;
  return absl::OkStatus();
}

void AuthnConfigSource::Loop() {
  auto log = common::Logger(common::loggers::kAdapterAuth);
  std::unique_lock lock(mu_);
  while (!stop_) {
    if (cv_.wait_for(lock, resync_, [this] { return stop_; })) break;
    lock.unlock();
    if (auto st = Reload(); !st.ok()) {
      if (stats_ != nullptr) ++stats_->config_reload_failures;
      log->warn("msg=authentication_config_reload_failed keeping=last err={}",
                common::LogfmtValue(std::string(st.message())));
    }
    lock.lock();
  }
}

}  // namespace kpiscale::adapter::auth
