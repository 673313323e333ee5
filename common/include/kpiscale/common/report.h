#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kpiscale/common/sketch.h"
#include "proto/report.pb.h"

namespace kpiscale::common {

/// Bounds applied to every ReportBatch that arrives from outside the process (principle 3:
/// bounded everything). The defaults are the contract written in docs/report-format.md.
struct ReportLimits {
  /// Largest accepted request body (POST /v1/reports); larger bodies are answered with 413.
  std::size_t max_body_bytes = 1 << 20;
  /// Windows per batch; a sidecar that has more pending sends several batches.
  std::size_t max_windows = 120;
  /// Pod labels per batch.
  std::size_t max_labels = 64;
  /// Kubernetes label rules: the name part of a key, a value, and the optional DNS prefix.
  std::size_t max_label_name_length = 63;
  std::size_t max_label_value_length = 63;
  std::size_t max_label_prefix_length = 253;
  /// Length of the pod UID (a Kubernetes UID is 36 characters; local mode may use other ids).
  std::size_t max_uid_length = 128;
  /// Length of free-form strings such as sidecar_version and workload_kind.
  std::size_t max_text_length = 128;
  /// SLO thresholds per http signal.
  std::size_t max_slo_thresholds = 8;
  /// Longest window, end - start.
  int64_t max_window_ms = 60'000;
  /// Passed to LatencySketch::FromProto for every sketch in the batch.
  SketchLimits sketch;
  /// How many problems one error message lists before it stops looking ("; " separated).
  std::size_t max_reported_problems = 8;
};

/// Checks a decoded batch against the contract (docs/report-format.md): pod identity present and
/// well-formed, label keys and values valid, windows bounded in number and length, counts
/// consistent (errors ≤ requests, status classes sum ≤ requests, hits + misses ≤ commands, slow
/// counts ≤ requests and non-increasing in the threshold), sums finite and non-negative, no
/// sequence twice in the batch, every sketch valid (LatencySketch::FromProto) and counting no
/// more events than its signal. Returns InvalidArgument whose message names each problem by
/// field path, e.g. `windows[2].http.errors: 12 exceeds requests (10)`.
/// Thread-safety: a pure function.
absl::Status ValidateReportBatch(const kpiscale::v1::ReportBatch& batch,
                                 const ReportLimits& limits);

/// Decodes and validates a POST /v1/reports body. Errors carry the HTTP code the adapter answers
/// with (HttpCodeOf in kpiscale/common/http_util.h): 413 for a body over max_body_bytes, 400 for
/// a body that is not a ReportBatch or breaks the contract.
/// Thread-safety: a pure function.
absl::StatusOr<kpiscale::v1::ReportBatch> ParseReportBatch(std::string_view body,
                                                           const ReportLimits& limits);

/// Kubernetes validation of a label key (`[prefix/]name`, prefix a DNS-1123 subdomain of at most
/// 253 characters, name at most 63 characters of `[A-Za-z0-9_.-]` starting and ending with an
/// alphanumeric). The error says what is wrong, without a field path.
absl::Status ValidateLabelKey(std::string_view key, const ReportLimits& limits = ReportLimits{});
/// Kubernetes validation of a label value (empty, or at most 63 characters like a key name).
absl::Status ValidateLabelValue(std::string_view value,
                                const ReportLimits& limits = ReportLimits{});
/// A DNS-1123 label (namespace names): at most 63 of `[a-z0-9-]`, alphanumeric at both ends.
absl::Status ValidateDns1123Label(std::string_view name);
/// A DNS-1123 subdomain (pod and node names): at most 253 characters, dot-separated labels.
absl::Status ValidateDns1123Subdomain(std::string_view name);

}  // namespace kpiscale::common
