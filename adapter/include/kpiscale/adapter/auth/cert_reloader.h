#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace kpiscale::adapter::auth {

/// Serves the certificate/key files' current content: on each TLS handshake (at most one
/// stat() per second) it notices when the files changed (cert-manager rotation) and uses the new
/// pair; a pair that does not load (half-written, key mismatch) is ignored and the last good one
/// kept. Install once, before serving; the reloader must outlive the SSL_CTX's use.
/// Thread-safety: handshakes on many threads are fine.
class CertReloader {
 public:
  static absl::StatusOr<std::unique_ptr<CertReloader>> Install(SSL_CTX* ctx,
                                                               const std::string& cert_path,
                                                               const std::string& key_path);
  virtual ~CertReloader() = default;
  /// How many times a changed pair was loaded.
  virtual int reloads() const = 0;
};

}  // namespace kpiscale::adapter::auth
