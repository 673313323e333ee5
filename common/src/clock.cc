#include "kpiscale/common/clock.h"

namespace kpiscale::common {
namespace {

class SystemClock final : public Clock {
 public:
  std::chrono::system_clock::time_point Now() const override {
    return std::chrono::system_clock::now();
  }
  std::chrono::steady_clock::time_point SteadyNow() const override {
    return std::chrono::steady_clock::now();
  }
};

}  // namespace

int64_t Clock::NowUnixMillis() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Now().time_since_epoch()).count();
}

Clock& RealClock() {
  static auto* clock = new SystemClock();
  return *clock;
}

FakeClock::FakeClock(int64_t start_unix_ms) : now_ns_(start_unix_ms * 1'000'000) {}

std::chrono::system_clock::time_point FakeClock::Now() const {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(now_ns_.load())));
}

std::chrono::steady_clock::time_point FakeClock::SteadyNow() const {
  return std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::nanoseconds(now_ns_.load())));
}

void FakeClock::Advance(std::chrono::nanoseconds delta) { now_ns_ += delta.count(); }

void FakeClock::SetUnixMillis(int64_t unix_ms) { now_ns_ = unix_ms * 1'000'000; }

}  // namespace kpiscale::common
