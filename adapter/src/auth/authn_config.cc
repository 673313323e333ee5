// gcc -O2 reports a false -Wnull-dereference inside nlohmann::json's inlined accessors.
#pragma GCC diagnostic ignored "-Wnull-dereference"

#include <algorithm>
#include <chrono>
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

// The collection, narrowed to the one object: what the apiserver's own informer lists and
// watches, and what resourceNames in the reader Role allow for list/watch.
constexpr char kListPath[] =
    "/api/v1/namespaces/kube-system/configmaps"
    "?fieldSelector=metadata.name%3Dextension-apiserver-authentication";
constexpr auto kInitialBackoff = std::chrono::milliseconds(100);
constexpr auto kMaxBackoff = std::chrono::seconds(30);

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

namespace {

absl::StatusOr<AuthnSettings> ParseConfigMapUnchecked(const std::string& json,
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

}  // namespace

absl::StatusOr<AuthnSettings> ParseAuthenticationConfigMap(const std::string& json,
                                                           std::string* resource_version) {
  // nlohmann::json throws on a field of the wrong type (resourceVersion as a number, ...); the
  // ConfigMap comes from the API, but a bad one must be an error, not a crash.
  try {
    return ParseConfigMapUnchecked(json, resource_version);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("extension-apiserver-authentication: ", e.what()));
  }
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
    std::chrono::milliseconds relist, AuthStats* stats) {
  std::unique_ptr<AuthnConfigSource> s(new AuthnConfigSource());
  s->client_ = std::move(client);
  s->overrides_ = std::move(overrides);
  s->relist_ = std::max<std::chrono::milliseconds>(relist, std::chrono::seconds(1));
  s->stats_ = stats;
  // As an aggregated apiserver does, refuse to start without the ConfigMap: serving with no
  // front-proxy CA would reject every request the aggregator forwards.
  KPISCALE_RETURN_IF_ERROR(s->List());
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
  canceller_.Cancel();
  if (thread_.joinable()) thread_.join();
}

std::shared_ptr<const AuthnSettings> AuthnConfigSource::Current() const {
  std::lock_guard lock(mu_);
  return current_;
}

std::string AuthnConfigSource::resource_version() const {
  std::lock_guard lock(mu_);
  return resource_version_;
}

bool AuthnConfigSource::Stopping() const {
  std::lock_guard lock(mu_);
  return stop_;
}

absl::Status AuthnConfigSource::Apply(const std::string& configmap_json, const char* how) {
  std::string rv;
  auto settings = ParseAuthenticationConfigMap(configmap_json, &rv);
  absl::Status st = settings.status();
  if (st.ok()) st = ApplyOverrides(overrides_, &*settings);
  if (stats_ != nullptr) stats_->ConfigLoad(st.ok());
  if (!st.ok()) return st;
  common::Logger(common::loggers::kAdapterAuth)
      ->info(
          "msg=authentication_config_loaded via={} resource_version={} client_ca={} "
          "requestheader_ca={} allowed_names={}",
          how, common::LogfmtValue(rv), !settings->client_ca_pem.empty(),
          !settings->requestheader_ca_pem.empty(), settings->allowed_names.size());
  std::lock_guard lock(mu_);
  current_ = std::make_shared<const AuthnSettings>(std::move(*settings));
  return absl::OkStatus();
}

absl::Status AuthnConfigSource::List() {
  try {
    return ListUnchecked();
  } catch (const nlohmann::json::exception& e) {
    if (stats_ != nullptr) stats_->ConfigLoad(false);
    return absl::InvalidArgumentError(
        absl::StrCat("list kube-system/extension-apiserver-authentication: ", e.what()));
  }
}

absl::Status AuthnConfigSource::ListUnchecked() {
  auto res = client_->Get(kListPath);
  if (!res.ok()) {
    if (stats_ != nullptr) {
      stats_->KubeApiUnavailable(KubeCall::kConfigMapList);
      stats_->ConfigLoad(false);
    }
    return res.status();
  }
  if (res->status != 200) {
    if (stats_ != nullptr) stats_->ConfigLoad(false);
    return absl::UnavailableError(absl::StrCat(
        "list kube-system/extension-apiserver-authentication: HTTP ", res->status,
        res->status == 403 ? " (bind the Role extension-apiserver-authentication-reader)" : ""));
  }
  auto j = nlohmann::json::parse(res->body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("items") || !j["items"].is_array()) {
    if (stats_ != nullptr) stats_->ConfigLoad(false);
    return absl::InvalidArgumentError(
        "list kube-system/extension-apiserver-authentication: not a ConfigMapList");
  }
  const std::string list_rv = j.value("/metadata/resourceVersion"_json_pointer, std::string());
  if (j["items"].empty()) {
    if (stats_ != nullptr) stats_->ConfigLoad(false);
    // Nothing to trust yet; keep what we have and watch for the ConfigMap to appear.
    std::lock_guard lock(mu_);
    resource_version_ = list_rv;
    if (!current_) {
      return absl::NotFoundError(
          "configmaps \"extension-apiserver-authentication\" not found in kube-system");
    }
    return absl::OkStatus();
  }
  KPISCALE_RETURN_IF_ERROR(Apply(j["items"][0].dump(), "list"));
  std::lock_guard lock(mu_);
  resource_version_ = list_rv;
  return absl::OkStatus();
}

bool AuthnConfigSource::OnEvent(std::string_view line, WatchEnd* end, bool* healthy) {
  try {
    return OnEventUnchecked(line, end, healthy);
  } catch (const nlohmann::json::exception& e) {
    // A field of the wrong type in an event: end this watch, re-list (with backoff).
    common::Logger(common::loggers::kAdapterAuth)
        ->warn("msg=authentication_config_watch_bad_event err={}", common::LogfmtValue(e.what()));
    *end = WatchEnd::kError;
    return false;
  }
}

bool AuthnConfigSource::OnEventUnchecked(std::string_view line, WatchEnd* end, bool* healthy) {
  static auto log = common::Logger(common::loggers::kAdapterAuth);
  if (line.find_first_not_of(" \t\r") == std::string_view::npos) return true;
  auto j = nlohmann::json::parse(line.begin(), line.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("type") || !j["type"].is_string() ||
      !j.contains("object") || !j["object"].is_object()) {
    log->warn("msg=authentication_config_watch_bad_event");
    *end = WatchEnd::kError;
    return false;
  }
  const std::string type = j["type"].get<std::string>();
  const auto& object = j["object"];
  if (type == "ERROR") {
    // A Status: 410 Gone (reason Expired) when our resourceVersion was compacted away.
    const int code = object.value("code", 0);
    log->info("msg=authentication_config_watch_error code={} message={}", code,
              common::LogfmtValue(object.value("message", std::string())));
    *end = code == 410 ? WatchEnd::kGone : WatchEnd::kError;
    return false;
  }
  const std::string rv = object.value("/metadata/resourceVersion"_json_pointer, std::string());
  *healthy = true;
  if (type == "ADDED" || type == "MODIFIED") {
    if (auto st = Apply(object.dump(), "watch"); !st.ok()) {
      log->warn("msg=authentication_config_invalid keeping=last err={}",
                common::LogfmtValue(std::string(st.message())));
    }
  } else if (type == "DELETED") {
    log->warn("msg=authentication_config_deleted keeping=last");
  } else if (type != "BOOKMARK") {
    log->warn("msg=authentication_config_watch_unknown_event type={}", common::LogfmtValue(type));
    *end = WatchEnd::kError;
    return false;
  }
  if (!rv.empty()) {
    std::lock_guard lock(mu_);
    resource_version_ = rv;
  }
  return true;
}

AuthnConfigSource::WatchEnd AuthnConfigSource::Watch(bool* healthy) {
  static auto log = common::Logger(common::loggers::kAdapterAuth);
  const auto timeout = std::chrono::duration_cast<std::chrono::seconds>(relist_);
  const std::string path = absl::StrCat(
      kListPath, "&watch=1&allowWatchBookmarks=true&resourceVersion=", resource_version(),
      "&timeoutSeconds=", timeout.count());
  WatchEnd end = WatchEnd::kNone;
  auto res = client_->Stream(
      path, [&](std::string_view line) { return OnEvent(line, &end, healthy); },
      relist_ + std::chrono::seconds(30), &canceller_);
  if (!res.ok()) {
    if (absl::IsCancelled(res.status())) return WatchEnd::kStreamEnd;
    if (absl::IsUnavailable(res.status()) && stats_ != nullptr) {
      stats_->KubeApiUnavailable(KubeCall::kConfigMapWatch);
    }
    log->warn("msg=authentication_config_watch_failed err={}",
              common::LogfmtValue(std::string(res.status().message())));
    return end != WatchEnd::kNone ? end : WatchEnd::kError;
  }
  if (end != WatchEnd::kNone) return end;
  if (res->status == 410) return WatchEnd::kGone;  // servers that refuse the watch outright
  if (res->status != 200) {
    log->warn("msg=authentication_config_watch_refused code={}", res->status);
    return WatchEnd::kError;
  }
  return WatchEnd::kStreamEnd;
}

void AuthnConfigSource::Loop() {
  auto log = common::Logger(common::loggers::kAdapterAuth);
  auto backoff = std::chrono::milliseconds(kInitialBackoff);
  auto wait = [&] {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, backoff, [this] { return stop_; });  // backoff, not synchronization
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, kMaxBackoff);
  };
  bool need_list = false;  // Start listed
  while (!Stopping()) {
    if (need_list) {
      if (auto st = List(); !st.ok()) {
        log->warn("msg=authentication_config_list_failed keeping=last retry_in_ms={} err={}",
                  backoff.count(), common::LogfmtValue(std::string(st.message())));
        wait();
        continue;
      }
    }
    bool healthy = false;
    const auto started = std::chrono::steady_clock::now();
    const WatchEnd end = Watch(&healthy);
    // A watch that lasted is healthy even without events (it ended at its timeoutSeconds); one
    // that ends at once, again and again, must back off instead of spinning.
    healthy = healthy || std::chrono::steady_clock::now() - started >= std::chrono::seconds(1);
    if (Stopping()) break;
    need_list = true;
    if (stats_ != nullptr) {
      stats_->WatchRestarted(end == WatchEnd::kGone        ? WatchRestart::kGone
                             : end == WatchEnd::kStreamEnd ? WatchRestart::kStreamEnd
                                                           : WatchRestart::kError);
    }
    if (healthy) {
      backoff = kInitialBackoff;
      continue;  // re-list at once
    }
    wait();
  }
}

}  // namespace kpiscale::adapter::auth
