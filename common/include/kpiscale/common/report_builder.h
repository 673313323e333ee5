#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "kpiscale/common/sketch.h"
#include "proto/report.pb.h"

namespace kpiscale::common {

/// Accumulates the events of one window and produces a kpiscale.v1.Window whose counts are
/// consistent by construction (they pass ValidateReportBatch). Signals without any recorded
/// event are left absent (unknown is not zero).
/// Thread-safety: none; one writer, or external locking.
class WindowBuilder {
 public:
  /// `slo_thresholds` (seconds, > 0) are the thresholds for which slow requests are counted;
  /// a request is slow when its duration is strictly above the threshold.
  explicit WindowBuilder(std::vector<double> slo_thresholds = {0.2},
                         int sketch_schema = LatencySketch::kDefaultSchema);

  /// A completed HTTP request with its status code (100..599), end-to-end duration and time to
  /// first byte (nullopt when no byte was sent). Codes ≥ 500 count as errors.
  void RecordHttpRequest(int status_code, double duration_seconds,
                         std::optional<double> ttfb_seconds = std::nullopt,
                         uint64_t bytes_received = 0, uint64_t bytes_sent = 0);
  /// A request the sidecar answered itself because the upstream failed (502 or 504): an error.
  void RecordUpstreamFailure(int status_code, double duration_seconds);
  /// A connection switched to a tunnel after 101; not a timed request.
  void RecordUpgrade();

  enum class CacheResult { kNone, kHit, kMiss };
  /// One cache command; kNone for commands that are neither a read hit nor a read miss.
  void RecordCacheCommand(CacheResult result, bool error, double duration_seconds);
  /// Marks the cache hits/misses as server-wide figures (INFO polling) and sets them.
  void SetServerWideCacheCounts(uint64_t hits, uint64_t misses);

  /// One database query.
  void RecordQuery(bool error, double duration_seconds);

  /// Whether any event was recorded since the last Finish().
  bool empty() const { return !http_seen_ && !cache_seen_ && !db_seen_; }

  /// The window [start_unix_ms, end_unix_ms) with the recorded signals; then starts afresh.
  kpiscale::v1::Window Finish(uint64_t sequence, int64_t start_unix_ms, int64_t end_unix_ms);

 private:
  void Reset();

  std::vector<double> slo_thresholds_;
  bool http_seen_ = false;
  bool cache_seen_ = false;
  bool db_seen_ = false;
  kpiscale::v1::HttpSignal http_;
  kpiscale::v1::CacheSignal cache_;
  kpiscale::v1::DbSignal db_;
  LatencySketch http_latency_;
  LatencySketch http_ttfb_;
  LatencySketch cache_latency_;
  LatencySketch db_latency_;
};

/// Assembles a ReportBatch: a pod identity plus windows.
/// Thread-safety: none.
class ReportBatchBuilder {
 public:
  ReportBatchBuilder(std::string_view pod_namespace, std::string_view pod_name,
                     std::string_view pod_uid);

  ReportBatchBuilder& NodeName(std::string_view node);
  ReportBatchBuilder& Workload(std::string_view kind, std::string_view name);
  ReportBatchBuilder& ServiceName(std::string_view service);
  ReportBatchBuilder& Label(std::string_view key, std::string_view value);
  ReportBatchBuilder& SidecarVersion(std::string_view version);
  ReportBatchBuilder& AddWindow(kpiscale::v1::Window window);

  const kpiscale::v1::ReportBatch& batch() const { return batch_; }
  kpiscale::v1::ReportBatch Build() const { return batch_; }
  std::string SerializeAsString() const { return batch_.SerializeAsString(); }

 private:
  kpiscale::v1::ReportBatch batch_;
};

/// Parses the downward API labels file (`key="value"` per line, values Go-quoted) into a map.
/// Errors name the line.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParseDownwardApiLabels(
    std::string_view text);

}  // namespace kpiscale::common
