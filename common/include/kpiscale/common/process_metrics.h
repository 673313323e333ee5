#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <optional>
#include <string>
#include <vector>

namespace kpiscale::common {

/// The standard Prometheus process metrics, read from /proc at every scrape, plus
/// `kpiscale_build_info{version,component} 1`:
///   process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
///   process_open_fds, process_max_fds, process_start_time_seconds.
/// A value that cannot be read is left out of the scrape (unknown is not zero).
/// Register it with `registry` users through PrometheusText / ServeMetrics (http_util.h).
/// Thread-safety: Collect() may be called concurrently.
class ProcessCollector final : public prometheus::Collectable {
 public:
  struct Options {
    /// Where procfs is mounted; tests point it at a fake tree.
    std::string proc_root = "/proc";
    std::string version = KPISCALE_VERSION;
    /// e.g. "adapter" or "sidecar"; the `component` label of kpiscale_build_info.
    std::string component;
    /// 0 means sysconf(_SC_PAGESIZE) / sysconf(_SC_CLK_TCK).
    long page_size = 0;
    long clock_ticks_per_second = 0;
  };

  /// What one read of procfs found; absent fields could not be read.
  struct Reading {
    std::optional<double> cpu_seconds;
    std::optional<double> resident_memory_bytes;
    std::optional<double> virtual_memory_bytes;
    std::optional<double> open_fds;
    std::optional<double> max_fds;
    std::optional<double> start_time_seconds;
  };

  ProcessCollector();
  explicit ProcessCollector(Options options);

  Reading Read() const;
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  Options options_;
};

}  // namespace kpiscale::common
