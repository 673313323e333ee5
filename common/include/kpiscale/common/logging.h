#pragma once

#include <spdlog/logger.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kpiscale/common/clock.h"
#include "kpiscale/common/config.h"

namespace kpiscale::common {

/// The named loggers of kpiscale, one per subsystem. Logger() accepts other names too, but a
/// subsystem should use (and add) a constant here so that `--log-level=adapter.api=debug`
/// names are discoverable in one place.
namespace loggers {
inline constexpr char kAdapterApi[] = "adapter.api";
inline constexpr char kAdapterAuth[] = "adapter.auth";
inline constexpr char kAdapterIngest[] = "adapter.ingest";
inline constexpr char kAdapterStore[] = "adapter.store";
inline constexpr char kSidecarProxy[] = "sidecar.proxy";
inline constexpr char kSidecarRedis[] = "sidecar.redis";
inline constexpr char kSidecarPostgres[] = "sidecar.postgres";
inline constexpr char kSidecarReport[] = "sidecar.report";
inline constexpr char kSidecarScrape[] = "sidecar.scrape";
inline constexpr char kHpa[] = "hpa";
inline constexpr char kCli[] = "cli";
inline constexpr char kConfig[] = "config";
inline constexpr char kMain[] = "main";
/// libprotobuf's own messages (InitLogging routes them here, rate-limited).
inline constexpr char kProtobuf[] = "protobuf";
}  // namespace loggers

enum class LogFormat {
  /// logfmt lines: `ts=2026-01-02T03:04:05.678Z level=info logger=adapter.api msg=… key=value`.
  kText,
  /// One JSON object per line: {"ts":…,"level":…,"logger":…,"msg":…,"key":"value"}.
  kJson,
};

/// "text" or "json".
absl::StatusOr<LogFormat> ParseLogFormat(std::string_view text);

/// A parsed `--log-level` / SPDLOG_LEVEL value: "info", or "warn,adapter.api=debug" (a default
/// level plus per-logger levels, as spdlog's SPDLOG_LEVEL syntax).
struct LevelSpec {
  spdlog::level::level_enum default_level = spdlog::level::info;
  std::map<std::string, spdlog::level::level_enum, std::less<>> per_logger;
};

/// Parses a level spec. Levels: trace, debug, info, warn (warning), error (err), critical, off.
absl::StatusOr<LevelSpec> ParseLevelSpec(std::string_view text);

struct LoggingOptions {
  /// A level spec; empty means the SPDLOG_LEVEL environment variable, or "info" when unset.
  std::string level;
  LogFormat format = LogFormat::kText;
  /// Where lines go; null means stderr. Tests pass an ostream sink.
  spdlog::sink_ptr sink;
};

/// (Re)configures every logger, existing and future: sink, format and levels. Also routes
/// libprotobuf's log lines (one per malformed message) to the "protobuf" logger at most 10 per
/// minute. Call once at start-up, before threads log; tests may call it again.
/// Thread-safety: not safe concurrently with logging.
absl::Status InitLogging(const LoggingOptions& options);

/// The two logging flags every program has, as plain config fields.
struct LogFlags {
  std::string level = "info";
  std::string format = "text";
};

/// Declares `--log-level` (also from SPDLOG_LEVEL; checked with ParseLevelSpec) and
/// `--log-format` (text|json) on a program's loader, bound to *flags.
void AddLogFlags(ConfigLoader& loader, LogFlags* flags);

/// InitLogging from the flags (stderr sink).
absl::Status InitLogging(const LogFlags& flags);

/// The logger of a subsystem, created on first use with the configured sink, format and level.
/// Callers on hot paths keep the pointer instead of looking it up per event.
/// Thread-safety: safe; the returned logger is thread-safe.
std::shared_ptr<spdlog::logger> Logger(std::string_view name);

/// Quotes a logfmt value when it needs it (empty, spaces, '=', '"', control characters), so
/// `KPISCALE_LOG… "msg=x err={}", LogfmtValue(status.message())` keeps the line parseable.
std::string LogfmtValue(std::string_view value);

/// Parses a logfmt body (`key=value key2="quoted value"`) into pairs; nullopt when the body is
/// not logfmt. Used by the JSON format; exposed for tests and tools.
std::optional<std::vector<std::pair<std::string, std::string>>> ParseLogfmt(std::string_view body);

/// Lets through at most `max_lines` lines per `period` (measured on the Clock's steady
/// timeline) and counts the rest, so that a failure loop logs a bounded number of lines that
/// say how much was suppressed.
/// Thread-safety: safe.
class RateLimitedLog final {
 public:
  RateLimitedLog(const Clock& clock, uint32_t max_lines, std::chrono::nanoseconds period);

  /// Whether a line may be written now. When it may, returns how many lines were suppressed
  /// since the previous allowed line (usually 0); otherwise nullopt, and counts the line.
  std::optional<uint64_t> Acquire();

  /// Lines suppressed since construction.
  uint64_t suppressed_total() const { return suppressed_total_.load(std::memory_order_relaxed); }

  /// Formats and logs when Acquire() allows it, appending ` suppressed=N` when N > 0. Nothing is
  /// formatted for suppressed lines or lines below the logger's level.
  template <typename... Args>
  void Log(spdlog::logger& logger, spdlog::level::level_enum level, std::string_view format,
           Args&&... args) {
    if (!logger.should_log(level)) return;
    const std::optional<uint64_t> suppressed = Acquire();
    if (!suppressed.has_value()) return;
    std::string line = fmt::format(fmt::runtime(format), std::forward<Args>(args)...);
    if (*suppressed > 0) line += fmt::format(" suppressed={}", *suppressed);
    logger.log(level, "{}", line);
  }

 private:
  const Clock& clock_;
  const uint32_t max_lines_;
  const std::chrono::nanoseconds period_;
  std::mutex mu_;
  std::chrono::steady_clock::time_point window_start_;
  bool started_ = false;
  uint32_t lines_in_window_ = 0;
  uint64_t suppressed_since_last_ = 0;
  std::atomic<uint64_t> suppressed_total_{0};
};

namespace internal {
template <typename... Args>
void LogOccurrence(spdlog::logger& logger, spdlog::level::level_enum level, uint64_t occurrences,
                   std::string_view format, Args&&... args) {
  std::string line = fmt::format(fmt::runtime(format), std::forward<Args>(args)...);
  if (occurrences > 1) line += fmt::format(" occurrences={}", occurrences);
  logger.log(level, "{}", line);
}
}  // namespace internal

}  // namespace kpiscale::common

/// Logs the 1st, (n+1)th, (2n+1)th … time this line is reached (per call site, across threads),
/// appending ` occurrences=K` (the count so far) after the first. `logger` is a
/// std::shared_ptr<spdlog::logger> or a raw pointer; the format is a logfmt body.
/// Example: KPISCALE_LOG_EVERY_N(log, spdlog::level::warn, 100, "msg=push_failed err={}", e);
#define KPISCALE_LOG_EVERY_N(logger, level, n, ...)                                                \
  do {                                                                                             \
    static std::atomic<uint64_t> kpiscale_every_n_count{0};                                        \
    const uint64_t kpiscale_every_n_k =                                                            \
        kpiscale_every_n_count.fetch_add(1, std::memory_order_relaxed) + 1;                        \
    const uint64_t kpiscale_every_n = static_cast<uint64_t>(n) > 0 ? static_cast<uint64_t>(n) : 1; \
    if ((kpiscale_every_n_k - 1) % kpiscale_every_n == 0 && (logger)->should_log(level)) {         \
      ::kpiscale::common::internal::LogOccurrence(*(logger), level, kpiscale_every_n_k,            \
                                                  __VA_ARGS__);                                    \
    }                                                                                              \
  } while (false)

/// Logs through a RateLimitedLog: at most its max_lines per period, with ` suppressed=N`.
#define KPISCALE_LOG_RATE_LIMITED(limiter, logger, level, ...) \
  (limiter).Log(*(logger), level, __VA_ARGS__)
