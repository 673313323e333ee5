#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "kpiscale/adapter/catalog.h"
#include "kpiscale/adapter/window_store.h"
#include "test_util.h"

namespace kpiscale::adapter {
// A namespace of its own: in unity builds several test files share one translation unit.
namespace memory_window_store_test {
namespace {

using testing::Decode;
using testing::HttpWindow;
using testing::Pod;

constexpr int64_t kNow = 1'700'000'000'000;

std::unique_ptr<WindowStore> NewStore(int64_t window_ms = 30'000, int64_t stale_ms = 5'000) {
  StoreOptions o;
  o.window_ms = window_ms;
  o.stale_after_ms = stale_ms;
  auto s = CreateMemoryWindowStore(o);
  EXPECT_TRUE(s.ok());
  return std::move(s).value();
}

TEST(MemoryWindowStore, StoresWindowsAndTotals) {
  auto store = NewStore();
  auto b = Pod("ns", "p1")
               .AddWindow(HttpWindow(1, kNow - 1000, 10, 1, {0.01}))
               .AddWindow(HttpWindow(2, kNow, 20, 2, {0.02}))
               .Build();
  auto r = store->Ingest(Decode(b, kNow));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->accepted, 2);
  auto pods = store->FreshPods("ns", kNow);
  ASSERT_EQ(pods.size(), 1u);
  const PodView& v = *pods[0];
  EXPECT_EQ(v.identity->name, "p1");
  EXPECT_EQ(v.newest_end_ms, kNow);
  EXPECT_EQ(v.newest_sequence, 2u);
  EXPECT_EQ(v.windows, 2);
  EXPECT_TRUE(v.http.present);
  EXPECT_FALSE(v.cache.present);
  EXPECT_EQ(v.http.events, 30u);
  EXPECT_EQ(v.http.errors, 3u);
  EXPECT_EQ(v.http.observed_ms, 2000);
  EXPECT_EQ(v.http.latency.count(), 30u);
  EXPECT_EQ(store->Stats().pods, 1u);
  EXPECT_EQ(store->Stats().windows, 2u);
}

TEST(MemoryWindowStore, WindowsAreIdempotentBySequence) {
  auto store = NewStore();
  auto b = Pod("ns", "p1").AddWindow(HttpWindow(7, kNow, 10, 0, {0.01})).Build();
  ASSERT_EQ(store->Ingest(Decode(b, kNow))->accepted, 1);
  auto again = store->Ingest(Decode(b, kNow));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->accepted, 0);
  EXPECT_EQ(again->duplicate, 1);
  EXPECT_EQ(store->FreshPods("ns", kNow)[0]->http.events, 10u);
}

TEST(MemoryWindowStore, OlderWindowIsLateNotCounted) {
  auto store = NewStore();
  ASSERT_TRUE(store
                  ->Ingest(Decode(
                      Pod("ns", "p1").AddWindow(HttpWindow(5, kNow, 1, 0, {0.01})).Build(), kNow))
                  .ok());
  auto r = store->Ingest(
      Decode(Pod("ns", "p1").AddWindow(HttpWindow(4, kNow - 1000, 9, 0, {0.01})).Build(), kNow));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->late, 1);
  EXPECT_EQ(store->FreshPods("ns", kNow)[0]->http.events, 1u);
}

TEST(MemoryWindowStore, SidecarRestartWithLowerSequenceIsAccepted) {
  auto store = NewStore();
  ASSERT_TRUE(
      store
          ->Ingest(Decode(
              Pod("ns", "p1").AddWindow(HttpWindow(50, kNow - 1000, 1, 0, {0.01})).Build(), kNow))
          .ok());
  auto r = store->Ingest(
      Decode(Pod("ns", "p1").AddWindow(HttpWindow(1, kNow, 2, 0, {0.01})).Build(), kNow));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->accepted, 1);
  EXPECT_EQ(store->FreshPods("ns", kNow)[0]->http.events, 3u);
}

TEST(MemoryWindowStore, PodsGoStaleAndAreSwept) {
  auto store = NewStore(30'000, 5'000);
  ASSERT_TRUE(store
                  ->Ingest(Decode(
                      Pod("ns", "p1").AddWindow(HttpWindow(1, kNow, 1, 0, {0.01})).Build(), kNow))
                  .ok());
  EXPECT_EQ(store->FreshPods("ns", kNow + 4'999).size(), 1u);
  EXPECT_EQ(store->FreshPods("ns", kNow + 5'000).size(), 0u);
  EXPECT_EQ(store->Sweep(kNow + 4'000), 0u);
  EXPECT_EQ(store->Sweep(kNow + 5'000), 1u);
  EXPECT_EQ(store->Stats().pods, 0u);
  EXPECT_EQ(store->Stats().windows, 0u);
  // A new window brings the pod back.
  ASSERT_TRUE(store
                  ->Ingest(Decode(
                      Pod("ns", "p1").AddWindow(HttpWindow(2, kNow + 6'000, 1, 0, {0.01})).Build(),
                      kNow + 6'000))
                  .ok());
  EXPECT_EQ(store->FreshPods("", kNow + 6'000).size(), 1u);
}

TEST(MemoryWindowStore, TotalsCoverOnlyTheWindow) {
  auto store = NewStore(5'000, 5'000);
  auto b = Pod("ns", "p1");
  for (int i = 0; i < 10; ++i)
    b.AddWindow(HttpWindow(static_cast<uint64_t>(i + 1), kNow - (9 - i) * 1000, i + 1, 0, {0.01}));
  ASSERT_TRUE(store->Ingest(Decode(b.Build(), kNow)).ok());
  const auto v = store->FreshPods("ns", kNow)[0];
  // Windows ending in (kNow - 5s, kNow]: the last five, with 6..10 requests.
  EXPECT_EQ(v->windows, 5);
  EXPECT_EQ(v->http.events, 6u + 7 + 8 + 9 + 10);
  EXPECT_EQ(v->http.observed_ms, 5000);
}

TEST(MemoryWindowStore, IdleWindowsCountInTheRate) {
  auto store = NewStore();
  common::WindowBuilder idle;
  auto b = Pod("ns", "p1")
               .AddWindow(HttpWindow(1, kNow - 1000, 10, 0, {0.01}))
               .AddWindow(idle.Finish(2, kNow - 1000, kNow));
  ASSERT_TRUE(store->Ingest(Decode(b.Build(), kNow)).ok());
  const auto v = store->FreshPods("ns", kNow)[0];
  EXPECT_EQ(v->http.events, 10u);
  EXPECT_EQ(v->http.observed_ms, 2000);  // 10 requests over 2 s, not 1 s
}

TEST(MemoryWindowStore, NamespaceOfAUidCannotChange) {
  auto store = NewStore();
  auto a = Decode(Pod("ns", "p1").AddWindow(HttpWindow(1, kNow, 1, 0, {0.01})).Build(), kNow);
  ASSERT_TRUE(store->Ingest(a).ok());
  a.pod.ns = "other";
  a.windows[0].sequence = 2;
  auto r = store->Ingest(a);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(MemoryWindowStore, MaxPodsIsResourceExhausted) {
  StoreOptions o;
  o.max_pods = 1;
  auto store = std::move(CreateMemoryWindowStore(o)).value();
  ASSERT_TRUE(store
                  ->Ingest(Decode(
                      Pod("ns", "p1").AddWindow(HttpWindow(1, kNow, 1, 0, {0.01})).Build(), kNow))
                  .ok());
  auto r = store->Ingest(
      Decode(Pod("ns", "p2").AddWindow(HttpWindow(1, kNow, 1, 0, {0.01})).Build(), kNow));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(store->FreshPods("ns", kNow).size(), 1u);
}

TEST(MemoryWindowStore, RejectsBadOptions) {
  StoreOptions o;
  o.window_ms = 0;
  EXPECT_FALSE(CreateMemoryWindowStore(o).ok());
}

TEST(MemoryWindowStore, ConcurrentIngestAndReadersSeeConsistentSnapshots) {
  auto store = NewStore();
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::thread reader([&] {
    while (!stop.load()) {
      for (const auto& v : store->FreshPods("ns", kNow + 30'000)) {
        // Every window carries 10 requests, so a consistent snapshot is a multiple of 10.
        if (v->http.events % 10 != 0 || v->http.latency.count() != v->http.events) ++bad;
      }
    }
  });
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 1; i <= 300; ++i) {
        auto b = Pod("ns", "p" + std::to_string(i % 7 + w * 7))
                     .AddWindow(HttpWindow(static_cast<uint64_t>(i), kNow + i * 100, 10, 0,
                                           {0.01, 0.02}, 100));
        auto r = store->Ingest(Decode(b.Build(), kNow + 30'000));
        if (!r.ok()) ++bad;
      }
    });
  }
  for (auto& t : writers) t.join();
  stop = true;
  reader.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(store->FreshPods("ns", kNow + 30'000).size(), 14u);
}

}  // namespace
}  // namespace memory_window_store_test
}  // namespace kpiscale::adapter
