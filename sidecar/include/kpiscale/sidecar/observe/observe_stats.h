#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace kpiscale::sidecar::observe {

/// Cache (Redis) metrics, built once per registry (house style §10). The agreed names are
/// kpiscale_sidecar_cache_{commands,hits,misses,errors}_total and
/// kpiscale_sidecar_cache_command_duration_seconds; the rest describe the observer itself.
/// Thread-safety: prometheus-cpp metrics may be updated from any thread.
struct CacheStats {
  prometheus::Counter& commands;
  prometheus::Counter& hits;
  prometheus::Counter& misses;
  prometheus::Counter& errors;
  prometheus::Histogram& duration;
  prometheus::Counter& blocking_commands;
  prometheus::Histogram& blocking_duration;
  /// Connections whose commands stopped being counted, by reason (bounded set of reasons).
  prometheus::Counter& untracked_parse_error;
  prometheus::Counter& untracked_unmatched_reply;
  prometheus::Counter& untracked_pubsub;
  prometheus::Counter& untracked_monitor;
  prometheus::Counter& untracked_client_reply;
  prometheus::Counter& untracked_resp3;
  prometheus::Counter& untracked_overflow;
  /// INFO mode: server-wide keyspace deltas and poll failures.
  prometheus::Counter& server_hits;
  prometheus::Counter& server_misses;
  prometheus::Counter& info_poll_failures;

  static absl::StatusOr<CacheStats> Create(prometheus::Registry& registry);
};

/// Database (PostgreSQL) metrics: kpiscale_sidecar_db_{queries,errors}_total and
/// kpiscale_sidecar_db_query_duration_seconds (buckets include 0.1), plus observer health.
/// Thread-safety: as CacheStats.
struct DbStats {
  prometheus::Counter& queries;
  prometheus::Counter& errors;
  prometheus::Histogram& duration;
  prometheus::Counter& ssl_declined;
  prometheus::Counter& cancel_requests;
  prometheus::Counter& untracked_parse_error;
  prometheus::Counter& untracked_unmatched_reply;
  prometheus::Counter& untracked_overflow;
  /// The periodic SELECT 1 probe (never mixed with wire-level query timing).
  prometheus::Histogram& probe_duration;
  prometheus::Counter& probe_failures;
  prometheus::Counter& stat_statements_poll_failures;
  /// Top-N statements by execution time in the last poll interval, labelled by queryid.
  prometheus::Family<prometheus::Gauge>& statement_mean_seconds;
  prometheus::Family<prometheus::Gauge>& statement_calls;

  static absl::StatusOr<DbStats> Create(prometheus::Registry& registry);
};

/// Per-listener relay metrics, labelled observer="redis"|"postgres".
struct RelayStats {
  prometheus::Counter& connections;
  prometheus::Gauge& active;
  prometheus::Counter& rejected;
  prometheus::Counter& upstream_failures;
  prometheus::Counter& bytes_upstream;
  prometheus::Counter& bytes_downstream;

  static absl::StatusOr<RelayStats> Create(prometheus::Registry& registry,
                                           const std::string& observer);
};

}  // namespace kpiscale::sidecar::observe
