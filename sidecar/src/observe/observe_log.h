#pragma once

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <memory>

namespace kpiscale::sidecar::observe {

/// The observers' logger: "sidecar.observe" when the process registered it, else the default.
inline std::shared_ptr<spdlog::logger> ObserveLogger() {
  auto logger = spdlog::get("sidecar.observe");
  return logger != nullptr ? logger : spdlog::default_logger();
}

/// Lets a failure loop log at most once per interval (the counters carry the totals).
/// Thread-safety: ShouldLog() may be called from any thread.
class LogLimiter {
 public:
  explicit LogLimiter(std::chrono::seconds interval = std::chrono::seconds(10))
      : interval_ns_(std::chrono::duration_cast<std::chrono::nanoseconds>(interval).count()) {}

  bool ShouldLog() {
    const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    int64_t last = last_ns_.load(std::memory_order_relaxed);
    if (last != kNever && now - last < interval_ns_) return false;
    return last_ns_.compare_exchange_strong(last, now, std::memory_order_relaxed);
  }

 private:
  static constexpr int64_t kNever = INT64_MIN;
  const int64_t interval_ns_;
  std::atomic<int64_t> last_ns_{kNever};
};

}  // namespace kpiscale::sidecar::observe
