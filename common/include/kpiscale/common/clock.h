#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace kpiscale::common {

/// Source of time. The real clock reads the system; tests use FakeClock and advance it by hand,
/// so nothing in a test waits on wall time.
/// Thread-safety: all methods may be called concurrently.
class Clock {
 public:
  virtual ~Clock() = default;
  /// Wall-clock time (for timestamps that leave the process).
  virtual std::chrono::system_clock::time_point Now() const = 0;
  /// Monotonic time (for durations and deadlines).
  virtual std::chrono::steady_clock::time_point SteadyNow() const = 0;

  /// Wall-clock milliseconds since the Unix epoch.
  int64_t NowUnixMillis() const;
};

/// The process-wide real clock. Never destroyed.
Clock& RealClock();

/// A clock that moves only when told to. Both timelines advance together.
class FakeClock final : public Clock {
 public:
  /// Starts at the given Unix time in milliseconds.
  explicit FakeClock(int64_t start_unix_ms = 1'700'000'000'000);
  std::chrono::system_clock::time_point Now() const override;
  std::chrono::steady_clock::time_point SteadyNow() const override;
  void Advance(std::chrono::nanoseconds delta);
  void SetUnixMillis(int64_t unix_ms);

 private:
  std::atomic<int64_t> now_ns_;
};

}  // namespace kpiscale::common
