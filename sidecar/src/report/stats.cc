#include "kpiscale/sidecar/stats.h"

#include <cstdio>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "kpiscale/common/process_metrics.h"
#include "prometheus/client_metric.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace kpiscale::sidecar {
namespace {

constexpr std::array<const char*, 5> kClasses = {"1xx", "2xx", "3xx", "4xx", "5xx"};

}  // namespace

std::string FormatThreshold(double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", seconds);
  return buf;
}

absl::StatusOr<std::unique_ptr<SidecarStats>> SidecarStats::Create(
    prometheus::Registry& registry, const std::vector<double>& slo_thresholds,
    const std::vector<double>& buckets, const std::vector<std::string>& route_names) try {
  auto s = std::make_unique<SidecarStats>();
  const bool with_routes = route_names.size() > 1;
  auto& requests = prometheus::BuildCounter()
                       .Name("kpiscale_sidecar_http_requests_total")
                       .Help("Completed HTTP requests by status class (upstream failures are 5xx).")
                       .Register(registry);
  auto& duration = prometheus::BuildHistogram()
                       .Name("kpiscale_sidecar_http_request_duration_seconds")
                       .Help("First request byte in to last response byte out.")
                       .Register(registry);
  for (const std::string& route : route_names) {
    std::array<prometheus::Counter*, 5> per_class{};
    for (std::size_t c = 0; c < kClasses.size(); ++c) {
      prometheus::Labels labels{{"code", kClasses[c]}};
      if (with_routes) labels.emplace("route", route);
      per_class[c] = &requests.Add(labels);
    }
    s->requests.push_back(per_class);
    prometheus::Labels labels;
    if (with_routes) labels.emplace("route", route);
    s->duration.push_back(&duration.Add(labels, buckets));
  }
  s->ttfb = &prometheus::BuildHistogram()
                 .Name("kpiscale_sidecar_http_time_to_first_byte_seconds")
                 .Help("First request byte in to first response byte out.")
                 .Register(registry)
                 .Add({}, buckets);
  auto counter = [&registry](const std::string& name, const std::string& help) {
    return &prometheus::BuildCounter().Name(name).Help(help).Register(registry).Add({});
  };
  auto gauge = [&registry](const std::string& name, const std::string& help) {
    return &prometheus::BuildGauge().Name(name).Help(help).Register(registry).Add({});
  };
  s->errors = counter("kpiscale_sidecar_http_errors_total", "5xx answers and upstream failures.");
  auto& slow = prometheus::BuildCounter()
                   .Name("kpiscale_sidecar_http_slow_requests_total")
                   .Help("Requests strictly slower than the SLO threshold (seconds).")
                   .Register(registry);
  for (double t : slo_thresholds) s->slow.push_back(&slow.Add({{"threshold", FormatThreshold(t)}}));
  s->in_flight = gauge("kpiscale_sidecar_http_requests_in_flight",
                       "Requests received and not yet fully answered (at the last window close).");
  s->upgrades = counter("kpiscale_sidecar_http_upgrades_total",
                        "Connections switched to a byte tunnel after 101 Switching Protocols.");
  auto& failures = prometheus::BuildCounter()
                       .Name("kpiscale_sidecar_http_upstream_failures_total")
                       .Help("Upstream exchanges that failed (502 or 504 to the client).")
                       .Register(registry);
  s->upstream_failures = {&failures.Add({{"reason", "connect"}}),
                          &failures.Add({{"reason", "timeout"}}),
                          &failures.Add({{"reason", "reset"}})};
  s->received_bytes =
      counter("kpiscale_sidecar_http_received_bytes_total", "Bytes received from clients.");
  s->sent_bytes = counter("kpiscale_sidecar_http_sent_bytes_total", "Bytes sent to clients.");
  s->client_aborts = counter("kpiscale_sidecar_http_client_aborts_total",
                             "Client connections closed before the response was complete.");
  s->rejected =
      counter("kpiscale_sidecar_http_rejected_total",
              "Requests refused by a limit (431, 400, 408) before reaching the upstream.");

  s->cache_commands = counter("kpiscale_sidecar_cache_commands_total", "Cache commands observed.");
  s->cache_hits = counter("kpiscale_sidecar_cache_hits_total", "Cache read hits.");
  s->cache_misses = counter("kpiscale_sidecar_cache_misses_total", "Cache read misses.");
  s->cache_errors = counter("kpiscale_sidecar_cache_errors_total", "Cache commands that failed.");
  const std::vector<double> data_buckets(kDataBuckets.begin(), kDataBuckets.end());
  s->cache_duration = &prometheus::BuildHistogram()
                           .Name("kpiscale_sidecar_cache_command_duration_seconds")
                           .Help("Cache command: first request byte to last reply byte.")
                           .Register(registry)
                           .Add({}, data_buckets);
  s->db_queries = counter("kpiscale_sidecar_db_queries_total", "Database queries observed.");
  s->db_errors = counter("kpiscale_sidecar_db_errors_total", "Database queries that failed.");
  s->db_duration = &prometheus::BuildHistogram()
                        .Name("kpiscale_sidecar_db_query_duration_seconds")
                        .Help("Database query: first message to ReadyForQuery.")
                        .Register(registry)
                        .Add({}, data_buckets);

  s->windows_pushed =
      counter("kpiscale_sidecar_windows_pushed_total", "Windows accepted by the adapter.");
  s->windows_retried =
      counter("kpiscale_sidecar_windows_retried_total", "Windows sent again after a failure.");
  s->windows_dropped = counter("kpiscale_sidecar_windows_dropped_total",
                               "Windows dropped (queue full, or refused by the adapter with 4xx).");
  s->push_failures = counter("kpiscale_sidecar_push_failures_total", "Push attempts that failed.");
  s->push_queue = gauge("kpiscale_sidecar_push_queue_windows", "Windows waiting to be pushed.");
  return s;
} catch (const std::exception& e) {
  return absl::InvalidArgumentError(absl::StrCat("metrics: ", e.what()));
}

std::shared_ptr<prometheus::Collectable> MakeProcessCollector() {
  common::ProcessCollector::Options options;
  options.component = "sidecar";
  return std::make_shared<common::ProcessCollector>(std::move(options));
}

}  // namespace kpiscale::sidecar
