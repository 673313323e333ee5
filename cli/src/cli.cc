#include "cli.h"

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
  return 2;
}

int Main(int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  return Run(args, std::cout, std::cerr);
}

}  // namespace kpiscale::cli
