#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "kpiscale/sidecar/signal_sink.h"

namespace prometheus {
class Registry;
}

namespace kpiscale::sidecar {

/// What the sidecar's flags say about Redis and PostgreSQL. An empty field turns its part off.
struct DataObserverOptions {
  std::string redis_listen;    // host:port the application connects to instead of Redis
  std::string redis_upstream;  // host:port of the real Redis
  std::string redis_info_url;  // redis://host:port, polled with INFO stats (server-wide)
  std::chrono::milliseconds redis_info_interval{1000};
  std::string postgres_listen;    // host:port the application connects to instead of PostgreSQL
  std::string postgres_upstream;  // host:port of the real PostgreSQL
  std::string postgres_dsn;       // libpq DSN for pg_stat_statements polling and the SELECT 1 probe
  std::chrono::milliseconds postgres_poll_interval{5000};
  std::size_t postgres_top_statements = 20;
  std::size_t max_connections = 1024;
  /// Event loops of the Redis/PostgreSQL relay (connections are spread over them); 1 suits a
  /// sidecar under a CPU limit.
  int relay_threads = 1;
  /// Relay tuning kept selectable so the benchmark can compare (see observe::RelayOptions).
  bool relay_defer_writes = true;
  bool relay_poll_before_sleep = false;
};

/// The running Redis and PostgreSQL observers. Stop() closes the listeners and relays.
class DataObservers {
 public:
  virtual ~DataObservers() = default;
  /// The bound ports (useful when a listen address asked for port 0); 0 when not listening.
  virtual uint16_t redis_port() const = 0;
  virtual uint16_t postgres_port() const = 0;
  virtual void Stop() = 0;
};

/// Starts what `options` turns on, recording into `sink` and registering metrics on `registry`.
/// Fails when a listen address cannot be bound or an option is malformed.
absl::StatusOr<std::unique_ptr<DataObservers>> StartDataObservers(
    const DataObserverOptions& options, SignalSink& sink, prometheus::Registry& registry);

}  // namespace kpiscale::sidecar
