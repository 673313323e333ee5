#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace httplib {
class ClientImpl;
}  // namespace httplib

namespace kpiscale::common {

/// Where and how to reach the Kubernetes API: the result of reading a kubeconfig or the
/// in-cluster service-account files. Secrets (token, key) never appear in Describe().
struct KubeConfig {
  std::string server;  // https://host:port
  std::string ca_pem;  // empty: system trust store
  bool insecure_skip_tls_verify = false;
  std::string token;       // bearer token (static)
  std::string token_file;  // bearer token re-read on each request (projected, rotated tokens)
  std::string client_cert_pem;
  std::string client_key_pem;

  /// server, CA source and auth kind, for logs; no secret.
  std::string Describe() const;
};

/// Parses a kubeconfig file: the current context (or `context` when non-empty), its cluster
/// (server, certificate-authority or -data, insecure-skip-tls-verify) and user (token,
/// tokenFile, client-certificate/-key or -data). Relative file paths are relative to the file.
absl::StatusOr<KubeConfig> LoadKubeconfig(const std::string& path, const std::string& context = "");

/// In-cluster configuration: KUBERNETES_SERVICE_HOST/PORT and the service-account token and CA
/// under `sa_dir` (default /var/run/secrets/kubernetes.io/serviceaccount).
absl::StatusOr<KubeConfig> LoadInClusterConfig(
    const std::string& sa_dir = "/var/run/secrets/kubernetes.io/serviceaccount");

/// A kubeconfig path when given, else the in-cluster configuration.
absl::StatusOr<KubeConfig> LoadKubeConfigOrInCluster(const std::string& kubeconfig_path);

/// An HTTP answer of the Kubernetes API.
struct KubeResponse {
  int status = 0;
  std::string body;
};

/// Ends a KubeClient::Stream in progress from another thread (shutdown): the blocking read is
/// interrupted by shutting the connection down. Once cancelled, it stays cancelled.
/// Thread-safety: all methods may be called concurrently.
class StreamCanceller final {
 public:
  void Cancel();
  bool cancelled() const;

 private:
  friend class KubeClient;
  mutable std::mutex mu_;
  bool cancelled_ = false;
  httplib::ClientImpl* active_ = nullptr;  // the connection of the Stream in progress
};

/// A small Kubernetes API client over cpp-httplib: JSON GET/POST with a per-attempt timeout,
/// retries with exponential backoff on transport errors, 429 and 5xx (never on other 4xx), and
/// no secret in any log line or error message.
/// Thread-safety: Get/Post may be called concurrently (each call uses its own connection).
class KubeClient {
 public:
  struct Options {
    std::chrono::milliseconds timeout{5000};
    int max_attempts = 3;
    std::chrono::milliseconds initial_backoff{100};
    std::chrono::milliseconds max_backoff{2000};
  };

  static absl::StatusOr<std::unique_ptr<KubeClient>> Create(KubeConfig config, Options options);
  static absl::StatusOr<std::unique_ptr<KubeClient>> Create(KubeConfig config) {
    return Create(std::move(config), Options());
  }

  /// Any HTTP status is returned as a KubeResponse; Unavailable when the API could not be reached
  /// (after the retries) or kept answering 429/5xx.
  absl::StatusOr<KubeResponse> Get(const std::string& path);
  absl::StatusOr<KubeResponse> Post(const std::string& path, const std::string& json_body);

  /// A watch (or any streamed GET), one attempt: the body is handed to `on_line` one line at a
  /// time as it arrives (without the newline); `on_line` returning false ends the stream. A
  /// line over 16 MiB ends it with ResourceExhausted. `idle_timeout` bounds the wait for the
  /// next bytes (a watch with timeoutSeconds=N needs more than N). No retry: a watcher re-lists
  /// and backs off itself. Returns the HTTP status (with the body when it is not 200) once the
  /// stream ends; Unavailable on a transport failure; Cancelled when `canceller` fired.
  absl::StatusOr<KubeResponse> Stream(const std::string& path,
                                      const std::function<bool(std::string_view)>& on_line,
                                      std::chrono::milliseconds idle_timeout,
                                      StreamCanceller* canceller = nullptr);

  const KubeConfig& config() const { return config_; }

 private:
  KubeClient(KubeConfig config, Options options, std::string host, int port)
      : config_(std::move(config)), options_(options), host_(std::move(host)), port_(port) {}
  absl::StatusOr<KubeResponse> Do(const std::string& method, const std::string& path,
                                  const std::string& body);

  KubeConfig config_;
  Options options_;
  std::string host_;
  int port_;
};

}  // namespace kpiscale::common
