#include "kpiscale/common/report_builder.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace kpiscale::common {
namespace {

// Sums and sketches take only finite, non-negative durations; a broken clock reading must not
// poison the window (the count still records that the event happened).
double SaneDuration(double seconds) {
  return std::isfinite(seconds) && seconds > 0 ? seconds : 0.0;
}

void AppendUtf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

// Reads a Go strconv.Quote'd string starting at the opening quote.
absl::StatusOr<std::string> UnquoteGo(std::string_view s) {
  if (s.size() < 2 || s.front() != '"' || s.back() != '"') {
    return absl::InvalidArgumentError("value must be a double-quoted string");
  }
  s = s.substr(1, s.size() - 2);
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '"') return absl::InvalidArgumentError("unescaped '\"' inside the value");
    if (c != '\\') {
      out += c;
      continue;
    }
    if (++i >= s.size()) return absl::InvalidArgumentError("dangling '\\' at the end");
    const char e = s[i];
    auto hex = [&](std::size_t digits) -> absl::StatusOr<uint32_t> {
      if (i + digits >= s.size()) {
        return absl::InvalidArgumentError(absl::StrCat("short \\", std::string(1, e), " escape"));
      }
      uint32_t v = 0;
      for (std::size_t k = 1; k <= digits; ++k) {
        const char h = s[i + k];
        v <<= 4;
        if (h >= '0' && h <= '9') {
          v |= static_cast<uint32_t>(h - '0');
        } else if (h >= 'a' && h <= 'f') {
          v |= static_cast<uint32_t>(h - 'a' + 10);
        } else if (h >= 'A' && h <= 'F') {
          v |= static_cast<uint32_t>(h - 'A' + 10);
        } else {
          return absl::InvalidArgumentError(absl::StrCat("bad hex digit in \\", std::string(1, e)));
        }
      }
      i += digits;
      return v;
    };
    switch (e) {
      case '"':
      case '\\':
      case '\'':
        out += e;
        break;
      case 'n':
        out += '\n';
        break;
      case 't':
        out += '\t';
        break;
      case 'r':
        out += '\r';
        break;
      case 'a':
        out += '\a';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'v':
        out += '\v';
        break;
      case 'x': {
        absl::StatusOr<uint32_t> v = hex(2);
        if (!v.ok()) return v.status();
        out += static_cast<char>(*v);
        break;
      }
      case 'u':
      case 'U': {
        absl::StatusOr<uint32_t> v = hex(e == 'u' ? 4 : 8);
        if (!v.ok()) return v.status();
        if (*v > 0x10ffff) return absl::InvalidArgumentError("code point beyond U+10FFFF");
        AppendUtf8(*v, out);
        break;
      }
      default:
        return absl::InvalidArgumentError(absl::StrCat("unknown escape \\", std::string(1, e)));
    }
  }
  return out;
}

}  // namespace

WindowBuilder::WindowBuilder(std::vector<double> slo_thresholds, int sketch_schema)
    : slo_thresholds_(std::move(slo_thresholds)),
      http_latency_(sketch_schema),
      http_ttfb_(sketch_schema),
      cache_latency_(sketch_schema),
      db_latency_(sketch_schema) {
  slo_thresholds_.erase(std::remove_if(slo_thresholds_.begin(), slo_thresholds_.end(),
                                       [](double t) { return !std::isfinite(t) || t <= 0; }),
                        slo_thresholds_.end());
  std::sort(slo_thresholds_.begin(), slo_thresholds_.end());
  slo_thresholds_.erase(std::unique(slo_thresholds_.begin(), slo_thresholds_.end()),
                        slo_thresholds_.end());
  Reset();
}

void WindowBuilder::Reset() {
  http_seen_ = cache_seen_ = db_seen_ = false;
  http_.Clear();
  cache_.Clear();
  db_.Clear();
  for (double t : slo_thresholds_) http_.add_slo()->set_threshold_seconds(t);
  http_latency_.Clear();
  http_ttfb_.Clear();
  cache_latency_.Clear();
  db_latency_.Clear();
}

void WindowBuilder::RecordHttpRequest(int status_code, double duration_seconds,
                                      std::optional<double> ttfb_seconds, uint64_t bytes_received,
                                      uint64_t bytes_sent) {
  http_seen_ = true;
  const double d = SaneDuration(duration_seconds);
  http_.set_requests(http_.requests() + 1);
  switch (status_code / 100) {
    case 1:
      http_.set_status_1xx(http_.status_1xx() + 1);
      break;
    case 2:
      http_.set_status_2xx(http_.status_2xx() + 1);
      break;
    case 3:
      http_.set_status_3xx(http_.status_3xx() + 1);
      break;
    case 4:
      http_.set_status_4xx(http_.status_4xx() + 1);
      break;
    case 5:
      http_.set_status_5xx(http_.status_5xx() + 1);
      break;
    default:
      break;  // Out-of-range codes count as requests in no class.
  }
  if (status_code >= 500) http_.set_errors(http_.errors() + 1);
  http_.set_duration_sum_seconds(http_.duration_sum_seconds() + d);
  for (auto& slo : *http_.mutable_slo()) {
    if (d > slo.threshold_seconds()) slo.set_slow(slo.slow() + 1);
  }
  http_latency_.Add(d);
  if (ttfb_seconds.has_value()) http_ttfb_.Add(SaneDuration(*ttfb_seconds));
  http_.set_bytes_received(http_.bytes_received() + bytes_received);
  http_.set_bytes_sent(http_.bytes_sent() + bytes_sent);
}

void WindowBuilder::RecordUpstreamFailure(int status_code, double duration_seconds) {
  RecordHttpRequest(status_code >= 500 && status_code <= 599 ? status_code : 502, duration_seconds);
}

void WindowBuilder::RecordUpgrade() {
  http_seen_ = true;
  http_.set_upgrades(http_.upgrades() + 1);
}

void WindowBuilder::RecordCacheCommand(CacheResult result, bool error, double duration_seconds) {
  cache_seen_ = true;
  const double d = SaneDuration(duration_seconds);
  cache_.set_commands(cache_.commands() + 1);
  if (!cache_.server_wide()) {
    if (result == CacheResult::kHit) cache_.set_hits(cache_.hits() + 1);
    if (result == CacheResult::kMiss) cache_.set_misses(cache_.misses() + 1);
  }
  if (error) cache_.set_errors(cache_.errors() + 1);
  cache_.set_duration_sum_seconds(cache_.duration_sum_seconds() + d);
  cache_latency_.Add(d);
}

void WindowBuilder::SetServerWideCacheCounts(uint64_t hits, uint64_t misses) {
  cache_seen_ = true;
  cache_.set_server_wide(true);
  cache_.set_hits(hits);
  cache_.set_misses(misses);
}

void WindowBuilder::RecordQuery(bool error, double duration_seconds) {
  db_seen_ = true;
  const double d = SaneDuration(duration_seconds);
  db_.set_queries(db_.queries() + 1);
  if (error) db_.set_errors(db_.errors() + 1);
  db_.set_duration_sum_seconds(db_.duration_sum_seconds() + d);
  db_latency_.Add(d);
}

kpiscale::v1::Window WindowBuilder::Finish(uint64_t sequence, int64_t start_unix_ms,
                                           int64_t end_unix_ms) {
  kpiscale::v1::Window w;
  w.set_sequence(sequence);
  w.set_start_unix_ms(start_unix_ms);
  w.set_end_unix_ms(end_unix_ms);
  if (http_seen_) {
    *w.mutable_http() = http_;
    if (!http_latency_.empty()) http_latency_.ToProto(w.mutable_http()->mutable_latency());
    if (!http_ttfb_.empty()) http_ttfb_.ToProto(w.mutable_http()->mutable_ttfb());
  }
  if (cache_seen_) {
    *w.mutable_cache() = cache_;
    if (!cache_latency_.empty()) cache_latency_.ToProto(w.mutable_cache()->mutable_latency());
  }
  if (db_seen_) {
    *w.mutable_db() = db_;
    if (!db_latency_.empty()) db_latency_.ToProto(w.mutable_db()->mutable_latency());
  }
  Reset();
  return w;
}

ReportBatchBuilder::ReportBatchBuilder(std::string_view pod_namespace, std::string_view pod_name,
                                       std::string_view pod_uid) {
  auto* pod = batch_.mutable_pod();
  pod->set_namespace_(std::string(pod_namespace));
  pod->set_pod_name(std::string(pod_name));
  pod->set_pod_uid(std::string(pod_uid));
}

ReportBatchBuilder& ReportBatchBuilder::NodeName(std::string_view node) {
  batch_.mutable_pod()->set_node_name(std::string(node));
  return *this;
}

ReportBatchBuilder& ReportBatchBuilder::Workload(std::string_view kind, std::string_view name) {
  batch_.mutable_pod()->set_workload_kind(std::string(kind));
  batch_.mutable_pod()->set_workload_name(std::string(name));
  return *this;
}

ReportBatchBuilder& ReportBatchBuilder::ServiceName(std::string_view service) {
  batch_.mutable_pod()->set_service_name(std::string(service));
  return *this;
}

ReportBatchBuilder& ReportBatchBuilder::Label(std::string_view key, std::string_view value) {
  (*batch_.mutable_pod()->mutable_labels())[std::string(key)] = std::string(value);
  return *this;
}

ReportBatchBuilder& ReportBatchBuilder::SidecarVersion(std::string_view version) {
  batch_.set_sidecar_version(std::string(version));
  return *this;
}

ReportBatchBuilder& ReportBatchBuilder::AddWindow(kpiscale::v1::Window window) {
  *batch_.add_windows() = std::move(window);
  return *this;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParseDownwardApiLabels(
    std::string_view text) {
  std::vector<std::pair<std::string, std::string>> labels;
  int line_number = 0;
  for (absl::string_view raw : absl::StrSplit(absl::string_view(text.data(), text.size()), '\n')) {
    ++line_number;
    const absl::string_view line = absl::StripAsciiWhitespace(raw);
    if (line.empty()) continue;
    const std::size_t eq = line.find('=');
    if (eq == absl::string_view::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("labels file line ", line_number, ": expected key=\"value\""));
    }
    absl::StatusOr<std::string> value =
        UnquoteGo(std::string_view(line.data() + eq + 1, line.size() - eq - 1));
    if (!value.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("labels file line ", line_number, ": ", value.status().message()));
    }
    labels.emplace_back(std::string(line.substr(0, eq)), *std::move(value));
  }
  return labels;
}

}  // namespace kpiscale::common
