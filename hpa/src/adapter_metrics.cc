#include "kpiscale/hpa/adapter_metrics.h"

#include <httplib.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "kpiscale/common/quantity.h"
#include "kpiscale/common/status.h"
#include "nlohmann/json.hpp"

namespace kpiscale::hpa {
namespace {

// Kubernetes resource (plural, with group) for a described object's kind.
std::string ResourceFor(const ObjectReference& ref) {
  const std::string kind = absl::AsciiStrToLower(ref.kind);
  std::string group;
  const size_t slash = ref.api_version.find('/');
  if (slash != std::string::npos) group = ref.api_version.substr(0, slash);
  std::string plural = kind;
  if (!plural.empty() && plural.back() == 's') {
    plural += "es";
  } else if (!plural.empty() && plural.back() == 'y') {
    plural = plural.substr(0, plural.size() - 1) + "ies";
  } else {
    plural += "s";
  }
  return group.empty() ? plural : absl::StrCat(plural, ".", group);
}

}  // namespace

std::string UrlEncode(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

absl::StatusOr<std::unique_ptr<AdapterMetricsSource>> AdapterMetricsSource::Create(
    AdapterOptions options) {
  if (!absl::StartsWith(options.url, "http://") && !absl::StartsWith(options.url, "https://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("adapter URL must start with http:// or https://, got \"", options.url, "\""));
  }
  while (!options.url.empty() && options.url.back() == '/') options.url.pop_back();
  auto client = std::make_unique<httplib::Client>(options.url);
  if (!client->is_valid()) {
    return absl::InvalidArgumentError(absl::StrCat("invalid adapter URL \"", options.url, "\""));
  }
  client->set_connection_timeout(options.timeout_seconds, 0);
  client->set_read_timeout(options.timeout_seconds, 0);
  if (!options.bearer_token.empty()) client->set_bearer_token_auth(options.bearer_token);
  if (options.insecure_skip_tls_verify) client->enable_server_certificate_verification(false);
  return std::unique_ptr<AdapterMetricsSource>(
      new AdapterMetricsSource(std::move(options), std::move(client)));
}

AdapterMetricsSource::AdapterMetricsSource(AdapterOptions options,
                                           std::unique_ptr<httplib::Client> client)
    : options_(std::move(options)), client_(std::move(client)) {}

AdapterMetricsSource::~AdapterMetricsSource() = default;

std::string AdapterMetricsSource::PathFor(const MetricSpec& spec) const {
  const std::string ns = UrlEncode(options_.namespace_name);
  if (spec.type == "Pods") {
    std::string path = absl::StrCat("/apis/custom.metrics.k8s.io/v1beta2/namespaces/", ns,
                                    "/pods/*/", UrlEncode(spec.name));
    std::string sep = "?";
    if (!options_.pod_selector.empty()) {
      absl::StrAppend(&path, sep, "labelSelector=", UrlEncode(options_.pod_selector));
      sep = "&";
    }
    if (!spec.selector.empty()) {
      absl::StrAppend(&path, sep, "metricLabelSelector=", UrlEncode(spec.selector));
    }
    return path;
  }
  if (spec.type == "Object") {
    std::string path;
    if (spec.described_object.kind == "Namespace") {
      path = absl::StrCat("/apis/custom.metrics.k8s.io/v1beta2/namespaces/",
                          UrlEncode(spec.described_object.name), "/metrics/", UrlEncode(spec.name));
    } else {
      path = absl::StrCat("/apis/custom.metrics.k8s.io/v1beta2/namespaces/", ns, "/",
                          ResourceFor(spec.described_object), "/",
                          UrlEncode(spec.described_object.name), "/", UrlEncode(spec.name));
    }
    if (!spec.selector.empty()) {
      absl::StrAppend(&path, "?metricLabelSelector=", UrlEncode(spec.selector));
    }
    return path;
  }
  std::string path = absl::StrCat("/apis/external.metrics.k8s.io/v1beta1/namespaces/", ns, "/",
                                  UrlEncode(spec.name));
  if (!spec.selector.empty()) absl::StrAppend(&path, "?labelSelector=", UrlEncode(spec.selector));
  return path;
}

absl::StatusOr<std::vector<std::pair<std::string, int64_t>>> AdapterMetricsSource::FetchItems(
    const MetricSpec& spec) {
  const std::string path = PathFor(spec);
  httplib::Result res = client_->Get(path.c_str());
  if (!res) {
    return absl::UnavailableError(
        absl::StrCat("GET ", options_.url, path, ": ", httplib::to_string(res.error())));
  }
  if (res->status != 200) {
    std::string message = res->body.substr(0, 200);
    const nlohmann::json status = nlohmann::json::parse(res->body, nullptr, false);
    if (status.is_object()) {
      auto m = status.find("message");
      if (m != status.end() && m->is_string()) message = m->get<std::string>();
    }
    const absl::StatusCode code = res->status == 404   ? absl::StatusCode::kNotFound
                                  : res->status == 400 ? absl::StatusCode::kInvalidArgument
                                                       : absl::StatusCode::kUnavailable;
    return absl::Status(code, absl::StrCat("GET ", path, ": HTTP ", res->status, ": ", message));
  }
  const nlohmann::json body = nlohmann::json::parse(res->body, nullptr, false);
  auto list = body.is_object() ? body.find("items") : body.end();
  if (!body.is_object() || list == body.end() || !list->is_array()) {
    return absl::InvalidArgumentError(absl::StrCat("GET ", path, ": not a metric value list"));
  }
  std::vector<std::pair<std::string, int64_t>> items;
  for (const nlohmann::json& item : *list) {
    auto value = item.is_object() ? item.find("value") : item.end();
    if (!item.is_object() || value == item.end() || !value->is_string()) {
      return absl::InvalidArgumentError(absl::StrCat("GET ", path, ": item without a value"));
    }
    absl::StatusOr<common::Quantity> q = common::Quantity::Parse(value->get<std::string>());
    if (!q.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("GET ", path, ": invalid value: ", q.status().message()));
    }
    std::string name;
    auto described = item.find("describedObject");
    if (described != item.end() && described->is_object()) {
      auto n = described->find("name");
      if (n != described->end() && n->is_string()) name = n->get<std::string>();
    }
    items.emplace_back(name, q->MilliValue());
  }
  return items;
}

absl::StatusOr<std::vector<PodResourceSample>> AdapterMetricsSource::GetResourceMetric(
    const MetricSpec& spec) {
  return absl::UnimplementedError(
      absl::StrCat("resource metric ", spec.name,
                   " is not served by the adapter (metrics.k8s.io); give it in "
                   "the trace"));
}

absl::StatusOr<PodMetricsInfo> AdapterMetricsSource::GetRawMetric(const MetricSpec& spec) {
  KPISCALE_ASSIGN_OR_RETURN(auto items, FetchItems(spec));
  if (items.empty()) {
    return absl::NotFoundError(absl::StrCat("no metrics returned for pods/", spec.name));
  }
  PodMetricsInfo out;
  for (const auto& [pod, value] : items) out[pod] = PodMetric{value, 0, 0};
  return out;
}

absl::StatusOr<int64_t> AdapterMetricsSource::GetObjectMetric(const MetricSpec& spec) {
  KPISCALE_ASSIGN_OR_RETURN(auto items, FetchItems(spec));
  if (items.size() != 1) {
    return absl::NotFoundError(
        absl::StrCat("expected one value for ", spec.DisplayName(), ", got ", items.size()));
  }
  return items.front().second;
}

absl::StatusOr<std::vector<int64_t>> AdapterMetricsSource::GetExternalMetric(
    const MetricSpec& spec) {
  KPISCALE_ASSIGN_OR_RETURN(auto items, FetchItems(spec));
  if (items.empty()) {
    return absl::NotFoundError(absl::StrCat("no values for external metric ", spec.name));
  }
  std::vector<int64_t> out;
  for (const auto& [name, value] : items) out.push_back(value);
  return out;
}

}  // namespace kpiscale::hpa
