#include "kpiscale/common/report.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kpiscale/common/absl_compat.h"
#include "kpiscale/common/http_util.h"
#include "kpiscale/common/status.h"
#include "kpiscale/common/text.h"

namespace kpiscale::common {
namespace {

// Quoted and cut short, so that a hostile 1 MiB label does not turn into a 1 MiB log line.
std::string QuoteReportText(std::string_view s) { return QuoteForMessage(s, 80); }

// Label names and values: `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`.
absl::Status ValidateQualifiedNamePart(std::string_view s, std::size_t max_len,
                                       std::string_view what) {
  if (s.size() > max_len) {
    return absl::InvalidArgumentError(absl::StrCat(AbslView(what), " must be no more than ",
                                                   max_len, " characters (is ", s.size(), ")"));
  }
  if (!IsAsciiAlnum(s.front()) || !IsAsciiAlnum(s.back())) {
    return absl::InvalidArgumentError(
        absl::StrCat(AbslView(what), " ", QuoteReportText(s),
                     " must begin and end with an alphanumeric character"));
  }
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (!IsAsciiAlnum(c) && c != '-' && c != '_' && c != '.') {
      return absl::InvalidArgumentError(absl::StrCat(AbslView(what), " ", QuoteReportText(s),
                                                     " has an invalid character at position ", i,
                                                     " (allowed: alphanumerics, '-', '_', '.')"));
    }
  }
  return absl::OkStatus();
}

// Collects problems with their field paths, up to a limit.
class Problems {
 public:
  explicit Problems(std::size_t max) : max_(max == 0 ? 1 : max) {}

  void Add(std::string path, std::string what) {
    ++total_;
    if (list_.size() < max_) list_.push_back(absl::StrCat(path, ": ", what));
  }
  void AddStatus(const std::string& path, const absl::Status& status) {
    if (!status.ok()) Add(path, std::string(status.message()));
  }
  bool full() const { return list_.size() >= max_; }
  absl::Status ToStatus() const {
    if (list_.empty()) return absl::OkStatus();
    std::string msg = absl::StrJoin(list_, "; ");
    if (total_ > list_.size()) {
      absl::StrAppend(&msg, "; and ", total_ - list_.size(), " more problems");
    }
    return absl::InvalidArgumentError(absl::StrCat("invalid report batch: ", msg));
  }

 private:
  std::size_t max_;
  std::size_t total_ = 0;
  std::vector<std::string> list_;
};

// a + b without wrapping; saturates at the maximum.
uint64_t SatAdd(uint64_t a, uint64_t b) {
  return a > std::numeric_limits<uint64_t>::max() - b ? std::numeric_limits<uint64_t>::max()
                                                      : a + b;
}

void CheckSum(Problems& p, const std::string& path, double v) {
  if (std::isnan(v)) {
    p.Add(path, "is NaN");
  } else if (std::isinf(v)) {
    p.Add(path, "is infinite");
  } else if (v < 0) {
    p.Add(path, absl::StrCat("is negative (", v, ")"));
  }
}

void CheckAtMost(Problems& p, const std::string& path, uint64_t value, std::string_view bound_name,
                 uint64_t bound) {
  if (value > bound) {
    p.Add(path, absl::StrCat(value, " exceeds ", AbslView(bound_name), " (", bound, ")"));
  }
}

void CheckSketch(Problems& p, const std::string& path, const kpiscale::v1::Sketch& sketch,
                 std::string_view events_name, uint64_t events, const ReportLimits& limits) {
  absl::StatusOr<LatencySketch> parsed = LatencySketch::FromProto(sketch, limits.sketch);
  if (!parsed.ok()) {
    p.Add(path, std::string(parsed.status().message()));
    return;
  }
  CheckSum(p, path + ".sum", sketch.sum());
  CheckAtMost(p, path + ".count", sketch.count(), events_name, events);
}

void CheckPod(Problems& p, const kpiscale::v1::PodIdentity& pod, const ReportLimits& limits) {
  if (pod.namespace_().empty()) {
    p.Add("pod.namespace", "must not be empty");
  } else {
    p.AddStatus("pod.namespace", ValidateDns1123Label(pod.namespace_()));
  }
  if (pod.pod_name().empty()) {
    p.Add("pod.pod_name", "must not be empty");
  } else {
    p.AddStatus("pod.pod_name", ValidateDns1123Subdomain(pod.pod_name()));
  }
  if (pod.pod_uid().empty()) {
    p.Add("pod.pod_uid", "must not be empty");
  } else if (pod.pod_uid().size() > limits.max_uid_length) {
    p.Add("pod.pod_uid", absl::StrCat("must be no more than ", limits.max_uid_length,
                                      " characters (is ", pod.pod_uid().size(), ")"));
  } else {
    for (char c : pod.pod_uid()) {
      if (!IsAsciiAlnum(c) && c != '-' && c != '_' && c != '.' && c != ':') {
        p.Add("pod.pod_uid", absl::StrCat(QuoteReportText(pod.pod_uid()),
                                          " may hold only alphanumerics, '-', '_', '.', ':'"));
        break;
      }
    }
  }
  if (!pod.node_name().empty()) {
    p.AddStatus("pod.node_name", ValidateDns1123Subdomain(pod.node_name()));
  }
  if (!pod.workload_name().empty()) {
    p.AddStatus("pod.workload_name", ValidateDns1123Subdomain(pod.workload_name()));
  }
  if (pod.workload_kind().size() > limits.max_text_length) {
    p.Add("pod.workload_kind",
          absl::StrCat("must be no more than ", limits.max_text_length, " characters"));
  } else if (!pod.workload_kind().empty()) {
    if (!std::all_of(pod.workload_kind().begin(), pod.workload_kind().end(), IsAsciiAlnum)) {
      p.Add("pod.workload_kind", absl::StrCat(QuoteReportText(pod.workload_kind()),
                                              " must be alphanumeric (e.g. Deployment)"));
    }
  }
  if (pod.workload_kind().empty() != pod.workload_name().empty()) {
    p.Add("pod.workload_kind", "workload_kind and workload_name must be set together");
  }
  if (!pod.service_name().empty()) {
    p.AddStatus("pod.service_name", ValidateDns1123Label(pod.service_name()));
  }
  if (static_cast<std::size_t>(pod.labels_size()) > limits.max_labels) {
    p.Add("pod.labels", absl::StrCat("has ", pod.labels_size(), " labels, more than the limit of ",
                                     limits.max_labels));
  } else {
    // Sorted so that the reported problem does not depend on hash-map order.
    std::vector<std::pair<std::string, std::string>> labels(pod.labels().begin(),
                                                            pod.labels().end());
    std::sort(labels.begin(), labels.end());
    for (const auto& [key, value] : labels) {
      const absl::Status key_status = ValidateLabelKey(key, limits);
      if (!key_status.ok()) {
        p.Add("pod.labels", std::string(key_status.message()));
        continue;
      }
      p.AddStatus(absl::StrCat("pod.labels[", QuoteReportText(key), "]"),
                  ValidateLabelValue(value, limits));
    }
  }
}

void CheckHttp(Problems& p, const std::string& path, const kpiscale::v1::HttpSignal& http,
               const ReportLimits& limits) {
  const uint64_t requests = http.requests();
  CheckAtMost(p, path + ".errors", http.errors(), "requests", requests);
  const uint64_t classes =
      SatAdd(SatAdd(SatAdd(SatAdd(http.status_1xx(), http.status_2xx()), http.status_3xx()),
                    http.status_4xx()),
             http.status_5xx());
  if (classes > requests) {
    p.Add(path + ".status_*",
          absl::StrCat("status classes sum to ", classes, ", more than requests (", requests, ")"));
  }
  CheckAtMost(p, path + ".status_5xx", http.status_5xx(), "errors", http.errors());
  CheckSum(p, path + ".duration_sum_seconds", http.duration_sum_seconds());

  if (static_cast<std::size_t>(http.slo_size()) > limits.max_slo_thresholds) {
    p.Add(path + ".slo",
          absl::StrCat("has ", http.slo_size(), " thresholds, more than the limit of ",
                       limits.max_slo_thresholds));
  } else {
    std::vector<std::pair<double, uint64_t>> sorted;
    for (int i = 0; i < http.slo_size(); ++i) {
      const auto& slo = http.slo(i);
      const std::string at = absl::StrCat(path, ".slo[", i, "]");
      const double t = slo.threshold_seconds();
      if (!std::isfinite(t) || t <= 0) {
        p.Add(at + ".threshold_seconds", absl::StrCat("must be a finite number > 0 (is ", t, ")"));
        continue;
      }
      CheckAtMost(p, at + ".slow", slo.slow(), "requests", requests);
      for (const auto& [seen, unused] : sorted) {
        if (seen == t) p.Add(at + ".threshold_seconds", absl::StrCat("duplicate threshold ", t));
      }
      sorted.emplace_back(t, slo.slow());
    }
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i = 1; i < sorted.size(); ++i) {
      if (sorted[i].first != sorted[i - 1].first && sorted[i].second > sorted[i - 1].second) {
        p.Add(path + ".slo",
              absl::StrCat("slow count ", sorted[i].second, " above threshold ", sorted[i].first,
                           "s exceeds the count ", sorted[i - 1].second,
                           " above the lower threshold ", sorted[i - 1].first, "s"));
      }
    }
  }
  if (http.has_latency()) {
    CheckSketch(p, path + ".latency", http.latency(), "requests", requests, limits);
  }
  if (http.has_ttfb()) CheckSketch(p, path + ".ttfb", http.ttfb(), "requests", requests, limits);
}

void CheckCache(Problems& p, const std::string& path, const kpiscale::v1::CacheSignal& cache,
                const ReportLimits& limits) {
  const uint64_t commands = cache.commands();
  // Server-wide INFO counters count every client of the server, so they may exceed this pod's
  // commands.
  if (!cache.server_wide()) {
    const uint64_t lookups = SatAdd(cache.hits(), cache.misses());
    if (lookups > commands) {
      p.Add(path + ".hits",
            absl::StrCat("hits + misses (", lookups, ") exceed commands (", commands, ")"));
    }
  }
  CheckAtMost(p, path + ".errors", cache.errors(), "commands", commands);
  CheckSum(p, path + ".duration_sum_seconds", cache.duration_sum_seconds());
  if (cache.has_latency()) {
    CheckSketch(p, path + ".latency", cache.latency(), "commands", commands, limits);
  }
}

void CheckDb(Problems& p, const std::string& path, const kpiscale::v1::DbSignal& db,
             const ReportLimits& limits) {
  CheckAtMost(p, path + ".errors", db.errors(), "queries", db.queries());
  CheckSum(p, path + ".duration_sum_seconds", db.duration_sum_seconds());
  if (db.has_latency()) {
    CheckSketch(p, path + ".latency", db.latency(), "queries", db.queries(), limits);
  }
}

}  // namespace

absl::Status ValidateDns1123Label(std::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("must not be empty");
  if (name.size() > 63) {
    return absl::InvalidArgumentError(
        absl::StrCat("must be no more than 63 characters (is ", name.size(), ")"));
  }
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (!IsLowerAsciiAlnum(name[i]) && name[i] != '-') {
      return absl::InvalidArgumentError(
          absl::StrCat(QuoteReportText(name), " has an invalid character at position ", i,
                       " (a DNS-1123 label holds lower-case alphanumerics and '-')"));
    }
  }
  if (!IsLowerAsciiAlnum(name.front()) || !IsLowerAsciiAlnum(name.back())) {
    return absl::InvalidArgumentError(
        absl::StrCat(QuoteReportText(name), " must begin and end with an alphanumeric character"));
  }
  return absl::OkStatus();
}

absl::Status ValidateDns1123Subdomain(std::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("must not be empty");
  if (name.size() > 253) {
    return absl::InvalidArgumentError(
        absl::StrCat("must be no more than 253 characters (is ", name.size(), ")"));
  }
  std::size_t part_start = 0;
  for (std::size_t i = 0; i <= name.size(); ++i) {
    if (i < name.size() && name[i] != '.') {
      if (!IsLowerAsciiAlnum(name[i]) && name[i] != '-') {
        return absl::InvalidArgumentError(
            absl::StrCat(QuoteReportText(name), " has an invalid character at position ", i,
                         " (a DNS-1123 subdomain holds lower-case alphanumerics, '-' and '.')"));
      }
      continue;
    }
    const std::string_view part = name.substr(part_start, i - part_start);
    if (part.empty() || !IsLowerAsciiAlnum(part.front()) || !IsLowerAsciiAlnum(part.back())) {
      return absl::InvalidArgumentError(
          absl::StrCat(QuoteReportText(name),
                       " must consist of dot-separated parts that begin and end with an "
                       "alphanumeric character"));
    }
    part_start = i + 1;
  }
  return absl::OkStatus();
}

absl::Status ValidateLabelKey(std::string_view key, const ReportLimits& limits) {
  if (key.empty()) return absl::InvalidArgumentError("label key must not be empty");
  std::string_view name = key;
  const std::size_t slash = key.find('/');
  if (slash != std::string_view::npos) {
    const std::string_view prefix = key.substr(0, slash);
    name = key.substr(slash + 1);
    if (prefix.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("label key ", QuoteReportText(key),
                                                     ": prefix before '/' must not be empty"));
    }
    if (prefix.size() > limits.max_label_prefix_length) {
      return absl::InvalidArgumentError(
          absl::StrCat("label key ", QuoteReportText(key), ": prefix must be no more than ",
                       limits.max_label_prefix_length, " characters"));
    }
    const absl::Status prefix_status = ValidateDns1123Subdomain(prefix);
    if (!prefix_status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("label key ", QuoteReportText(key), ": prefix ", prefix_status.message()));
    }
  }
  if (name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("label key ", QuoteReportText(key), ": name part must not be empty"));
  }
  if (name.find('/') != std::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("label key ", QuoteReportText(key), " may contain at most one '/'"));
  }
  const absl::Status name_status =
      ValidateQualifiedNamePart(name, limits.max_label_name_length, "name part");
  if (!name_status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("label key ", QuoteReportText(key), ": ", name_status.message()));
  }
  return absl::OkStatus();
}

absl::Status ValidateLabelValue(std::string_view value, const ReportLimits& limits) {
  if (value.empty()) return absl::OkStatus();
  return ValidateQualifiedNamePart(value, limits.max_label_value_length, "label value");
}

absl::Status ValidateReportBatch(const kpiscale::v1::ReportBatch& batch,
                                 const ReportLimits& limits) {
  Problems p(limits.max_reported_problems);
  if (!batch.has_pod()) {
    p.Add("pod", "is missing");
  } else {
    CheckPod(p, batch.pod(), limits);
  }
  if (batch.sidecar_version().size() > limits.max_text_length) {
    p.Add("sidecar_version",
          absl::StrCat("must be no more than ", limits.max_text_length, " characters"));
  }
  const auto window_count = static_cast<std::size_t>(batch.windows_size());
  if (window_count == 0) {
    p.Add("windows", "must hold at least one window");
  } else if (window_count > limits.max_windows) {
    p.Add("windows", absl::StrCat("has ", window_count, " windows, more than the limit of ",
                                  limits.max_windows));
    return p.ToStatus();
  }
  std::unordered_map<uint64_t, int> first_index_of;
  first_index_of.reserve(window_count);
  for (int i = 0; i < batch.windows_size() && !p.full(); ++i) {
    const kpiscale::v1::Window& w = batch.windows(i);
    const std::string path = absl::StrCat("windows[", i, "]");
    const auto [it, inserted] = first_index_of.emplace(w.sequence(), i);
    if (!inserted) {
      p.Add(path + ".sequence",
            absl::StrCat("duplicate sequence ", w.sequence(), " (also windows[", it->second, "])"));
    }
    if (w.start_unix_ms() <= 0) {
      p.Add(path + ".start_unix_ms", absl::StrCat("must be > 0 (is ", w.start_unix_ms(), ")"));
    }
    if (w.end_unix_ms() <= w.start_unix_ms()) {
      p.Add(path + ".end_unix_ms",
            absl::StrCat("end ", w.end_unix_ms(), " must be after start ", w.start_unix_ms()));
    } else if (w.start_unix_ms() > 0 &&
               w.end_unix_ms() - w.start_unix_ms() > limits.max_window_ms) {
      p.Add(path + ".end_unix_ms",
            absl::StrCat("window of ", w.end_unix_ms() - w.start_unix_ms(),
                         " ms is longer than the limit of ", limits.max_window_ms, " ms"));
    }
    if (w.has_http()) CheckHttp(p, path + ".http", w.http(), limits);
    if (w.has_cache()) CheckCache(p, path + ".cache", w.cache(), limits);
    if (w.has_db()) CheckDb(p, path + ".db", w.db(), limits);
  }
  return p.ToStatus();
}

absl::StatusOr<kpiscale::v1::ReportBatch> ParseReportBatch(std::string_view body,
                                                           const ReportLimits& limits) {
  if (body.size() > limits.max_body_bytes) {
    return WithHttpCode(absl::InvalidArgumentError(absl::StrCat(
                            "report body of ", body.size(), " bytes exceeds the limit of ",
                            limits.max_body_bytes, " bytes; send fewer windows per batch")),
                        413);
  }
  kpiscale::v1::ReportBatch batch;
  if (body.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()) ||
      !batch.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return absl::InvalidArgumentError(
        absl::StrCat("report body of ", body.size(),
                     " bytes is not a kpiscale.v1.ReportBatch protobuf message"));
  }
  KPISCALE_RETURN_IF_ERROR(ValidateReportBatch(batch, limits));
  return batch;
}

}  // namespace kpiscale::common
