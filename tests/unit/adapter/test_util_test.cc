// Helpers shared by the adapter unit tests (compiled into the test binary).
#include "test_util.h"

#include <gtest/gtest.h>

#include "kpiscale/adapter/ingest.h"

namespace kpiscale::adapter::testing {

DecodedBatch Decode(const kpiscale::v1::ReportBatch& batch, int64_t now_ms) {
  int too_old = 0;
  auto d = DecodeReportBatch(batch, IngestOptions{}, now_ms, 30'000, &too_old);
  EXPECT_TRUE(d.ok()) << d.status();
  return d.ok() ? *d : DecodedBatch{};
}

TEST(TestUtil, DecodeKeepsIdentityAndWindows) {
  auto b = Pod("ns", "p1").AddWindow(HttpWindow(1, 10'000, 4, 1, {0.01})).Build();
  DecodedBatch d = Decode(b, 10'000);
  EXPECT_EQ(d.pod.ns, "ns");
  EXPECT_EQ(d.pod.workload_kind, "Deployment");
  EXPECT_EQ(d.pod.labels.at("app"), "web");
  ASSERT_EQ(d.windows.size(), 1u);
  ASSERT_TRUE(d.windows[0].http.has_value());
  EXPECT_EQ(d.windows[0].http->events, 4u);
  EXPECT_EQ(d.windows[0].http->errors, 1u);
  EXPECT_EQ(d.windows[0].http->latency.count(), 4u);
}

}  // namespace kpiscale::adapter::testing
