#include "kpiscale/common/clock.h"

#include <gtest/gtest.h>

#include <chrono>

namespace kpiscale::common {
namespace {

using std::chrono::milliseconds;

TEST(FakeClockTest, StartsWhereToldAndMovesOnlyWhenAdvanced) {
  FakeClock clock(1'000);
  EXPECT_EQ(clock.NowUnixMillis(), 1'000);
  const auto steady_before = clock.SteadyNow();
  clock.Advance(milliseconds(250));
  EXPECT_EQ(clock.NowUnixMillis(), 1'250);
  EXPECT_EQ(clock.SteadyNow() - steady_before, milliseconds(250));
}

TEST(FakeClockTest, SetMovesWallTime) {
  FakeClock clock;
  clock.SetUnixMillis(42);
  EXPECT_EQ(clock.NowUnixMillis(), 42);
}

TEST(RealClockTest, IsMonotonicAndNearSystemTime) {
  const auto a = RealClock().SteadyNow();
  const auto b = RealClock().SteadyNow();
  EXPECT_LE(a, b);
  const auto system_ms =
      std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  EXPECT_LT(std::abs(RealClock().NowUnixMillis() - system_ms), 60'000);
}

}  // namespace
}  // namespace kpiscale::common
