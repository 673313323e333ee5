#include "kpiscale/adapter/ingest.h"

#include "absl/strings/str_cat.h"
#include "api/json_util.h"
#include "kpiscale/common/http_util.h"
#include "kpiscale/common/logging.h"
#include "kpiscale/common/status.h"

namespace kpiscale::adapter {
namespace {

absl::StatusOr<WindowSignal> DecodeSignal(const kpiscale::v1::Sketch* sketch, bool has_sketch,
                                          const HistogramLimits& limits, std::string_view field) {
  WindowSignal s;
  if (has_sketch) {
    auto h = Histogram::FromProto(*sketch, limits);
    if (!h.ok())
      return absl::InvalidArgumentError(
          absl::StrCat(std::string(field), ": ", h.status().message()));
    s.latency = *std::move(h);
  }
  return s;
}

HistogramLimits LimitsFrom(const common::ReportLimits& l) {
  HistogramLimits h;
  h.min_schema = l.sketch.min_schema;
  h.max_schema = l.sketch.max_schema;
  h.max_buckets = l.sketch.max_buckets;
  return h;
}

std::string ErrorBody(std::string_view reason, std::string_view message) {
  std::string out = "{\"error\":";
  internal::AppendJsonString(&out, reason);
  out.append(",\"message\":");
  internal::AppendJsonString(&out, message);
  out.push_back('}');
  return out;
}

}  // namespace

absl::StatusOr<DecodedBatch> DecodeReportBatch(const kpiscale::v1::ReportBatch& batch,
                                               const IngestOptions& options, int64_t now_ms,
                                               int64_t window_ms, int* too_old) {
  DecodedBatch out;
  const auto& pod = batch.pod();
  out.pod.ns = pod.namespace_();
  out.pod.name = pod.pod_name();
  out.pod.uid = pod.pod_uid();
  out.pod.node = pod.node_name();
  out.pod.workload_kind = pod.workload_kind();
  out.pod.workload_name = pod.workload_name();
  out.pod.service = pod.service_name();
  for (const auto& [k, v] : pod.labels()) out.pod.labels.emplace(k, v);
  const HistogramLimits hl = LimitsFrom(options.limits);
  out.windows.reserve(static_cast<std::size_t>(batch.windows_size()));
  for (int i = 0; i < batch.windows_size(); ++i) {
    const auto& w = batch.windows(i);
    if (w.end_unix_ms() > now_ms + options.max_future_ms) {
      return absl::InvalidArgumentError(
          absl::StrCat("windows[", i, "].end_unix_ms: ", w.end_unix_ms() - now_ms,
                       " ms in the future (limit ", options.max_future_ms, ")"));
    }
    if (w.end_unix_ms() <= now_ms - window_ms) {
      ++*too_old;
      continue;
    }
    DecodedWindow d;
    d.sequence = w.sequence();
    d.start_ms = w.start_unix_ms();
    d.end_ms = w.end_unix_ms();
    if (d.end_ms <= d.start_ms) {
      return absl::InvalidArgumentError(absl::StrCat("windows[", i, "]: end not after start"));
    }
    if (w.has_http()) {
      const auto& h = w.http();
      KPISCALE_ASSIGN_OR_RETURN(auto s,
                                DecodeSignal(&h.latency(), h.has_latency(), hl,
                                             absl::StrCat("windows[", i, "].http.latency")));
      s.events = h.requests();
      s.errors = h.errors();
      s.duration_sum_seconds = h.duration_sum_seconds();
      for (const auto& t : h.slo()) s.slo.emplace_back(t.threshold_seconds(), t.slow());
      d.http = std::move(s);
    }
    if (w.has_cache()) {
      const auto& c = w.cache();
      KPISCALE_ASSIGN_OR_RETURN(auto s,
                                DecodeSignal(&c.latency(), c.has_latency(), hl,
                                             absl::StrCat("windows[", i, "].cache.latency")));
      s.events = c.commands();
      s.errors = c.errors();
      s.hits = c.hits();
      s.misses = c.misses();
      s.duration_sum_seconds = c.duration_sum_seconds();
      d.cache = std::move(s);
    }
    if (w.has_db()) {
      const auto& b = w.db();
      KPISCALE_ASSIGN_OR_RETURN(auto s, DecodeSignal(&b.latency(), b.has_latency(), hl,
                                                     absl::StrCat("windows[", i, "].db.latency")));
      s.events = b.queries();
      s.errors = b.errors();
      s.duration_sum_seconds = b.duration_sum_seconds();
      d.db = std::move(s);
    }
    out.windows.push_back(std::move(d));
  }
  return out;
}

IngestHandler::IngestHandler(WindowStore& store, const common::Clock& clock, IngestOptions options,
                             AdapterMetrics* metrics)
    : store_(store), clock_(clock), options_(std::move(options)), metrics_(metrics) {}

IngestResponse IngestHandler::Handle(std::string_view content_type, std::string_view body) {
  IngestResponse r;
  if (in_flight_.fetch_add(1, std::memory_order_acq_rel) >= options_.max_in_flight) {
    in_flight_.fetch_sub(1, std::memory_order_acq_rel);
    r.status = 429;
    r.reason = "overloaded";
    r.retry_after_seconds = options_.retry_after_seconds;
    r.body = ErrorBody(r.reason, "too many concurrent reports; retry later");
  } else {
    r = HandleLocked(content_type, body);
    in_flight_.fetch_sub(1, std::memory_order_acq_rel);
  }
  if (metrics_ != nullptr) {
    metrics_->RecordBatch(r.status);
    metrics_->RecordWindows("accepted", "", r.result.accepted);
    metrics_->RecordWindows("duplicate", "", r.result.duplicate);
    metrics_->RecordWindows("rejected", "late", r.result.late);
  }
  return r;
}

IngestResponse IngestHandler::HandleLocked(std::string_view content_type, std::string_view body) {
  static auto log = common::Logger(common::loggers::kAdapterIngest);
  IngestResponse r;
  auto refuse = [&](int status, std::string reason, absl::string_view message) {
    r.status = status;
    r.reason = std::move(reason);
    r.body = ErrorBody(r.reason, internal::Sv(message));
    KPISCALE_LOG_EVERY_N(log, spdlog::level::warn, 100,
                         "msg=report_refused code={} reason={} err={}", status, r.reason,
                         common::LogfmtValue(internal::Sv(message)));
    if (metrics_ != nullptr) metrics_->RecordWindows("rejected", r.reason, 1);
    return r;
  };
  const auto semi = content_type.find(';');
  std::string_view media = content_type.substr(0, semi);
  while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
  if (media != "application/x-protobuf" && media != "application/octet-stream") {
    return refuse(415, "content_type",
                  absl::StrCat("Content-Type must be application/x-protobuf, not \"",
                               std::string(content_type), "\""));
  }
  auto batch = common::ParseReportBatch(body, options_.limits);
  if (!batch.ok()) {
    const int code = common::HttpCodeOf(batch.status());
    return refuse(code, code == 413 ? "too_large" : "invalid", batch.status().message());
  }
  const int64_t now = clock_.NowUnixMillis();
  int too_old = 0;
  auto decoded = DecodeReportBatch(*batch, options_, now, store_.options().window_ms, &too_old);
  if (!decoded.ok()) return refuse(400, "invalid", decoded.status().message());
  r.result.late = too_old;
  if (!decoded->windows.empty()) {
    auto stored = store_.Ingest(*decoded);
    if (!stored.ok()) {
      if (stored.status().code() == absl::StatusCode::kResourceExhausted) {
        r.retry_after_seconds = options_.retry_after_seconds;
        return refuse(429, "store_full", stored.status().message());
      }
      return refuse(common::HttpCodeOf(stored.status()), "invalid", stored.status().message());
    }
    r.result.accepted = stored->accepted;
    r.result.duplicate = stored->duplicate;
    r.result.late += stored->late;
  }
  r.body = absl::StrCat("{\"accepted\":", r.result.accepted, ",\"duplicate\":", r.result.duplicate,
                        ",\"late\":", r.result.late, "}");
  return r;
}

}  // namespace kpiscale::adapter
