#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "kpiscale/common/clock.h"
#include "kpiscale/common/sketch.h"
#include "kpiscale/sidecar/routes.h"
#include "kpiscale/sidecar/signal_sink.h"
#include "kpiscale/sidecar/stats.h"
#include "proto/report.pb.h"

namespace kpiscale::sidecar {

/// Why an upstream exchange failed.
enum class UpstreamFailure { kConnect = 0, kTimeout = 1, kReset = 2 };

/// Layout shared by all accumulators: SLO thresholds, classic bucket bounds, route count.
struct HttpLayout {
  std::vector<double> slo_thresholds;  // seconds, ascending
  std::vector<double> buckets;         // classic histogram bounds, ascending, include thresholds
  std::size_t routes = 1;              // route templates + "other"
};

/// The HTTP figures of one worker since the last window close. Recording is a few additions and
/// two sketch inserts: no allocation in the steady state and no shared cache lines.
/// Thread-safety: none; owned by one HttpSlot.
struct HttpAccumulator {
  explicit HttpAccumulator(const HttpLayout& layout);
  void Clear();
  void MergeFrom(const HttpAccumulator& other);

  uint64_t requests = 0;
  uint64_t errors = 0;
  std::array<uint64_t, 5> status_class{};  // 1xx..5xx
  uint64_t upgrades = 0;
  double duration_sum = 0;
  std::vector<uint64_t> slow;  // per SLO threshold
  common::LatencySketch latency;
  common::LatencySketch ttfb;
  uint64_t bytes_received = 0;
  uint64_t bytes_sent = 0;
  std::array<uint64_t, 3> upstream_failures{};
  uint64_t client_aborts = 0;
  uint64_t rejected = 0;  // requests refused by a limit (431, 400, 408)
  // For Prometheus: per route, per status class counts; per route classic buckets (+Inf last)
  // and sums; TTFB buckets.
  std::vector<std::array<uint64_t, 5>> route_status;
  std::vector<std::vector<uint64_t>> route_buckets;
  std::vector<double> route_sum;
  std::vector<uint64_t> ttfb_buckets;
  double ttfb_sum = 0;
  int64_t in_flight = 0;  // not cleared: a level, not a count
  const HttpLayout* layout;
};

/// One worker's accumulator. The worker records under a mutex that only the window close ever
/// contends for (once per push interval), so a record costs an uncontended lock, not a shared
/// atomic per metric.
/// Thread-safety: all methods may be called concurrently.
class HttpSlot {
 public:
  explicit HttpSlot(const HttpLayout& layout) : acc_(layout) {}
  HttpSlot(const HttpSlot&) = delete;
  HttpSlot& operator=(const HttpSlot&) = delete;

  /// One completed request: final status (502/504 for upstream failures), end-to-end and
  /// time-to-first-byte durations, route index (HttpLayout::routes - 1 is "other").
  void RecordRequest(int status, double seconds, double ttfb_seconds, std::size_t route);
  void RecordUpgrade();
  void RecordUpstreamFailure(UpstreamFailure reason);
  void RecordClientAbort();
  void RecordRejected();
  void AddBytes(uint64_t received, uint64_t sent);
  void AddInFlight(int64_t delta);
  /// Moves the figures into `out` (merging) and clears them.
  void DrainInto(HttpAccumulator* out);

 private:
  std::mutex mu_;
  HttpAccumulator acc_ ABSL_GUARDED_BY(mu_);
};

/// Builds the windows: implements SignalSink for the data observers, owns the HTTP slots of the
/// proxy workers, and on CloseWindow() merges everything since the previous close into a
/// kpiscale.v1.Window and into the Prometheus metrics.
/// Thread-safety: all methods may be called concurrently.
class WindowBuilder final : public SignalSink {
 public:
  /// `stats` may be null (no Prometheus). Neither argument is owned; both outlive the builder.
  WindowBuilder(HttpLayout layout, SidecarStats* stats, const common::Clock& clock);
  WindowBuilder(const WindowBuilder&) = delete;
  WindowBuilder& operator=(const WindowBuilder&) = delete;

  /// A new slot for one proxy worker; the pointer stays valid for the builder's lifetime.
  HttpSlot* AddHttpSlot();
  const HttpLayout& layout() const { return layout_; }

  void RecordCacheCommand(double seconds, const CacheCommandResult& result) override;
  void RecordCacheServerWide(uint64_t hits, uint64_t misses) override;
  void RecordDbQuery(double seconds, bool error) override;

  /// Closes the open window at the current time and starts the next one. The HTTP signal is
  /// present whenever the proxy runs (zero requests is an observation); cache and db only when
  /// something was observed. The first sequence number is the start time in Unix ms plus one,
  /// then one more per call: a restarted sidecar (same pod UID) never reuses a sequence as long
  /// as it closed fewer than 1,000 windows per second.
  kpiscale::v1::Window CloseWindow();

 private:
  struct CacheAcc {
    uint64_t commands = 0, hits = 0, misses = 0, errors = 0;
    double duration_sum = 0;
    common::LatencySketch latency;
    std::array<uint64_t, kDataBuckets.size() + 1> buckets{};
    bool server_wide = false;
    bool observed = false;
  };
  struct DbAcc {
    uint64_t queries = 0, errors = 0;
    double duration_sum = 0;
    common::LatencySketch latency;
    std::array<uint64_t, kDataBuckets.size() + 1> buckets{};
    bool observed = false;
  };

  void ApplyToStats(const HttpAccumulator& http, const CacheAcc& cache, const DbAcc& db);

  const HttpLayout layout_;
  SidecarStats* const stats_;
  const common::Clock& clock_;

  std::mutex slots_mu_;
  std::vector<std::unique_ptr<HttpSlot>> slots_ ABSL_GUARDED_BY(slots_mu_);

  std::mutex data_mu_;
  CacheAcc cache_ ABSL_GUARDED_BY(data_mu_);
  DbAcc db_ ABSL_GUARDED_BY(data_mu_);

  std::mutex close_mu_;
  uint64_t sequence_ ABSL_GUARDED_BY(close_mu_);
  int64_t window_start_ms_ ABSL_GUARDED_BY(close_mu_);
  HttpAccumulator http_scratch_ ABSL_GUARDED_BY(close_mu_);
};

/// Fills a kpiscale.v1.HttpSignal from an accumulator.
void FillHttpSignal(const HttpAccumulator& acc, kpiscale::v1::HttpSignal* out);

/// The classic bucket bounds: the defaults (0.005 … 10) plus each SLO threshold, sorted, unique.
std::vector<double> ClassicBuckets(const std::vector<double>& slo_thresholds);

}  // namespace kpiscale::sidecar
