#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "kpiscale/adapter/histogram.h"
#include "kpiscale/common/label_selector.h"

namespace kpiscale::adapter {

/// Who a pod is, from its sidecar's downward-API identity.
struct PodIdentity {
  std::string ns;
  std::string name;
  std::string uid;
  std::string node;
  std::string workload_kind;  // e.g. "Deployment"
  std::string workload_name;
  std::string service;
  common::Labels labels;

  bool operator==(const PodIdentity& o) const {
    return ns == o.ns && name == o.name && uid == o.uid && node == o.node &&
           workload_kind == o.workload_kind && workload_name == o.workload_name &&
           service == o.service && labels == o.labels;
  }
};

/// One signal (http, cache or db) of one window, validated.
struct WindowSignal {
  uint64_t events = 0;  // requests, commands or queries
  uint64_t errors = 0;
  uint64_t hits = 0;    // cache only
  uint64_t misses = 0;  // cache only
  double duration_sum_seconds = 0;
  std::vector<std::pair<double, uint64_t>> slo;  // (threshold seconds, slower than it); http only
  Histogram latency;
};

/// One validated window of a report.
struct DecodedWindow {
  uint64_t sequence = 0;
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  std::optional<WindowSignal> http;
  std::optional<WindowSignal> cache;
  std::optional<WindowSignal> db;
};

/// A validated ReportBatch (see ingest.h), the unit a WindowStore stores.
struct DecodedBatch {
  PodIdentity pod;
  std::vector<DecodedWindow> windows;
};

/// SLO counts over several windows, for one threshold.
struct ThresholdTotal {
  double threshold_seconds = 0;
  uint64_t slow = 0;
  uint64_t requests = 0;  // requests of the windows that carried this threshold
};

/// Totals of one signal over the windows of a pod (within --window) that carried it.
struct SignalTotals {
  bool present = false;
  int64_t observed_ms = 0;  // sum of the durations of those windows
  uint64_t events = 0;
  uint64_t errors = 0;
  uint64_t hits = 0;
  uint64_t misses = 0;
  double duration_sum_seconds = 0;
  std::vector<ThresholdTotal> slo;
  Histogram latency;
};

/// An immutable snapshot of one pod: identity and totals over its recent windows. Readers hold it
/// by shared_ptr, so an ingest that replaces it never waits for them.
struct PodView {
  std::shared_ptr<const PodIdentity> identity;
  uint64_t newest_sequence = 0;
  int64_t newest_end_ms = 0;
  int64_t oldest_start_ms = 0;
  int windows = 0;
  SignalTotals http;
  SignalTotals cache;
  SignalTotals db;
};
using PodViewPtr = std::shared_ptr<const PodView>;

/// What became of the windows of one batch.
struct IngestResult {
  int accepted = 0;
  int duplicate = 0;  // same (pod UID, sequence, start) already stored
  int late = 0;       // older than the newest stored window of the pod, or outside --window
};

struct StoreStats {
  std::size_t pods = 0;
  std::size_t windows = 0;
  std::size_t bytes = 0;  // approximate
};

struct StoreOptions {
  int64_t window_ms = 30'000;      // --window: how far back answers look
  int64_t stale_after_ms = 5'000;  // --stale-after: a pod without a newer window is gone
  std::size_t ring_capacity = 0;   // windows kept per pod; 0 = window_ms / 1 s + 2
  std::size_t max_pods = 200'000;  // beyond this, new pods are refused (ResourceExhausted)
};

/// The window store seam: the in-memory store below, and a Redis-backed store for several
/// replicas later. Thread-safety: all methods may be called concurrently; readers are never
/// blocked by the per-pod work of an ingest.
class WindowStore {
 public:
  virtual ~WindowStore() = default;
  /// Stores a validated batch. Windows are idempotent by (pod UID, sequence).
  virtual absl::StatusOr<IngestResult> Ingest(const DecodedBatch& batch) = 0;
  /// Pods whose newest window ended after now - stale_after, in namespace ns ("" = every
  /// namespace), in no particular order.
  virtual std::vector<PodViewPtr> FreshPods(std::string_view ns, int64_t now_ms) const = 0;
  /// Drops pods that are stale at now_ms; returns how many.
  virtual std::size_t Sweep(int64_t now_ms) = 0;
  virtual StoreStats Stats() const = 0;
  virtual const StoreOptions& options() const = 0;
};
using WindowStorePtr = std::unique_ptr<WindowStore>;

/// The in-memory store: per pod a fixed ring of recent windows kept compact, plus an immutable
/// snapshot of the totals rebuilt from the ring on every ingest of that pod.
absl::StatusOr<WindowStorePtr> CreateMemoryWindowStore(const StoreOptions& options);

}  // namespace kpiscale::adapter
