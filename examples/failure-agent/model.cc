#include <charconv>
#include <cstring>

#include "failure_agent.h"
#include "kpiscale/common/status.h"

namespace kpiscale::examples {
namespace {

bool ValidName(const std::string& s) {
  if (s.empty() || s.size() > kMaxNameBytes) return false;
  for (const char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-' || c == '/';
    if (!ok) return false;
  }
  return true;
}

bool ValidStatus(const std::string& s) {
  for (const char* known : kStatuses) {
    if (s == known) return true;
  }
  return false;
}

std::optional<std::string> Param(const std::multimap<std::string, std::string>& params,
                                 const char* name) {
  const auto it = params.find(name);
  if (it == params.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

// An optional string member: absent or null is "", any other type is an error.
absl::Status StringField(const nlohmann::json& j, const char* key, std::string* out) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_string()) return absl::InvalidArgumentError(std::string(key) + ": must be a string");
  *out = it->get<std::string>();
  return absl::OkStatus();
}

}  // namespace

nlohmann::json FailureToJson(const Failure& f) {
  return nlohmann::json{{"id", f.id},           {"service_name", f.service_name},
                        {"status", f.status},   {"pipeline", f.pipeline},
                        {"job", f.job},         {"error_message", f.error_message},
                        {"details", f.details}, {"created_at", f.created_at}};
}

absl::StatusOr<Failure> FailureFromJson(const nlohmann::json& j) {
  if (!j.is_object()) return absl::InvalidArgumentError("failure: not an object");
  Failure f;
  const auto id = j.find("id");
  if (id == j.end() || !id->is_number_integer()) return absl::InvalidArgumentError("failure: id");
  f.id = id->get<int64_t>();
  KPISCALE_RETURN_IF_ERROR(StringField(j, "service_name", &f.service_name));
  KPISCALE_RETURN_IF_ERROR(StringField(j, "status", &f.status));
  KPISCALE_RETURN_IF_ERROR(StringField(j, "pipeline", &f.pipeline));
  KPISCALE_RETURN_IF_ERROR(StringField(j, "job", &f.job));
  KPISCALE_RETURN_IF_ERROR(StringField(j, "error_message", &f.error_message));
  KPISCALE_RETURN_IF_ERROR(StringField(j, "created_at", &f.created_at));
  const auto details = j.find("details");
  if (details != j.end() && details->is_object()) f.details = *details;
  return f;
}

absl::StatusOr<ListQuery> ParseListQuery(const std::multimap<std::string, std::string>& params) {
  ListQuery q;
  q.service = Param(params, "service");
  q.status = Param(params, "status");
  if (q.service.has_value() && !ValidName(*q.service)) {
    return absl::InvalidArgumentError("service: 1-200 characters of [A-Za-z0-9._/-]");
  }
  if (q.status.has_value() && !ValidStatus(*q.status)) {
    return absl::InvalidArgumentError("status: one of open, investigating, resolved");
  }
  if (const auto limit = Param(params, "limit")) {
    int v = 0;
    const auto res = std::from_chars(limit->data(), limit->data() + limit->size(), v);
    if (res.ec != std::errc() || res.ptr != limit->data() + limit->size() || v < 1 ||
        v > kMaxListLimit) {
      return absl::InvalidArgumentError("limit: an integer in 1..500");
    }
    q.limit = v;
  }
  return q;
}

absl::StatusOr<Failure> ParseNewFailure(const std::string& body) {
  const nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError("body: a JSON object is required");
  }
  Failure f;
  KPISCALE_RETURN_IF_ERROR(StringField(j, "service_name", &f.service_name));
  KPISCALE_RETURN_IF_ERROR(StringField(j, "status", &f.status));
  KPISCALE_RETURN_IF_ERROR(StringField(j, "pipeline", &f.pipeline));
  KPISCALE_RETURN_IF_ERROR(StringField(j, "job", &f.job));
  KPISCALE_RETURN_IF_ERROR(StringField(j, "error_message", &f.error_message));
  if (!ValidName(f.service_name)) {
    return absl::InvalidArgumentError("service_name: 1-200 characters of [A-Za-z0-9._/-]");
  }
  if (f.status.empty()) f.status = "open";
  if (!ValidStatus(f.status)) {
    return absl::InvalidArgumentError("status: one of open, investigating, resolved");
  }
  for (const std::string* s : {&f.pipeline, &f.job}) {
    if (s->size() > kMaxNameBytes) {
      return absl::InvalidArgumentError("pipeline/job: strings of at most 200 bytes");
    }
  }
  if (f.error_message.empty() || f.error_message.size() > kMaxMessageBytes) {
    return absl::InvalidArgumentError("error_message: a non-empty string of at most 16 KiB");
  }
  const auto details = j.find("details");
  if (details != j.end() && !details->is_null()) {
    if (!details->is_object()) return absl::InvalidArgumentError("details: a JSON object");
    if (details->dump().size() > kMaxMessageBytes) {
      return absl::InvalidArgumentError("details: at most 16 KiB");
    }
    f.details = *details;
  }
  return f;
}

std::string ItemCacheKey(int64_t id) { return "failures:item:" + std::to_string(id); }

std::string ListCacheKey(const ListQuery& q) {
  return std::string("failures:list:service=") + q.service.value_or("") +
         ":status=" + q.status.value_or("") + ":limit=" + std::to_string(q.limit);
}

}  // namespace kpiscale::examples
