#include "kpiscale/adapter/ingest.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_util.h"

namespace kpiscale::adapter {
// A namespace of its own: in unity builds several test files share one translation unit.
namespace ingest_test {
namespace {

using testing::HttpWindow;
using testing::Pod;

constexpr int64_t kNow = 1'700'000'000'000;
constexpr char kProto[] = "application/x-protobuf";

class IngestTest : public ::testing::Test {
 protected:
  void SetUp() override { Reset(StoreOptions{}, IngestOptions{}); }
  void Reset(StoreOptions so, IngestOptions io) {
    store_ = std::move(CreateMemoryWindowStore(so)).value();
    handler_ = std::make_unique<IngestHandler>(*store_, clock_, io, nullptr);
  }
  common::FakeClock clock_{kNow};
  std::unique_ptr<WindowStore> store_;
  std::unique_ptr<IngestHandler> handler_;
};

TEST_F(IngestTest, AcceptsAndCountsDuplicates) {
  const std::string body =
      Pod("ns", "p1").AddWindow(HttpWindow(1, kNow, 3, 0, {0.01})).SerializeAsString();
  auto r = handler_->Handle(kProto, body);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(nlohmann::json::parse(r.body),
            nlohmann::json::parse(R"({"accepted":1,"duplicate":0,"late":0})"));
  auto again = handler_->Handle(kProto, body);
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.result.duplicate, 1);
  EXPECT_EQ(store_->FreshPods("ns", kNow)[0]->http.events, 3u);
}

TEST_F(IngestTest, BadBatchesAreRefusedWholeAndStoredDataSurvives) {
  ASSERT_EQ(
      handler_
          ->Handle(kProto,
                   Pod("ns", "p1").AddWindow(HttpWindow(1, kNow, 3, 0, {0.01})).SerializeAsString())
          .status,
      200);
  // Garbage.
  auto g = handler_->Handle(kProto, "\xff\xff\xff not a protobuf");
  EXPECT_EQ(g.status, 400);
  EXPECT_EQ(g.reason, "invalid");
  EXPECT_EQ(nlohmann::json::parse(g.body)["error"], "invalid");
  // One good window and one inconsistent window (errors > requests): nothing is stored.
  auto bad = HttpWindow(3, kNow + 1000, 2, 0, {0.01});
  bad.mutable_http()->set_errors(5);
  auto mixed =
      Pod("ns", "p1").AddWindow(HttpWindow(2, kNow + 500, 4, 0, {0.01}, 500)).AddWindow(bad);
  auto m = handler_->Handle(kProto, mixed.SerializeAsString());
  EXPECT_EQ(m.status, 400);
  EXPECT_NE(m.body.find("errors"), std::string::npos) << m.body;
  EXPECT_EQ(store_->FreshPods("ns", kNow)[0]->http.events, 3u);
  // Missing identity.
  common::ReportBatchBuilder anon("", "", "");
  anon.AddWindow(HttpWindow(1, kNow, 1, 0, {0.01}));
  EXPECT_EQ(handler_->Handle(kProto, anon.SerializeAsString()).status, 400);
  // Wrong content type.
  auto ct = handler_->Handle("application/json", "{}");
  EXPECT_EQ(ct.status, 415);
  EXPECT_EQ(ct.reason, "content_type");
  // Window from the far future.
  auto future = handler_->Handle(
      kProto,
      Pod("ns", "p2").AddWindow(HttpWindow(1, kNow + 120'000, 1, 0, {0.01})).SerializeAsString());
  EXPECT_EQ(future.status, 400);
  EXPECT_EQ(store_->FreshPods("ns", kNow).size(), 1u);
}

TEST_F(IngestTest, TooLargeIs413) {
  IngestOptions io;
  io.limits.max_body_bytes = 64;
  Reset(StoreOptions{}, io);
  auto b = Pod("ns", "p1");
  for (int i = 0; i < 10; ++i)
    b.AddWindow(
        HttpWindow(static_cast<uint64_t>(i + 1), kNow - 10'000 + i * 1000, 5, 0, {0.01, 0.2}));
  auto r = handler_->Handle(kProto, b.SerializeAsString());
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.reason, "too_large");
}

TEST_F(IngestTest, StoreFullIs429WithRetryAfter) {
  StoreOptions so;
  so.max_pods = 1;
  Reset(so, IngestOptions{});
  ASSERT_EQ(
      handler_
          ->Handle(kProto,
                   Pod("ns", "p1").AddWindow(HttpWindow(1, kNow, 1, 0, {0.01})).SerializeAsString())
          .status,
      200);
  auto r = handler_->Handle(
      kProto, Pod("ns", "p2").AddWindow(HttpWindow(1, kNow, 1, 0, {0.01})).SerializeAsString());
  EXPECT_EQ(r.status, 429);
  ASSERT_TRUE(r.retry_after_seconds.has_value());
  EXPECT_EQ(*r.retry_after_seconds, 1);
}

TEST_F(IngestTest, WindowsOlderThanTheWindowAreLate) {
  auto r = handler_->Handle(kProto, Pod("ns", "p1")
                                        .AddWindow(HttpWindow(1, kNow - 40'000, 1, 0, {0.01}))
                                        .AddWindow(HttpWindow(2, kNow, 1, 0, {0.01}))
                                        .SerializeAsString());
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.result.accepted, 1);
  EXPECT_EQ(r.result.late, 1);
}

TEST_F(IngestTest, SketchCountMismatchIsRejected) {
  auto w = HttpWindow(1, kNow, 3, 0, {0.01});
  w.mutable_http()->mutable_latency()->set_count(99);
  auto r = handler_->Handle(kProto, Pod("ns", "p1").AddWindow(w).SerializeAsString());
  EXPECT_EQ(r.status, 400);
}

}  // namespace
}  // namespace ingest_test
}  // namespace kpiscale::adapter
