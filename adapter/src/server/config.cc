#include "kpiscale/adapter/config.h"

#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kpiscale/common/config.h"
#include "kpiscale/common/logging.h"

namespace kpiscale::adapter {

absl::StatusOr<int64_t> ParseDurationMs(const std::string& text) {
  // Bare numbers are seconds, as in the YAML examples; everything else is Go syntax.
  if (!text.empty() && text.find_first_not_of("0123456789.") == std::string::npos) {
    return ParseDurationMs(text + "s");
  }
  auto d = common::ParseDuration(text);
  if (!d.ok()) return absl::InvalidArgumentError(d.status().message());
  return std::chrono::duration_cast<std::chrono::milliseconds>(*d).count();
}

absl::Status AdapterConfig::Validate() const {
  for (const auto& [name, port] : {std::pair<const char*, int>{"secure-port", secure_port},
                                   {"ingest-port", ingest_port},
                                   {"metrics-port", metrics_port}}) {
    if (port < 0 || port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, "=", port, ": want 0..65535"));
    }
  }
  if (window_ms < 1000 || window_ms > 3'600'000) {
    return absl::InvalidArgumentError("--window: want 1s..1h");
  }
  if (stale_after_ms < 1000 || stale_after_ms > 3'600'000) {
    return absl::InvalidArgumentError("--stale-after: want 1s..1h");
  }
  if (enable_write_metrics && !local) {
    return absl::InvalidArgumentError("--enable-write-metrics is a test hook: it needs --local");
  }
  if (tls_cert_file.empty() != tls_private_key_file.empty()) {
    return absl::InvalidArgumentError("--tls-cert-file and --tls-private-key-file go together");
  }
  if (tls_min_version != "VersionTLS12" && tls_min_version != "VersionTLS13") {
    return absl::InvalidArgumentError("--tls-min-version: want VersionTLS12 or VersionTLS13");
  }
  if (log_format != "text" && log_format != "json") {
    return absl::InvalidArgumentError("--log-format: want text or json");
  }
  if (!log_level.empty()) {
    if (auto spec = common::ParseLevelSpec(log_level); !spec.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--log-level: ", spec.status().message()));
    }
  }
  if (max_pods == 0 || max_body_bytes < 1024 || max_windows_per_batch == 0 ||
      max_ingest_in_flight == 0) {
    return absl::InvalidArgumentError("ingest limits must be positive (body at least 1KiB)");
  }
  if (!local && (tls_cert_file.empty() && cert_dir.empty())) {
    return absl::InvalidArgumentError("need --tls-cert-file/--tls-private-key-file or --cert-dir");
  }
  return absl::OkStatus();
}

std::string AdapterConfig::Summary() const {
  return absl::StrCat(
      "local=", local, " bind_address=", bind_address, " secure_port=", secure_port,
      " ingest_port=", ingest_port, " metrics_port=", metrics_port, " window_ms=", window_ms,
      " stale_after_ms=", stale_after_ms, " cert_dir=", common::LogfmtValue(cert_dir),
      " tls_cert_file=", common::LogfmtValue(tls_cert_file), " tls_min_version=", tls_min_version,
      " enable_write_metrics=", enable_write_metrics, " max_pods=", max_pods,
      " max_body_bytes=", max_body_bytes, " max_windows_per_batch=", max_windows_per_batch);
}

absl::StatusOr<AdapterConfig> ParseAdapterFlags(int argc, char** argv, int* exit_code) {
  AdapterConfig c;
  CLI::App app{
      "kpiscale-adapter: Kubernetes custom.metrics.k8s.io (v1beta1, v1beta2) and "
      "external.metrics.k8s.io (v1beta1) server fed by kpiscale sidecars.",
      "kpiscale-adapter"};
  app.set_version_flag("--version", std::string("kpiscale-adapter v") + KPISCALE_VERSION);
  std::string window = "30s", stale_after = "5s";
  app.add_flag("--local", c.local,
               "Local mode: loopback only, no authentication or authorization, self-signed "
               "certificate in --cert-dir, ingest without a token");
  app.add_option("--bind-address", c.bind_address, "Address to serve on (not with --local)");
  app.add_option("--secure-port", c.secure_port, "HTTPS port of the metrics APIs (0 = any)");
  app.add_option("--ingest-port", c.ingest_port, "Port of POST /v1/reports (0 = any)");
  app.add_option("--metrics-port", c.metrics_port, "Port of /metrics (0 = any)");
  app.add_option("--tls-cert-file", c.tls_cert_file, "Serving certificate (PEM)");
  app.add_option("--tls-private-key-file", c.tls_private_key_file, "Serving key (PEM)");
  app.add_option("--cert-dir", c.cert_dir,
                 "Where a self-signed pair is written when no --tls-cert-file is given");
  app.add_option("--tls-min-version", c.tls_min_version, "VersionTLS12 or VersionTLS13");
  app.add_option("--requestheader-client-ca-file", c.requestheader_client_ca_file,
                 "CA of the front-proxy client certificate");
  app.add_option("--requestheader-allowed-names", c.requestheader_allowed_names,
                 "Allowed front-proxy certificate CNs")
      ->delimiter(',');
  app.add_option("--client-ca-file", c.client_ca_file, "CA of client certificates");
  app.add_option("--authentication-kubeconfig", c.authentication_kubeconfig,
                 "kubeconfig for TokenReview");
  app.add_option("--authorization-kubeconfig", c.authorization_kubeconfig,
                 "kubeconfig for SubjectAccessReview");
  // Security flags (issue 4, engineer security).
  std::string token_ttl = "10s", allow_ttl = "10s", deny_ttl = "10s", cm_resync = "5m";
  app.add_option("--requestheader-username-headers", c.requestheader_username_headers,
                 "Front-proxy user headers (default: the ConfigMap's, else X-Remote-User)")
      ->delimiter(',');
  app.add_option("--requestheader-group-headers", c.requestheader_group_headers,
                 "Front-proxy group headers (default: the ConfigMap's, else X-Remote-Group)")
      ->delimiter(',');
  app.add_option("--requestheader-extra-headers-prefix", c.requestheader_extra_headers_prefix,
                 "Front-proxy extra header prefixes (default: the ConfigMap's)")
      ->delimiter(',');
  app.add_option("--authentication-token-webhook-cache-ttl", token_ttl,
                 "How long TokenReview answers are cached");
  app.add_option("--authorization-webhook-cache-authorized-ttl", allow_ttl,
                 "How long allowed SubjectAccessReview answers are cached");
  app.add_option("--authorization-webhook-cache-unauthorized-ttl", deny_ttl,
                 "How long denied SubjectAccessReview answers are cached");
  app.add_option("--authorization-always-allow-paths", c.authorization_always_allow_paths,
                 "Paths that skip authorization")
      ->delimiter(',');
  app.add_option("--authentication-config-resync", cm_resync,
                 "Re-list and re-watch extension-apiserver-authentication at least this often "
                 "(changes arrive through the watch at once)");
  app.add_option("--ingest-token-audience", c.ingest_token_audience,
                 "Audience of the sidecars' projected service-account tokens");
  app.add_option("--ingest-token-file", c.ingest_token_file,
                 "--local: ingest requires this bearer token (shared with the sidecars)");
  app.add_option("--window", window, "How far back answers look (Go duration)");
  app.add_option("--stale-after", stale_after,
                 "A pod without a newer window is dropped after this (Go duration)");
  app.add_option("--max-pods", c.max_pods, "Pods the store holds at most");
  app.add_option("--max-report-bytes", c.max_body_bytes, "Largest report body (413 beyond)");
  app.add_option("--max-windows-per-report", c.max_windows_per_batch,
                 "Windows per report (400 beyond)");
  app.add_option("--max-ingest-in-flight", c.max_ingest_in_flight, "Concurrent reports before 429");
  app.add_flag("--enable-write-metrics", c.enable_write_metrics,
               "Test hook: POST /write-metrics/... (needs --local)");
  app.add_option("--ports-file", c.ports_file, "Write the bound ports as JSON here once serving");
  app.add_option("--config", c.config_file, "YAML file with the same keys as the flags");
  app.add_option("--log-level", c.log_level, "info, or e.g. warn,adapter.api=debug");
  app.add_option("--log-format", c.log_format, "text or json");
  app.add_flag("--validate", c.validate_only, "Check the configuration and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    *exit_code = app.exit(e);
    return absl::CancelledError("exit");
  }
  if (!c.config_file.empty()) {
    try {
      const YAML::Node root = YAML::LoadFile(c.config_file);
      if (!root.IsMap()) return absl::InvalidArgumentError("--config: want a YAML mapping");
      for (const auto& kv : root) {
        const std::string key = kv.first.as<std::string>();
        CLI::Option* opt = app.get_option_no_throw("--" + key);
        if (opt == nullptr || key == "config") {
          return absl::InvalidArgumentError(
              absl::StrCat("--config ", c.config_file, ": unknown key \"", key, "\""));
        }
        if (opt->count() > 0) continue;  // the flag wins
        std::vector<std::string> values;
        if (kv.second.IsSequence()) {
          for (const auto& v : kv.second) values.push_back(v.as<std::string>());
        } else {
          values.push_back(kv.second.as<std::string>());
        }
        if (opt->get_type_size() == 0) {
          // A flag: true/false.
          const std::string& v = values.front();
          if (v != "true" && v != "false") {
            return absl::InvalidArgumentError(
                absl::StrCat("--config: ", key, " wants true or false"));
          }
          if (v == "true") opt->add_result(std::string("true"));
        } else {
          opt->add_result(values);
        }
        opt->run_callback();
      }
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(absl::StrCat("--config ", c.config_file, ": ", e.what()));
    } catch (const CLI::Error& e) {
      return absl::InvalidArgumentError(absl::StrCat("--config ", c.config_file, ": ", e.what()));
    }
  }
  auto w = ParseDurationMs(window);
  if (!w.ok()) return absl::InvalidArgumentError(absl::StrCat("--window: ", w.status().message()));
  c.window_ms = *w;
  auto s = ParseDurationMs(stale_after);
  if (!s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--stale-after: ", s.status().message()));
  }
  c.stale_after_ms = *s;
  for (auto [name, text, out] :
       {std::tuple<const char*, std::string*, int64_t*>{"--authentication-token-webhook-cache-ttl",
                                                        &token_ttl, &c.token_cache_ttl_ms},
        {"--authorization-webhook-cache-authorized-ttl", &allow_ttl, &c.authorized_cache_ttl_ms},
        {"--authorization-webhook-cache-unauthorized-ttl", &deny_ttl, &c.unauthorized_cache_ttl_ms},
        {"--authentication-config-resync", &cm_resync, &c.authentication_config_resync_ms}}) {
    auto d = ParseDurationMs(*text);
    if (!d.ok()) return absl::InvalidArgumentError(absl::StrCat(name, ": ", d.status().message()));
    *out = *d;
  }
  if (c.local) c.bind_address = "127.0.0.1";
  return c;
}

}  // namespace kpiscale::adapter
