#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

#include "absl/status/statusor.h"

namespace prometheus {
class Registry;
class Counter;
class Gauge;
class Histogram;
template <typename T>
class Family;
}  // namespace prometheus

namespace kpiscale::adapter {

/// The adapter's own metrics (served on --metrics-port): API requests by group, version, verb
/// and code with latency, ingest windows and batches by outcome, pods and series stored, and the
/// freshness (now - item timestamp) of answered items. Label sets are bounded: codes and
/// reasons come from fixed lists in the code.
/// Thread-safety: all methods may be called concurrently.
class AdapterMetrics final {
 public:
  static absl::StatusOr<std::unique_ptr<AdapterMetrics>> Create(
      std::shared_ptr<prometheus::Registry> registry);

  void RecordRequest(const std::string& group, const std::string& version, const std::string& verb,
                     int code, double seconds);
  /// result: accepted, duplicate or rejected; reason "" for accepted/duplicate.
  void RecordWindows(const std::string& result, const std::string& reason, double n);
  void RecordBatch(int code);
  void RecordFreshness(double seconds);
  void SetStored(double pods, double series);

  const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }

 private:
  AdapterMetrics() = default;

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* requests_ = nullptr;
  prometheus::Family<prometheus::Histogram>* duration_ = nullptr;
  prometheus::Family<prometheus::Counter>* windows_ = nullptr;
  prometheus::Family<prometheus::Counter>* batches_ = nullptr;
  prometheus::Gauge* pods_ = nullptr;
  prometheus::Gauge* series_ = nullptr;
  prometheus::Histogram* freshness_ = nullptr;

  // Children are looked up once per label set and cached, so the hot path takes one short lock
  // and a map lookup instead of Family::Add.
  std::mutex mu_;
  std::map<std::tuple<std::string, std::string, std::string, int>, prometheus::Counter*>
      request_children_;
  std::map<std::string, prometheus::Histogram*> duration_children_;
  std::map<std::pair<std::string, std::string>, prometheus::Counter*> window_children_;
  std::map<int, prometheus::Counter*> batch_children_;
};

}  // namespace kpiscale::adapter
