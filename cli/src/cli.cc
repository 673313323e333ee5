#include "cli.h"

#include <algorithm>
#include <iostream>

#include "CLI/CLI.hpp"
#include "commands.h"

namespace kpiscale::cli {

int Run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  CLI::App app{"kpiscale: the Kubernetes HPA algorithm, exactly, offline"};
  app.require_subcommand(1);
  app.set_version_flag("--version", KPISCALE_VERSION);

  CLI::App* hpa_cmd = app.add_subcommand("hpa", "The HPA engine");
  hpa_cmd->require_subcommand(1);
  CLI::App* conf = hpa_cmd->add_subcommand(
      "conformance", "Run hpa-conformance case files (upstream Kubernetes test cases)");
  std::vector<std::string> files;
  std::string profile = "latest";
  conf->add_option("FILE", files, "case files (hpa-sim/*/v1 JSON)")->required();
  conf->add_option("--profile", profile, "release profile: latest or v1.32")
      ->check(CLI::IsMember({"latest", "v1.32"}));

  SimulateArgs sim;
  CLI::App* simulate = app.add_subcommand(
      "simulate", "Replay an HPA over a trace (demand or metric values) or live adapter values");
  simulate->add_option("--hpa", sim.hpa_file, "HorizontalPodAutoscaler manifest (YAML)")
      ->required();
  simulate->add_option("--trace", sim.trace_file,
                       "trace CSV: 'time,demand' (load model) or 'time,<metric>,...'");
  simulate->add_option("-o,--output", sim.output, "timeline file ('-' = stdout)");
  simulate->add_option("--format", sim.format, "timeline format")
      ->check(CLI::IsMember({"csv", "json"}));
  simulate->add_option("--plot", sim.plot_file, "write an SVG chart to this file");
  simulate->add_option("--duration", sim.duration_s, "seconds to simulate (default: trace end)");
  simulate->add_option("--initial-replicas", sim.initial_replicas,
                       "starting replicas (default: minReplicas)");
  simulate->add_option("--sync-period", sim.sync_period_s,
                       "--horizontal-pod-autoscaler-sync-period, seconds");
  simulate->add_option("--drift", sim.drift_s, "processing time added to each period, seconds");
  simulate->add_option("--first-tick", sim.first_tick_s, "time of the first evaluation, seconds");
  simulate->add_option("--tolerance", sim.tolerance, "--horizontal-pod-autoscaler-tolerance");
  simulate->add_option("--cpu-initialization-period", sim.cpu_initialization_period_s, "seconds");
  simulate->add_option("--initial-readiness-delay", sim.initial_readiness_delay_s, "seconds");
  simulate->add_option("--downscale-stabilization", sim.downscale_stabilization_s, "seconds");
  simulate->add_option("--profile", sim.profile, "release profile: latest or v1.32")
      ->check(CLI::IsMember({"latest", "v1.32"}));
  simulate->add_option("--configurable-tolerance", sim.configurable_tolerance,
                       "HPAConfigurableTolerance feature gate (default true, beta in v1.35)");
  simulate->add_option("--set", sim.model_overrides,
                       "load-model parameter key=value (e.g. capacity_per_replica=120)");
  simulate->add_option("--adapter", sim.adapter_url,
                       "read Pods/Object/External metrics from a running adapter at this URL");
  simulate->add_option("--namespace", sim.namespace_name,
                       "namespace for adapter queries (default: the HPA's)");
  simulate->add_option("--pod-selector", sim.pod_selector,
                       "the HPA's pod label selector for pods/* queries");
  simulate->add_option("--token-file", sim.token_file, "bearer token for the adapter");
  simulate->add_flag("--insecure-skip-tls-verify", sim.insecure_skip_tls_verify);
  simulate->add_option("--ticks", sim.ticks, "evaluations in adapter-only mode")
      ->check(CLI::Range(1, 100000));
  simulate->add_option("--interval", sim.interval_s,
                       "wall-clock seconds between adapter polls (default: the sync period)");

  std::vector<std::string> argv_storage = args;
  std::reverse(argv_storage.begin(), argv_storage.end());
  try {
    app.parse(argv_storage);
  } catch (const CLI::ParseError& e) {
    return app.exit(e, out, err);
  }
  if (conf->parsed()) {
    return RunConformance(
        files, profile == "v1.32" ? hpa::VersionProfile::kV1_32 : hpa::VersionProfile::kLatest, out,
        err);
  }
  if (simulate->parsed()) return RunSimulate(sim, out, err);
  return 2;
}

int Main(int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  return Run(args, std::cout, std::cerr);
}

}  // namespace kpiscale::cli
