#include "kpiscale/common/status.h"

#include <gtest/gtest.h>

#include <string>

namespace kpiscale::common {
namespace {

absl::StatusOr<int> Half(int v) {
  if (v % 2 != 0) return absl::InvalidArgumentError("odd");
  return v / 2;
}

absl::StatusOr<int> Quarter(int v) {
  KPISCALE_ASSIGN_OR_RETURN(int half, Half(v));
  KPISCALE_ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

absl::Status CheckPositive(int v) {
  KPISCALE_RETURN_IF_ERROR(v > 0 ? absl::OkStatus() : absl::OutOfRangeError("not positive"));
  return absl::OkStatus();
}

TEST(StatusMacrosTest, AssignOrReturnPropagatesTheFirstError) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_EQ(Quarter(6).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Quarter(7).status().message(), "odd");
}

TEST(StatusMacrosTest, ReturnIfErrorReturnsTheStatus) {
  EXPECT_TRUE(CheckPositive(1).ok());
  EXPECT_EQ(CheckPositive(0).code(), absl::StatusCode::kOutOfRange);
}

TEST(HttpCodeForTest, MapsAsTheHouseStyleSays) {
  EXPECT_EQ(HttpCodeFor(absl::OkStatus()), 200);
  EXPECT_EQ(HttpCodeFor(absl::NotFoundError("x")), 404);
  EXPECT_EQ(HttpCodeFor(absl::InvalidArgumentError("x")), 400);
  EXPECT_EQ(HttpCodeFor(absl::UnavailableError("x")), 503);
  EXPECT_EQ(HttpCodeFor(absl::UnauthenticatedError("x")), 401);
  EXPECT_EQ(HttpCodeFor(absl::PermissionDeniedError("x")), 403);
  EXPECT_EQ(HttpCodeFor(absl::ResourceExhaustedError("x")), 429);
  EXPECT_EQ(HttpCodeFor(absl::InternalError("x")), 500);
}

}  // namespace
}  // namespace kpiscale::common
