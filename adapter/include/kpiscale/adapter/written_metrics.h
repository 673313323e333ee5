#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "kpiscale/common/label_selector.h"

namespace kpiscale::adapter {

/// A value written through the test hook (`--enable-write-metrics`, --local only).
struct WrittenValue {
  std::string ns;        // "" for cluster-scoped objects
  std::string resource;  // as written in the path, e.g. "pods", "deployments.apps"
  std::string name;
  std::string metric;
  std::string quantity;   // canonical
  common::Labels labels;  // the object's labels (`labels=k%3Dv,...`)
  int64_t timestamp_ms = 0;
};

/// Values written by POST /write-metrics/...; they stay until overwritten.
/// Thread-safety: all methods may be called concurrently.
class WrittenMetrics final {
 public:
  void Set(WrittenValue value);
  /// Every value of (ns, resource, metric); ns "" with all_namespaces lists every namespace.
  std::vector<WrittenValue> Find(std::string_view ns, std::string_view resource,
                                 std::string_view metric, bool all_namespaces) const;
  /// (resource, metric, namespaced) of every written metric, for discovery.
  std::vector<std::tuple<std::string, std::string, bool>> Names() const;
  bool empty() const;

 private:
  mutable std::mutex mu_;
  // key: resource, metric, ns, name
  std::map<std::tuple<std::string, std::string, std::string, std::string>, WrittenValue> values_;
};

}  // namespace kpiscale::adapter
