#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "commands.h"
#include "kpiscale/hpa/adapter_metrics.h"
#include "kpiscale/hpa/simulator.h"
#include "kpiscale/hpa/spec_io.h"

namespace kpiscale::cli {
namespace {

bool WriteFile(const std::string& path, const std::string& content, std::ostream& err) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << content;
  f.close();
  if (!f) {
    err << "error: cannot write " << path << "\n";
    return false;
  }
  return true;
}

}  // namespace

int RunSimulate(const SimulateArgs& a, std::ostream& out, std::ostream& err) {
  absl::StatusOr<hpa::HpaSpec> spec = hpa::LoadHpaManifest(a.hpa_file);
  if (!spec.ok()) {
    err << "error: " << spec.status().message() << "\n";
    return 2;
  }
  hpa::Trace trace;
  if (!a.trace_file.empty()) {
    absl::StatusOr<hpa::Trace> t = hpa::LoadTrace(a.trace_file);
    if (!t.ok()) {
      err << "error: " << t.status().message() << "\n";
      return 2;
    }
    trace = *std::move(t);
  } else if (a.adapter_url.empty()) {
    err << "error: give --trace, --adapter, or both\n";
    return 2;
  } else {
    // Live values only: an empty metrics trace (resource metrics are then unknown).
    trace.kind = hpa::Trace::Kind::kMetrics;
    trace.times_s = {0};
  }
  for (const std::string& kv : a.model_overrides) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos) {
      err << "error: --set wants key=value, got \"" << kv << "\"\n";
      return 2;
    }
    if (absl::Status st = trace.model.Set(kv.substr(0, eq), kv.substr(eq + 1)); !st.ok()) {
      err << "error: --set " << kv << ": " << st.message() << "\n";
      return 2;
    }
  }

  hpa::SimulationOptions opt;
  opt.config.sync_period = hpa::Seconds(a.sync_period_s);
  opt.config.tolerance = a.tolerance;
  opt.config.cpu_initialization_period = hpa::Seconds(a.cpu_initialization_period_s);
  opt.config.delay_of_initial_readiness_status = hpa::Seconds(a.initial_readiness_delay_s);
  opt.config.downscale_stabilization_window = hpa::Seconds(a.downscale_stabilization_s);
  opt.config.profile =
      a.profile == "v1.32" ? hpa::VersionProfile::kV1_32 : hpa::VersionProfile::kLatest;
  opt.config.gates.configurable_tolerance = a.configurable_tolerance;
  opt.drift = hpa::Seconds(a.drift_s);
  opt.first_tick = hpa::Seconds(a.first_tick_s);
  opt.duration = hpa::Seconds(a.duration_s);
  opt.initial_replicas = a.initial_replicas;

  std::unique_ptr<hpa::AdapterMetricsSource> live;
  if (!a.adapter_url.empty()) {
    hpa::AdapterOptions ao;
    ao.url = a.adapter_url;
    ao.namespace_name = !a.namespace_name.empty() ? a.namespace_name : spec->namespace_name;
    ao.pod_selector = a.pod_selector;
    ao.insecure_skip_tls_verify = a.insecure_skip_tls_verify;
    if (!a.token_file.empty()) {
      std::ifstream tf(a.token_file);
      std::stringstream ss;
      ss << tf.rdbuf();
      if (!tf) {
        err << "error: cannot read " << a.token_file << "\n";
        return 2;
      }
      ao.bearer_token = ss.str();
      while (!ao.bearer_token.empty() &&
             (ao.bearer_token.back() == '\n' || ao.bearer_token.back() == '\r')) {
        ao.bearer_token.pop_back();
      }
    }
    absl::StatusOr<std::unique_ptr<hpa::AdapterMetricsSource>> src =
        hpa::AdapterMetricsSource::Create(ao);
    if (!src.ok()) {
      err << "error: " << src.status().message() << "\n";
      return 2;
    }
    live = *std::move(src);
    // The live pods are the starting pods: their names let per-pod values line up.
    for (const hpa::MetricSpec& m : spec->metrics) {
      if (m.type != "Pods") continue;
      absl::StatusOr<hpa::PodMetricsInfo> pods = live->GetRawMetric(m);
      if (pods.ok()) {
        for (const auto& [name, value] : *pods) opt.initial_pod_names.push_back(name);
      } else {
        err << "warning: " << pods.status().message() << "\n";
      }
      break;
    }
    if (a.trace_file.empty()) {
      opt.duration = (opt.config.sync_period + opt.drift) * (std::max(1, a.ticks) - 1) + 1;
    }
    const double interval = a.interval_s < 0 ? a.sync_period_s : a.interval_s;
    if (interval > 0) {
      opt.between_ticks = [interval] {
        std::this_thread::sleep_for(std::chrono::duration<double>(interval));
      };
    }
  }

  absl::StatusOr<std::vector<hpa::TimelineRow>> rows = hpa::Simulate(*spec, trace, opt, live.get());
  if (!rows.ok()) {
    err << "error: " << rows.status().message() << "\n";
    return 2;
  }
  const std::string body =
      a.format == "json" ? hpa::TimelineToJson(*rows).dump(1) + "\n" : hpa::TimelineToCsv(*rows);
  if (a.output == "-") {
    out << body;
  } else if (!WriteFile(a.output, body, err)) {
    return 2;
  }
  if (!a.plot_file.empty() && !WriteFile(a.plot_file, hpa::TimelineToSvg(*spec, *rows), err)) {
    return 2;
  }
  return 0;
}

}  // namespace kpiscale::cli
