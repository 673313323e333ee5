#pragma once

#include <chrono>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "kpiscale/sidecar/observe/data_observers.h"
#include "kpiscale/sidecar/proxy.h"
#include "kpiscale/sidecar/pusher.h"
#include "proto/report.pb.h"

namespace kpiscale::sidecar {

/// Everything kpiscale-sidecar is configured with (flags and the downward-API environment).
struct SidecarConfig {
  ProxyOptions proxy;
  std::string metrics_listen = "0.0.0.0:9091";  // empty: no /metrics
  PusherOptions push;                           // adapter_url empty: no push
  std::chrono::milliseconds push_interval{1000};
  std::vector<double> slo_thresholds{0.2};
  std::string routes_file;
  std::string pod_labels_file;
  std::string workload;  // kind/name, e.g. deployment/checkout
  std::string service;
  std::chrono::milliseconds shutdown_grace{20'000};
  DataObserverOptions data;
  kpiscale::v1::PodIdentity pod;  // filled by ResolveIdentity()

  /// Range and consistency checks; errors name the flag.
  absl::Status Validate() const;
};

/// Parses a duration: "250ms", "1s", "1.5s", "2m", or a bare number of seconds ("0.2").
absl::StatusOr<std::chrono::duration<double>> ParseDuration(std::string_view text);

/// Parses the downward API labels file: one `key="value"` per line, values Go-quoted.
absl::StatusOr<std::map<std::string, std::string>> ParsePodLabels(std::string_view text);

/// Splits `deployment/NAME` (or `Deployment/NAME`, statefulset, replicaset, daemonset, job,
/// rollout) into the Kubernetes kind and the name.
absl::StatusOr<std::pair<std::string, std::string>> ParseWorkload(std::string_view text);

/// Fills config->pod from POD_NAME, POD_NAMESPACE, POD_UID, NODE_NAME (via `getenv`), the labels
/// file, --workload and --service. Without POD_NAME (outside Kubernetes) the host name is used,
/// and without POD_UID a stable "local-<namespace>-<pod>" id.
absl::Status ResolveIdentity(SidecarConfig* config,
                             const char* (*getenv_fn)(const char*) = nullptr);

}  // namespace kpiscale::sidecar
