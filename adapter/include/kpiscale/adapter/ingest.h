#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "kpiscale/adapter/stats.h"
#include "kpiscale/adapter/window_store.h"
#include "kpiscale/common/clock.h"
#include "kpiscale/common/report.h"
#include "proto/report.pb.h"

namespace kpiscale::adapter {

struct IngestOptions {
  /// Body size, labels, windows per batch, window length, SLO thresholds, sketch buckets.
  common::ReportLimits limits;
  /// Concurrent ingest requests beyond which the adapter answers 429 with Retry-After.
  std::size_t max_in_flight = 64;
  /// A window may end at most this far in the future (clock skew between nodes).
  int64_t max_future_ms = 30'000;
  int retry_after_seconds = 1;
};

/// Converts a validated ReportBatch into the store's form. Windows that ended before
/// now - window_ms are left out and counted in *too_old (they could not contribute to any
/// answer). InvalidArgument for windows ending more than max_future_ms after now.
absl::StatusOr<DecodedBatch> DecodeReportBatch(const kpiscale::v1::ReportBatch& batch,
                                               const IngestOptions& options, int64_t now_ms,
                                               int64_t window_ms, int* too_old);

/// The answer to one POST /v1/reports.
struct IngestResponse {
  int status = 200;
  std::string body;  // JSON
  std::optional<int> retry_after_seconds;
  IngestResult result;
  std::string reason;  // why a batch was refused, e.g. "invalid", "too_large", "overloaded"
};

/// POST /v1/reports: decodes and validates a kpiscale.v1.ReportBatch (a bad batch is refused
/// whole, so nothing already stored is affected), stores its windows, and answers 200 with the
/// counts, 400 with a reason, 413 when too large, 415 for another content type, 429 with
/// Retry-After when overloaded or when the store is full.
/// Thread-safety: Handle may be called concurrently.
class IngestHandler final {
 public:
  IngestHandler(WindowStore& store, const common::Clock& clock, IngestOptions options,
                AdapterMetrics* metrics);

  IngestResponse Handle(std::string_view content_type, std::string_view body);

 private:
  IngestResponse HandleLocked(std::string_view content_type, std::string_view body);

  WindowStore& store_;
  const common::Clock& clock_;
  const IngestOptions options_;
  AdapterMetrics* const metrics_;
  std::atomic<std::size_t> in_flight_{0};
};

}  // namespace kpiscale::adapter
