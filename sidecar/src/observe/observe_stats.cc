#include "kpiscale/sidecar/observe/observe_stats.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <exception>

namespace kpiscale::sidecar::observe {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Counter;
using prometheus::Histogram;

// Sub-millisecond buckets: a cache command on loopback takes ~100 µs.
const Histogram::BucketBoundaries& CacheBuckets() {
  static const auto* b = new Histogram::BucketBoundaries{
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1};
  return *b;
}

// Includes 0.1 s, the failure agent's database p95 target.
const Histogram::BucketBoundaries& DbBuckets() {
  static const auto* b = new Histogram::BucketBoundaries{
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return *b;
}

Counter& NewCounter(prometheus::Registry& r, const char* name, const char* help,
                    const prometheus::Labels& labels = {}) {
  return BuildCounter().Name(name).Help(help).Register(r).Add(labels);
}

Histogram& NewHistogram(prometheus::Registry& r, const char* name, const char* help,
                        const Histogram::BucketBoundaries& buckets) {
  return BuildHistogram().Name(name).Help(help).Register(r).Add({}, buckets);
}

}  // namespace

absl::StatusOr<CacheStats> CacheStats::Create(prometheus::Registry& r) {
  try {
    auto& untracked = BuildCounter()
                          .Name("kpiscale_sidecar_cache_untracked_connections_total")
                          .Help(
                              "Redis connections the observer stopped counting, by reason "
                              "(bytes are still relayed)")
                          .Register(r);
    return CacheStats{
        NewCounter(r, "kpiscale_sidecar_cache_commands_total",
                   "Redis commands answered through the observer (blocking commands excluded)"),
        NewCounter(r, "kpiscale_sidecar_cache_hits_total",
                   "Keys found by read commands (GET, MGET per element, ...)"),
        NewCounter(r, "kpiscale_sidecar_cache_misses_total", "Keys not found by read commands"),
        NewCounter(r, "kpiscale_sidecar_cache_errors_total",
                   "Redis commands answered with an error or lost with the connection"),
        NewHistogram(r, "kpiscale_sidecar_cache_command_duration_seconds",
                     "Redis command latency, first request byte to last reply byte",
                     CacheBuckets()),
        NewCounter(r, "kpiscale_sidecar_cache_blocking_commands_total",
                   "Blocking Redis commands (BLPOP, XREAD BLOCK, ...), never cache lookups"),
        NewHistogram(r, "kpiscale_sidecar_cache_blocking_command_duration_seconds",
                     "Blocking Redis command duration", DbBuckets()),
        untracked.Add({{"reason", "parse_error"}}),
        untracked.Add({{"reason", "unmatched_reply"}}),
        untracked.Add({{"reason", "pubsub"}}),
        untracked.Add({{"reason", "monitor"}}),
        untracked.Add({{"reason", "client_reply"}}),
        untracked.Add({{"reason", "resp3"}}),
        untracked.Add({{"reason", "overflow"}}),
        NewCounter(r, "kpiscale_sidecar_cache_server_keyspace_hits_total",
                   "Server-wide keyspace hits seen by INFO polling (all clients)"),
        NewCounter(r, "kpiscale_sidecar_cache_server_keyspace_misses_total",
                   "Server-wide keyspace misses seen by INFO polling (all clients)"),
        NewCounter(r, "kpiscale_sidecar_cache_info_poll_failures_total", "Failed INFO stats polls"),
    };
  } catch (const std::exception& e) {
    return absl::InternalError(std::string("cache metrics: ") + e.what());
  }
}

absl::StatusOr<DbStats> DbStats::Create(prometheus::Registry& r) {
  try {
    auto& untracked = BuildCounter()
                          .Name("kpiscale_sidecar_db_untracked_connections_total")
                          .Help(
                              "PostgreSQL connections the observer stopped counting, by reason "
                              "(bytes are still relayed)")
                          .Register(r);
    return DbStats{
        NewCounter(r, "kpiscale_sidecar_db_queries_total",
                   "PostgreSQL queries (simple Query, or extended batch up to its Sync)"),
        NewCounter(r, "kpiscale_sidecar_db_errors_total",
                   "PostgreSQL queries answered with an ErrorResponse or lost with the connection"),
        NewHistogram(r, "kpiscale_sidecar_db_query_duration_seconds",
                     "PostgreSQL query latency as the application saw it (to ReadyForQuery)",
                     DbBuckets()),
        NewCounter(r, "kpiscale_sidecar_db_ssl_requests_declined_total",
                   "SSLRequest/GSSENCRequest answered 'N' on the local hop"),
        NewCounter(r, "kpiscale_sidecar_db_cancel_requests_total", "CancelRequests relayed"),
        untracked.Add({{"reason", "parse_error"}}),
        untracked.Add({{"reason", "unmatched_reply"}}),
        untracked.Add({{"reason", "overflow"}}),
        NewHistogram(r, "kpiscale_sidecar_pg_probe_duration_seconds",
                     "Round trip of the periodic SELECT 1 probe", DbBuckets()),
        NewCounter(r, "kpiscale_sidecar_pg_probe_failures_total", "Failed SELECT 1 probes"),
        NewCounter(r, "kpiscale_sidecar_pg_stat_statements_poll_failures_total",
                   "Failed pg_stat_statements polls"),
        BuildGauge()
            .Name("kpiscale_sidecar_pg_statement_mean_seconds")
            .Help("Mean server execution time over the last poll interval, top statements by "
                  "total time (pg_stat_statements)")
            .Register(r),
        BuildGauge()
            .Name("kpiscale_sidecar_pg_statement_calls")
            .Help("Calls in the last poll interval, top statements by total time")
            .Register(r),
    };
  } catch (const std::exception& e) {
    return absl::InternalError(std::string("db metrics: ") + e.what());
  }
}

absl::StatusOr<RelayStats> RelayStats::Create(prometheus::Registry& r,
                                              const std::string& observer) {
  try {
    const prometheus::Labels labels{{"observer", observer}};
    auto& bytes = BuildCounter()
                      .Name("kpiscale_sidecar_observe_bytes_total")
                      .Help("Bytes relayed by the Redis/PostgreSQL observers")
                      .Register(r);
    return RelayStats{
        NewCounter(r, "kpiscale_sidecar_observe_connections_total",
                   "Connections accepted by the Redis/PostgreSQL observers", labels),
        BuildGauge()
            .Name("kpiscale_sidecar_observe_connections_active")
            .Help("Connections currently relayed by the Redis/PostgreSQL observers")
            .Register(r)
            .Add(labels),
        NewCounter(r, "kpiscale_sidecar_observe_connections_rejected_total",
                   "Connections closed at once because the connection limit was reached", labels),
        NewCounter(r, "kpiscale_sidecar_observe_upstream_failures_total",
                   "Connections whose Redis/PostgreSQL server could not be reached", labels),
        bytes.Add({{"observer", observer}, {"direction", "upstream"}}),
        bytes.Add({{"observer", observer}, {"direction", "downstream"}}),
    };
  } catch (const std::exception& e) {
    return absl::InternalError(std::string("relay metrics: ") + e.what());
  }
}

}  // namespace kpiscale::sidecar::observe
