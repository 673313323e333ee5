#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace kpiscale::adapter {

/// Everything kpiscale-adapter is configured with (flags > --config YAML file > defaults).
struct AdapterConfig {
  bool local = false;
  std::string bind_address = "0.0.0.0";  // --local forces 127.0.0.1
  int secure_port = 6443;
  int ingest_port = 6444;
  int metrics_port = 9102;
  std::string tls_cert_file;
  std::string tls_private_key_file;
  std::string cert_dir = "apiserver.local.config/certificates";
  std::string tls_min_version = "VersionTLS12";
  // Delegated authentication and authorization (not used in --local).
  std::string requestheader_client_ca_file;
  std::vector<std::string> requestheader_allowed_names;
  std::string client_ca_file;
  std::string authentication_kubeconfig;
  std::string authorization_kubeconfig;
  // Security (issue 4; defaults are k8s.io/apiserver's). Empty header lists: the ConfigMap's.
  std::vector<std::string> requestheader_username_headers;
  std::vector<std::string> requestheader_group_headers;
  std::vector<std::string> requestheader_extra_headers_prefix;
  int64_t token_cache_ttl_ms = 10'000;
  int64_t authorized_cache_ttl_ms = 10'000;
  int64_t unauthorized_cache_ttl_ms = 10'000;
  std::vector<std::string> authorization_always_allow_paths{"/healthz", "/livez", "/readyz"};
  int64_t authentication_config_resync_ms = 300'000;  // watch timeoutSeconds
  std::string ingest_token_audience = "kpiscale";
  std::string ingest_token_file;  // --local: the token shared with the sidecars

  int64_t window_ms = 30'000;
  int64_t stale_after_ms = 5'000;
  std::size_t max_pods = 200'000;
  std::size_t max_body_bytes = 1 << 20;
  std::size_t max_windows_per_batch = 120;
  std::size_t max_ingest_in_flight = 64;

  bool enable_write_metrics = false;
  std::string ports_file;
  std::string config_file;
  std::string log_level;  // "" = SPDLOG_LEVEL or info
  std::string log_format = "text";
  bool validate_only = false;

  /// Range and consistency checks; --enable-write-metrics is refused unless --local.
  absl::Status Validate() const;
  /// One line, secrets redacted (there are none yet besides file paths).
  std::string Summary() const;
};

/// Parses a Go-style duration ("30s", "1.5s", "500ms", "2m", "1h") or bare seconds.
absl::StatusOr<int64_t> ParseDurationMs(const std::string& text);

/// Parses argv (CLI11) and the --config file. `exit_code` is set when the program should exit
/// right away (--help, --version, a parse error) with the text already printed.
absl::StatusOr<AdapterConfig> ParseAdapterFlags(int argc, char** argv, int* exit_code);

}  // namespace kpiscale::adapter
