#pragma once

#include <string>
#include <utility>
#include <vector>

#include "kpiscale/adapter/window_store.h"
#include "kpiscale/common/report_builder.h"
#include "proto/report.pb.h"

namespace kpiscale::adapter::testing {

/// A window of `requests` HTTP requests of the given durations (cycled), `errors` of them 5xx.
inline kpiscale::v1::Window HttpWindow(uint64_t seq, int64_t end_ms, int requests, int errors,
                                       const std::vector<double>& durations,
                                       int64_t length_ms = 1000) {
  common::WindowBuilder b({0.2});
  for (int i = 0; i < requests; ++i) {
    const double d = durations[static_cast<std::size_t>(i) % durations.size()];
    b.RecordHttpRequest(i < errors ? 500 : 200, d, d / 2);
  }
  return b.Finish(seq, end_ms - length_ms, end_ms);
}

inline common::ReportBatchBuilder Pod(const std::string& ns, const std::string& name,
                                      const std::string& workload = "web",
                                      const std::string& app = "web") {
  common::ReportBatchBuilder b(ns, name, "uid-" + ns + "-" + name);
  b.NodeName("node-a").Workload("Deployment", workload).ServiceName(workload + "-svc");
  b.Label("app", app);
  return b;
}

/// Converts a proto batch into the store's form (no limits beyond the defaults).
DecodedBatch Decode(const kpiscale::v1::ReportBatch& batch, int64_t now_ms);

}  // namespace kpiscale::adapter::testing
