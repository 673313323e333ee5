#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace prometheus {
class Collectable;
}  // namespace prometheus

namespace kpiscale::common {

/// Attaches the HTTP status code an API boundary should answer with, for the cases where the
/// canonical code mapping (HttpCodeFor in status.h) is not precise enough, e.g. 413 for a body
/// over the size limit (which is InvalidArgument, but must not be answered 400: the sender
/// should split, not drop). Stored as a status payload, so it survives copies.
absl::Status WithHttpCode(absl::Status status, int http_code);

/// The code attached by WithHttpCode, if any.
std::optional<int> AttachedHttpCode(const absl::Status& status);

/// The HTTP code for a status: the attached one, else HttpCodeFor(status).
int HttpCodeOf(const absl::Status& status);

/// The Prometheus text exposition (format 0.0.4) of everything the collectables hold.
/// Expired weak pointers are skipped.
std::string PrometheusText(const std::vector<std::weak_ptr<prometheus::Collectable>>& collectables);

/// The Content-Type of PrometheusText.
inline constexpr const char kPrometheusTextContentType[] =
    "text/plain; version=0.0.4; charset=utf-8";

/// Registers `GET path` on the server, answering PrometheusText(collectables). The server keeps
/// only weak references; the caller owns the registries.
void ServeMetrics(httplib::Server& server,
                  std::vector<std::weak_ptr<prometheus::Collectable>> collectables,
                  const std::string& path = "/metrics");

/// Runs an httplib::Server on a thread of its own: binds (port 0 picks a free port), then
/// listens until Stop() or destruction. Owns the thread, not the server.
/// Thread-safety: Stop() may be called from any thread; the rest from the owner.
class ServerThread final {
 public:
  /// Binds host:port (host "" means all interfaces) and starts serving. Returns Unavailable
  /// when the address cannot be bound (also when another socket holds it: the server's socket
  /// options are set to SO_REUSEADDR only, without httplib's default SO_REUSEPORT). When Start
  /// returns, the server accepts connections.
  static absl::StatusOr<std::unique_ptr<ServerThread>> Start(httplib::Server& server,
                                                             const std::string& host, int port);
  ~ServerThread();
  ServerThread(const ServerThread&) = delete;
  ServerThread& operator=(const ServerThread&) = delete;
  ServerThread(ServerThread&&) = delete;
  ServerThread& operator=(ServerThread&&) = delete;

  /// The bound port (the chosen one when 0 was asked for).
  int port() const { return port_; }
  /// Stops the server and joins the thread. Idempotent.
  void Stop();

 private:
  ServerThread(httplib::Server& server, int port) : server_(server), port_(port) {}
  httplib::Server& server_;
  int port_;
  std::thread thread_;
  std::atomic<bool> finished_{false};
};

}  // namespace kpiscale::common
