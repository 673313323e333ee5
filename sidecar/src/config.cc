#include "kpiscale/sidecar/config.h"

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "kpiscale/common/config.h"

namespace kpiscale::sidecar {
namespace {

const char* RealGetenv(const char* name) { return std::getenv(name); }

}  // namespace

absl::StatusOr<std::chrono::duration<double>> ParseDuration(std::string_view text) {
  std::string s(text);
  double scale = 1;
  auto strip = [&s](std::string_view suffix) {
    if (s.size() > suffix.size() &&
        s.compare(s.size() - suffix.size(), suffix.size(), suffix.data(), suffix.size()) == 0) {
      s.resize(s.size() - suffix.size());
      return true;
    }
    return false;
  };
  if (strip("ms")) {
    scale = 1e-3;
  } else if (strip("us")) {
    scale = 1e-6;
  } else if (strip("s")) {
    scale = 1;
  } else if (strip("m")) {
    scale = 60;
  } else if (strip("h")) {
    scale = 3600;
  }
  double v = 0;
  if (!absl::SimpleAtod(s, &v) || !std::isfinite(v) || v < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", std::string(text), "' is not a duration (e.g. 200ms, 1s, 0.2)"));
  }
  return std::chrono::duration<double>(v * scale);
}

absl::StatusOr<std::map<std::string, std::string>> ParsePodLabels(std::string_view text) {
  std::map<std::string, std::string> labels;
  int line_no = 0;
  while (!text.empty()) {
    const std::size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    const std::size_t eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0 || line.size() < eq + 3 || line[eq + 1] != '"' ||
        line.back() != '"') {
      return absl::InvalidArgumentError(
          absl::StrCat("labels line ", line_no, ": expected key=\"value\""));
    }
    std::string value;
    const std::string_view quoted = line.substr(eq + 2, line.size() - eq - 3);
    for (std::size_t i = 0; i < quoted.size(); ++i) {
      char c = quoted[i];
      if (c == '\\' && i + 1 < quoted.size()) {
        c = quoted[++i];
        if (c == 'n') c = '\n';
        if (c == 't') c = '\t';
      }
      value.push_back(c);
    }
    labels[std::string(line.substr(0, eq))] = value;
  }
  return labels;
}

absl::StatusOr<std::pair<std::string, std::string>> ParseWorkload(std::string_view text) {
  const std::size_t slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == text.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--workload '", std::string(text), "': expected kind/name"));
  }
  std::string kind(text.substr(0, slash));
  for (char& c : kind) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const std::map<std::string, std::string> kKinds = {{"deployment", "Deployment"},
                                                            {"deployments", "Deployment"},
                                                            {"statefulset", "StatefulSet"},
                                                            {"statefulsets", "StatefulSet"},
                                                            {"replicaset", "ReplicaSet"},
                                                            {"replicasets", "ReplicaSet"},
                                                            {"daemonset", "DaemonSet"},
                                                            {"daemonsets", "DaemonSet"},
                                                            {"job", "Job"},
                                                            {"rollout", "Rollout"}};
  const auto it = kKinds.find(kind);
  if (it == kKinds.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--workload '", std::string(text),
                     "': kind must be deployment, statefulset, replicaset, daemonset, job or "
                     "rollout"));
  }
  return std::make_pair(it->second, std::string(text.substr(slash + 1)));
}

absl::Status ResolveIdentity(SidecarConfig* config, const char* (*getenv_fn)(const char*)) {
  if (getenv_fn == nullptr) getenv_fn = RealGetenv;
  auto env = [getenv_fn](const char* name) {
    const char* v = getenv_fn(name);
    return v == nullptr ? std::string() : std::string(v);
  };
  kpiscale::v1::PodIdentity& pod = config->pod;
  pod.set_pod_name(env("POD_NAME"));
  if (pod.pod_name().empty()) {
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    pod.set_pod_name(host);
  }
  pod.set_namespace_(env("POD_NAMESPACE").empty() ? "default" : env("POD_NAMESPACE"));
  pod.set_pod_uid(env("POD_UID").empty()
                      ? absl::StrCat("local-", pod.namespace_(), "-", pod.pod_name())
                      : env("POD_UID"));
  pod.set_node_name(env("NODE_NAME"));
  if (!config->workload.empty()) {
    auto workload = ParseWorkload(config->workload);
    if (!workload.ok()) return workload.status();
    pod.set_workload_kind(workload->first);
    pod.set_workload_name(workload->second);
  }
  pod.set_service_name(config->service);
  if (!config->pod_labels_file.empty()) {
    std::ifstream in(config->pod_labels_file);
    if (!in) {
      return absl::NotFoundError(
          absl::StrCat("--pod-labels-file ", config->pod_labels_file, ": cannot open"));
    }
    std::stringstream ss;
    ss << in.rdbuf();
    auto labels = ParsePodLabels(ss.str());
    if (!labels.ok()) return labels.status();
    for (const auto& [k, v] : *labels) (*pod.mutable_labels())[k] = v;
  }
  return absl::OkStatus();
}

absl::Status SidecarConfig::Validate() const {
  if (proxy.upstream.empty()) return absl::InvalidArgumentError("--upstream is required");
  // Addresses are checked here so that --validate catches them, not the first connection.
  const std::pair<const char*, const std::string*> addresses[] = {{"--listen", &proxy.listen},
                                                                  {"--upstream", &proxy.upstream}};
  for (const auto& [flag, value] : addresses) {
    auto parsed = common::ParseHostPort(*value);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(flag, ": ", parsed.status().message()));
    }
  }
  if (common::ParseHostPort(proxy.upstream)->port == 0) {
    return absl::InvalidArgumentError("--upstream needs a port other than 0");
  }
  if (!metrics_listen.empty() && !common::ParseHostPort(metrics_listen).ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--metrics-listen: ", common::ParseHostPort(metrics_listen).status().message()));
  }
  if (push_interval < std::chrono::milliseconds(100) ||
      push_interval > std::chrono::milliseconds(60'000)) {
    return absl::InvalidArgumentError("--push-interval must be between 100ms and 60s");
  }
  if (slo_thresholds.empty() || slo_thresholds.size() > 8) {
    return absl::InvalidArgumentError("--slo-threshold: between 1 and 8 thresholds");
  }
  for (double t : slo_thresholds) {
    if (!(t > 0) || t > 3600) {
      return absl::InvalidArgumentError("--slo-threshold must be above 0 and at most 1h");
    }
  }
  if (push.max_pending_windows < 1 || push.max_pending_windows > 100'000) {
    return absl::InvalidArgumentError("--max-pending-windows must be between 1 and 100000");
  }
  if (proxy.max_header_bytes < 1024 || proxy.max_header_bytes > (1u << 20)) {
    return absl::InvalidArgumentError("--max-header-bytes must be between 1KiB and 1MiB");
  }
  if (!push.adapter_url.empty() && push.adapter_url.rfind("https://", 0) != 0 &&
      push.adapter_url.rfind("http://", 0) != 0) {
    return absl::InvalidArgumentError("--adapter-url must start with https:// (or http://)");
  }
  return absl::OkStatus();
}

}  // namespace kpiscale::sidecar
