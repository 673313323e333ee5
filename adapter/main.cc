// kpiscale-adapter: flags, logging, start, wait for SIGTERM/SIGINT, drain, exit 0.
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "kpiscale/adapter/config.h"
#include "kpiscale/adapter/server.h"
#include "kpiscale/common/logging.h"

namespace {

bool WritePortsFile(const std::string& path, int secure, int ingest, int metrics) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << "{\"secure_port\":" << secure << ",\"ingest_port\":" << ingest
        << ",\"metrics_port\":" << metrics << "}\n";
    if (!out) return false;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  return !ec;
}

}  // namespace

int main(int argc, char** argv) {
  using kpiscale::common::LogfmtValue;
  int exit_code = -1;
  auto config = kpiscale::adapter::ParseAdapterFlags(argc, argv, &exit_code);
  if (exit_code >= 0) return exit_code;
  if (!config.ok()) {
    std::fprintf(stderr, "kpiscale-adapter: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  kpiscale::common::LoggingOptions logging;
  logging.level = config->log_level;
  logging.format = config->log_format == "json" ? kpiscale::common::LogFormat::kJson
                                                : kpiscale::common::LogFormat::kText;
  if (auto st = kpiscale::common::InitLogging(logging); !st.ok()) {
    std::fprintf(stderr, "kpiscale-adapter: %s\n", std::string(st.message()).c_str());
    return 2;
  }
  auto log = kpiscale::common::Logger(kpiscale::common::loggers::kMain);
  if (auto st = config->Validate(); !st.ok()) {
    log->error("msg=invalid_config err={}", LogfmtValue(std::string(st.message())));
    return 2;
  }
  log->info("msg=config {}", config->Summary());
  if (config->validate_only) {
    std::printf("configuration is valid\n");
    return 0;
  }
  // Block the stop signals in every thread; main waits for them with sigwait.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto server = kpiscale::adapter::AdapterServer::Start(*config);
  if (!server.ok()) {
    log->error("msg=start_failed err={}", LogfmtValue(std::string(server.status().message())));
    return 1;
  }
  auto& s = **server;
  std::printf("kpiscale-adapter listening secure_port=%d ingest_port=%d metrics_port=%d\n",
              s.secure_port(), s.ingest_port(), s.metrics_port());
  std::fflush(stdout);
  if (!config->ports_file.empty() &&
      !WritePortsFile(config->ports_file, s.secure_port(), s.ingest_port(), s.metrics_port())) {
    log->error("msg=ports_file_failed path={}", LogfmtValue(config->ports_file));
    s.Shutdown();
    return 1;
  }
  int sig = 0;
  sigwait(&signals, &sig);
  log->info("msg=shutting_down signal={}", sig);
  s.Shutdown();
  log->info("msg=stopped");
  return 0;
}
