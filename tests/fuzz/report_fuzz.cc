// ParseReportBatch over hostile bodies: never crashes, and whatever it accepts satisfies the
// contract's invariants (checked again here, independently of the validator) and survives a
// serialize/parse round trip. The downward API labels parser gets the same bytes.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "kpiscale/common/report.h"
#include "kpiscale/common/report_builder.h"

namespace {

void Require(bool cond) {
  if (!cond) std::abort();
}

void CheckAccepted(const kpiscale::v1::ReportBatch& batch,
                   const kpiscale::common::ReportLimits& limits) {
  Require(!batch.pod().pod_uid().empty());
  Require(batch.windows_size() >= 1);
  Require(static_cast<std::size_t>(batch.windows_size()) <= limits.max_windows);
  std::set<uint64_t> sequences;
  for (const auto& w : batch.windows()) {
    Require(sequences.insert(w.sequence()).second);
    Require(w.end_unix_ms() > w.start_unix_ms());
    Require(w.end_unix_ms() - w.start_unix_ms() <= limits.max_window_ms);
    if (w.has_http()) {
      const auto& h = w.http();
      Require(h.errors() <= h.requests());
      Require(h.status_5xx() <= h.errors());
      Require(std::isfinite(h.duration_sum_seconds()) && h.duration_sum_seconds() >= 0);
      Require(!h.has_latency() || h.latency().count() <= h.requests());
      for (const auto& slo : h.slo()) Require(slo.slow() <= h.requests());
    }
    if (w.has_cache()) {
      const auto& c = w.cache();
      Require(c.errors() <= c.commands());
      Require(c.server_wide() || (c.hits() <= c.commands() && c.misses() <= c.commands()));
    }
    if (w.has_db()) Require(w.db().errors() <= w.db().queries());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  kpiscale::common::ReportLimits limits;
  const auto parsed = kpiscale::common::ParseReportBatch(body, limits);
  if (parsed.ok()) {
    CheckAccepted(*parsed, limits);
    const auto again = kpiscale::common::ParseReportBatch(parsed->SerializeAsString(), limits);
    Require(again.ok());
  } else {
    Require(!parsed.status().message().empty());
    // Messages quote hostile strings cut short; a message never grows with the input.
    Require(parsed.status().message().size() < 4096);
  }
  (void)kpiscale::common::ParseDownwardApiLabels(body);
  return 0;
}
