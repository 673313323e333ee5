// kpiscale-sidecar: flags to SidecarConfig, then RunSidecar (sidecar/src/app.cc).
#include <cstdio>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "kpiscale/sidecar/app.h"
#include "kpiscale/sidecar/config.h"
#include "spdlog/spdlog.h"

namespace {

using kpiscale::sidecar::ParseDuration;

// Converts a duration flag into milliseconds, naming the flag on error.
bool ToMillis(const std::string& flag, const std::string& text, std::chrono::milliseconds* out) {
  auto d = ParseDuration(text);
  if (!d.ok()) {
    std::fprintf(stderr, "%s: %s\n", flag.c_str(), std::string(d.status().message()).c_str());
    return false;
  }
  *out = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  kpiscale::sidecar::SidecarConfig config;
  CLI::App app{
      "kpiscale-sidecar: transparent HTTP/1.1 proxy and Redis/PostgreSQL observer that "
      "pushes 1-second KPI windows to kpiscale-adapter"};
  // Kubernetes style: a flag given twice takes the last value (--slo-threshold accumulates).
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.set_version_flag("--version", std::string("kpiscale-sidecar ") + KPISCALE_VERSION);
  std::string push_interval = "1s", header_timeout = "10s", idle_timeout = "60s",
              connect_timeout = "2s", upstream_timeout = "60s", shutdown_grace = "20s",
              redis_info_interval = "1s", postgres_poll_interval = "5s";
  std::vector<std::string> slo = {"200ms"};
  std::string log_level = "info";
  bool validate = false;
  app.add_option("--listen", config.proxy.listen, "host:port for application traffic")
      ->capture_default_str();
  app.add_option("--upstream", config.proxy.upstream, "host:port of the application")
      ->capture_default_str();
  app.add_option("--workers", config.proxy.workers, "proxy event-loop threads")
      ->capture_default_str();
  app.add_option("--metrics-listen", config.metrics_listen, "host:port for /metrics (empty: off)")
      ->capture_default_str();
  app.add_option("--adapter-url", config.push.adapter_url,
                 "kpiscale-adapter ingest URL, e.g. https://kpiscale-adapter.kpiscale:8443");
  app.add_option("--adapter-ca-file", config.push.ca_file, "CA bundle for the adapter's cert");
  app.add_flag("--adapter-insecure-skip-tls-verify", config.push.insecure_skip_tls_verify,
               "do not verify the adapter's certificate (local use only)");
  app.add_option("--adapter-token-file", config.push.token_file,
                 "bearer token file (re-read before every push)");
  app.add_option("--push-interval", push_interval, "window length")->capture_default_str();
  app.add_option("--max-pending-windows", config.push.max_pending_windows,
                 "windows kept while the adapter is unreachable")
      ->capture_default_str();
  app.add_option("--slo-threshold", slo, "latency SLO threshold(s), e.g. 200ms (repeatable)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->capture_default_str();
  app.add_option("--routes", config.routes_file, "route templates for the Prometheus route label");
  app.add_option("--pod-labels-file", config.pod_labels_file, "downward API labels file");
  app.add_option("--workload", config.workload, "owning workload, e.g. deployment/checkout");
  app.add_option("--service", config.service, "Service whose traffic this pod serves");
  app.add_option("--max-header-bytes", config.proxy.max_header_bytes,
                 "largest request head (431 beyond)")
      ->capture_default_str();
  app.add_option("--max-connections", config.proxy.max_connections, "client connections per worker")
      ->capture_default_str();
  app.add_option("--client-header-timeout", header_timeout, "time to send a request head")
      ->capture_default_str();
  app.add_option("--client-idle-timeout", idle_timeout, "idle keep-alive / stalled client")
      ->capture_default_str();
  app.add_option("--upstream-connect-timeout", connect_timeout, "upstream connect")
      ->capture_default_str();
  app.add_option("--upstream-timeout", upstream_timeout, "upstream response (504 beyond)")
      ->capture_default_str();
  app.add_option("--shutdown-grace", shutdown_grace, "time in-flight requests get on SIGTERM")
      ->capture_default_str();
  app.add_option("--redis-listen", config.data.redis_listen, "host:port for the Redis relay");
  app.add_option("--redis-upstream", config.data.redis_upstream, "host:port of Redis");
  app.add_option("--redis-info-url", config.data.redis_info_url,
                 "redis://host:port polled with INFO stats");
  app.add_option("--redis-info-interval", redis_info_interval)->capture_default_str();
  app.add_option("--postgres-listen", config.data.postgres_listen,
                 "host:port for the PostgreSQL relay");
  app.add_option("--postgres-upstream", config.data.postgres_upstream, "host:port of PostgreSQL");
  app.add_option("--postgres-dsn", config.data.postgres_dsn,
                 "libpq DSN for pg_stat_statements and the probe");
  app.add_option("--postgres-poll-interval", postgres_poll_interval)->capture_default_str();
  app.add_option(
         "--observer-threads", config.data.relay_threads,
         "event loops of the Redis and PostgreSQL relays (a sidecar runs under a CPU limit: "
         "more only pays with more than one core)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->capture_default_str();
  app.add_flag("--validate", validate, "check the configuration and exit");
  CLI11_PARSE(app, argc, argv);

  spdlog::set_level(spdlog::level::from_str(log_level));
  std::chrono::milliseconds interval{};
  std::chrono::milliseconds info_interval{};
  std::chrono::milliseconds poll_interval{};
  if (!ToMillis("--push-interval", push_interval, &interval) ||
      !ToMillis("--client-header-timeout", header_timeout, &config.proxy.client_header_timeout) ||
      !ToMillis("--client-idle-timeout", idle_timeout, &config.proxy.client_idle_timeout) ||
      !ToMillis("--upstream-connect-timeout", connect_timeout,
                &config.proxy.upstream_connect_timeout) ||
      !ToMillis("--upstream-timeout", upstream_timeout, &config.proxy.upstream_timeout) ||
      !ToMillis("--shutdown-grace", shutdown_grace, &config.shutdown_grace) ||
      !ToMillis("--redis-info-interval", redis_info_interval, &info_interval) ||
      !ToMillis("--postgres-poll-interval", postgres_poll_interval, &poll_interval)) {
    return 2;
  }
  config.push_interval = interval;
  config.data.redis_info_interval = info_interval;
  config.data.postgres_poll_interval = poll_interval;
  config.slo_thresholds.clear();
  for (const std::string& s : slo) {
    auto d = ParseDuration(s);
    if (!d.ok()) {
      std::fprintf(stderr, "--slo-threshold: %s\n", std::string(d.status().message()).c_str());
      return 2;
    }
    config.slo_thresholds.push_back(d->count());
  }
  if (validate) {
    absl::Status st = config.Validate();
    if (st.ok()) st = kpiscale::sidecar::ResolveIdentity(&config);
    if (!st.ok()) {
      std::fprintf(stderr, "invalid configuration: %s\n", std::string(st.message()).c_str());
      return 2;
    }
    std::printf("configuration ok\n");
    return 0;
  }
  const absl::Status st = kpiscale::sidecar::RunSidecar(std::move(config));
  if (!st.ok()) {
    std::fprintf(stderr, "kpiscale-sidecar: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  return 0;
}
