#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kpiscale/adapter/config.h"
#include "kpiscale/common/clock.h"

namespace kpiscale::adapter {

/// Writes a self-signed serving certificate and key (EC P-256, SAN localhost, 127.0.0.1, ::1
/// plus `hosts`) unless both files exist already.
absl::Status EnsureSelfSignedCertificate(const std::string& cert_path, const std::string& key_path,
                                         const std::vector<std::string>& hosts);

/// The running adapter: the HTTPS API server (--secure-port), the ingest endpoint
/// (--ingest-port), /metrics (--metrics-port), the window store and its housekeeping.
/// Thread-safety: Shutdown may be called from any thread, once serving.
class AdapterServer {
 public:
  virtual ~AdapterServer() = default;
  /// Starts everything; when it returns the ports accept connections.
  static absl::StatusOr<std::unique_ptr<AdapterServer>> Start(
      const AdapterConfig& config, const common::Clock& clock = common::RealClock());

  virtual int secure_port() const = 0;
  virtual int ingest_port() const = 0;
  virtual int metrics_port() const = 0;
  /// Marks the server not ready, stops accepting, lets in-flight requests finish, and joins
  /// every thread. Idempotent.
  virtual void Shutdown() = 0;
};

}  // namespace kpiscale::adapter
