#include "kpiscale/common/process_metrics.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace kpiscale::common {
namespace {

// procfs files report size 0, so read until EOF. (POSIX reads also keep gcc's
// -Wnull-dereference quiet, which fires inside istreambuf_iterator at -O2.)
std::optional<std::string> ReadProcFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out;
  char buf[4096];
  while (true) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  return out;
}

prometheus::MetricFamily Family(std::string name, std::string help, prometheus::MetricType type,
                                double value) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  prometheus::ClientMetric metric;
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  family.metric.push_back(std::move(metric));
  return family;
}

}  // namespace

ProcessCollector::ProcessCollector() : ProcessCollector(Options{}) {}

ProcessCollector::ProcessCollector(Options options) : options_(std::move(options)) {
  if (options_.page_size <= 0) options_.page_size = sysconf(_SC_PAGESIZE);
  if (options_.clock_ticks_per_second <= 0) options_.clock_ticks_per_second = sysconf(_SC_CLK_TCK);
}

ProcessCollector::Reading ProcessCollector::Read() const {
  Reading r;
  const std::string self = options_.proc_root + "/self";
  const auto ticks = static_cast<double>(options_.clock_ticks_per_second);

  std::optional<double> boot_time;
  if (const auto stat = ReadProcFile(options_.proc_root + "/stat")) {
    for (absl::string_view line : absl::StrSplit(*stat, '\n')) {
      if (absl::ConsumePrefix(&line, "btime ")) {
        double v = 0;
        if (absl::SimpleAtod(absl::StripAsciiWhitespace(line), &v)) boot_time = v;
      }
    }
  }

  if (const auto stat = ReadProcFile(self + "/stat")) {
    // The command name (field 2) is in parentheses and may hold spaces and ')'; the fields after
    // the last ')' are plain numbers, field 3 first.
    const std::size_t close = stat->rfind(')');
    if (close != std::string::npos) {
      const std::vector<absl::string_view> f =
          absl::StrSplit(absl::string_view(*stat).substr(close + 1), ' ', absl::SkipEmpty());
      auto field = [&f](std::size_t n) -> std::optional<double> {
        double v = 0;
        if (n < 3 || n - 3 >= f.size() ||
            !absl::SimpleAtod(absl::StripAsciiWhitespace(f[n - 3]), &v)) {
          return std::nullopt;
        }
        return v;
      };
      const auto utime = field(14);
      const auto stime = field(15);
      if (utime && stime && ticks > 0) r.cpu_seconds = (*utime + *stime) / ticks;
      if (const auto start = field(22); start && boot_time && ticks > 0) {
        r.start_time_seconds = *boot_time + *start / ticks;
      }
      if (const auto vsize = field(23)) r.virtual_memory_bytes = *vsize;
      if (const auto rss = field(24)) {
        r.resident_memory_bytes = *rss * static_cast<double>(options_.page_size);
      }
    }
  }

  std::error_code ec;
  std::filesystem::directory_iterator it(self + "/fd", ec);
  if (!ec) {
    double count = 0;
    for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
      if (ec) break;
      ++count;
    }
    // The iterator itself holds a descriptor on the real /proc/self/fd; it is counted, as in
    // the Go client, which opens the directory the same way.
    if (!ec) r.open_fds = count;
  }

  if (const auto limits = ReadProcFile(self + "/limits")) {
    for (absl::string_view line : absl::StrSplit(*limits, '\n')) {
      if (!absl::ConsumePrefix(&line, "Max open files")) continue;
      const std::vector<absl::string_view> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
      double v = 0;
      if (!parts.empty() && absl::SimpleAtod(parts[0], &v)) r.max_fds = v;
    }
  }
  return r;
}

std::vector<prometheus::MetricFamily> ProcessCollector::Collect() const {
  const Reading r = Read();
  std::vector<prometheus::MetricFamily> out;
  using prometheus::MetricType;
  if (r.cpu_seconds) {
    out.push_back(Family("process_cpu_seconds_total",
                         "Total user and system CPU time spent in seconds.", MetricType::Counter,
                         *r.cpu_seconds));
  }
  if (r.resident_memory_bytes) {
    out.push_back(Family("process_resident_memory_bytes", "Resident memory size in bytes.",
                         MetricType::Gauge, *r.resident_memory_bytes));
  }
  if (r.virtual_memory_bytes) {
    out.push_back(Family("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                         MetricType::Gauge, *r.virtual_memory_bytes));
  }
  if (r.open_fds) {
    out.push_back(Family("process_open_fds", "Number of open file descriptors.", MetricType::Gauge,
                         *r.open_fds));
  }
  if (r.max_fds) {
    out.push_back(Family("process_max_fds", "Maximum number of open file descriptors.",
                         MetricType::Gauge, *r.max_fds));
  }
  if (r.start_time_seconds) {
    out.push_back(Family("process_start_time_seconds",
                         "Start time of the process since unix epoch in seconds.",
                         MetricType::Gauge, *r.start_time_seconds));
  }
  prometheus::MetricFamily info =
      Family("kpiscale_build_info", "Always 1; labels carry the kpiscale version and component.",
             MetricType::Gauge, 1);
  info.metric[0].label.push_back({"component", options_.component});
  info.metric[0].label.push_back({"version", options_.version});
  out.push_back(std::move(info));
  return out;
}

}  // namespace kpiscale::common
