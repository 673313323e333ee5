#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "kpiscale/hpa/types.h"

namespace kpiscale::cli {

/// `kpiscale hpa conformance FILE...`: one line per case, then "N passed, M failed, K skipped".
/// Returns 0 when nothing failed, 1 on a failure, 2 when a file cannot be run.
int RunConformance(const std::vector<std::string>& files, hpa::VersionProfile profile,
                   std::ostream& out, std::ostream& err);

}  // namespace kpiscale::cli

namespace kpiscale::cli {

/// Settings of `kpiscale simulate`.
struct SimulateArgs {
  std::string hpa_file;
  std::string trace_file;
  std::string output = "-";
  std::string format = "csv";
  std::string plot_file;
  double duration_s = 0;
  int initial_replicas = 0;
  double sync_period_s = 15;
  double drift_s = 0.05;
  double first_tick_s = 0;
  double tolerance = 0.1;
  double cpu_initialization_period_s = 300;
  double initial_readiness_delay_s = 30;
  double downscale_stabilization_s = 300;
  std::string profile = "latest";
  bool configurable_tolerance = true;
  std::vector<std::string> model_overrides;  ///< key=value
  std::string adapter_url;
  std::string namespace_name;
  std::string pod_selector;
  std::string token_file;
  bool insecure_skip_tls_verify = false;
  int ticks = 1;
  double interval_s = -1;  ///< < 0: the sync period
};

/// `kpiscale simulate`: replays an HPA over a trace (or live adapter values).
int RunSimulate(const SimulateArgs& args, std::ostream& out, std::ostream& err);

}  // namespace kpiscale::cli
