#include "kpiscale/sidecar/pusher.h"

#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "httplib.h"
#include "kpiscale/sidecar/stats.h"
#include "prometheus/registry.h"

namespace kpiscale::sidecar {
namespace {

// A stand-in for the adapter's ingest endpoint: records every batch and answers with `status`.
class FakeAdapter {
 public:
  FakeAdapter() {
    server_.Post("/v1/reports", [this](const httplib::Request& req, httplib::Response& res) {
      kpiscale::v1::ReportBatch batch;
      const bool parsed = batch.ParseFromString(req.body);
      std::lock_guard<std::mutex> lock(mu_);
      if (parsed) batches_.push_back(batch);
      auth_ = req.get_header_value("Authorization");
      content_type_ = req.get_header_value("Content-Type");
      res.status = status_.load();
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::yield();
  }
  ~FakeAdapter() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<kpiscale::v1::ReportBatch> batches() {
    std::lock_guard<std::mutex> lock(mu_);
    return batches_;
  }
  std::vector<uint64_t> sequences() {
    std::vector<uint64_t> out;
    for (const auto& b : batches()) {
      for (const auto& w : b.windows()) out.push_back(w.sequence());
    }
    return out;
  }
  std::string auth() {
    std::lock_guard<std::mutex> lock(mu_);
    return auth_;
  }
  std::string content_type() {
    std::lock_guard<std::mutex> lock(mu_);
    return content_type_;
  }
  std::atomic<int> status_{200};

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::vector<kpiscale::v1::ReportBatch> batches_;
  std::string auth_;
  std::string content_type_;
};

kpiscale::v1::Window MakeWindow(uint64_t seq) {
  kpiscale::v1::Window w;
  w.set_sequence(seq);
  w.set_start_unix_ms(static_cast<int64_t>(seq) * 1000);
  w.set_end_unix_ms(static_cast<int64_t>(seq) * 1000 + 1000);
  w.mutable_http()->set_requests(seq);
  return w;
}

template <typename Pred>
bool WaitFor(Pred pred, std::chrono::milliseconds limit = std::chrono::milliseconds(10'000)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::yield();
  }
  return pred();
}

double CounterValue(prometheus::Registry& registry, const std::string& name) {
  for (const auto& f : registry.Collect()) {
    if (f.name == name) return f.metric.at(0).counter.value;
  }
  return -1;
}

class PusherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto stats = SidecarStats::Create(registry_, {0.2}, {0.1, 0.2}, {"other"});
    ASSERT_TRUE(stats.ok());
    stats_ = std::move(*stats);
    pod_.set_namespace_("ns");
    pod_.set_pod_name("p");
    pod_.set_pod_uid("u");
  }
  std::unique_ptr<Pusher> Make(PusherOptions options) {
    auto p = Pusher::Create(std::move(options), pod_, stats_.get());
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? std::move(*p) : nullptr;
  }
  FakeAdapter adapter_;
  prometheus::Registry registry_;
  std::unique_ptr<SidecarStats> stats_;
  kpiscale::v1::PodIdentity pod_;
};

TEST_F(PusherTest, PushesInOrderWithIdentityAndToken) {
  const std::string token_path = testing::TempDir() + "/token";
  { std::ofstream(token_path) << "secret-token\n"; }
  PusherOptions o;
  o.adapter_url = adapter_.url();
  o.token_file = token_path;
  auto pusher = Make(o);
  pusher->Start();
  for (uint64_t s = 1; s <= 5; ++s) pusher->Enqueue(MakeWindow(s));
  ASSERT_TRUE(WaitFor([&] { return adapter_.sequences().size() == 5; }));
  pusher->Stop(std::chrono::milliseconds(1000));
  EXPECT_EQ(adapter_.sequences(), (std::vector<uint64_t>{1, 2, 3, 4, 5}));
  const auto batch = adapter_.batches().at(0);
  EXPECT_EQ(batch.pod().pod_uid(), "u");
  EXPECT_FALSE(batch.sidecar_version().empty());
  EXPECT_EQ(adapter_.auth(), "Bearer secret-token");
  EXPECT_EQ(adapter_.content_type(), "application/x-protobuf");
  EXPECT_EQ(CounterValue(registry_, "kpiscale_sidecar_windows_pushed_total"), 5);
  EXPECT_EQ(pusher->pending(), 0u);
}

TEST_F(PusherTest, RetriesWithTheSameSequencesAfterFailure) {
  adapter_.status_ = 503;
  PusherOptions o;
  o.adapter_url = adapter_.url();
  o.initial_backoff = std::chrono::milliseconds(5);
  o.max_backoff = std::chrono::milliseconds(20);
  auto pusher = Make(o);
  pusher->Start();
  pusher->Enqueue(MakeWindow(7));
  pusher->Enqueue(MakeWindow(8));
  ASSERT_TRUE(WaitFor([&] { return adapter_.batches().size() >= 2; }));
  adapter_.status_ = 200;
  ASSERT_TRUE(WaitFor([&] { return pusher->pending() == 0; }));
  pusher->Stop(std::chrono::milliseconds(1000));
  // Every attempt carried the same windows with the same sequence numbers.
  for (const auto& b : adapter_.batches()) {
    ASSERT_GE(b.windows_size(), 1);
    EXPECT_EQ(b.windows(0).sequence(), 7u);
  }
  EXPECT_GE(CounterValue(registry_, "kpiscale_sidecar_push_failures_total"), 2);
  EXPECT_GE(CounterValue(registry_, "kpiscale_sidecar_windows_retried_total"), 2);
  EXPECT_EQ(CounterValue(registry_, "kpiscale_sidecar_windows_pushed_total"), 2);
}

TEST_F(PusherTest, RefusedBatchesAreDroppedAndCounted) {
  adapter_.status_ = 400;
  PusherOptions o;
  o.adapter_url = adapter_.url();
  auto pusher = Make(o);
  pusher->Start();
  pusher->Enqueue(MakeWindow(1));
  ASSERT_TRUE(WaitFor([&] { return pusher->pending() == 0; }));
  pusher->Stop(std::chrono::milliseconds(1000));
  EXPECT_EQ(CounterValue(registry_, "kpiscale_sidecar_windows_dropped_total"), 1);
  EXPECT_EQ(CounterValue(registry_, "kpiscale_sidecar_windows_pushed_total"), 0);
}

TEST_F(PusherTest, QueueKeepsTheNewestAndDropsTheOldest) {
  PusherOptions o;
  o.adapter_url = "http://127.0.0.1:1";  // nothing listens: every push fails
  o.max_pending_windows = 3;
  o.initial_backoff = std::chrono::milliseconds(60'000);
  auto pusher = Make(o);
  // Not started: Enqueue alone must bound the queue.
  for (uint64_t s = 1; s <= 10; ++s) pusher->Enqueue(MakeWindow(s));
  EXPECT_EQ(pusher->pending(), 3u);
  EXPECT_EQ(CounterValue(registry_, "kpiscale_sidecar_windows_dropped_total"), 7);
}

TEST_F(PusherTest, StopFlushesPendingWindows) {
  PusherOptions o;
  o.adapter_url = adapter_.url();
  auto pusher = Make(o);
  for (uint64_t s = 1; s <= 3; ++s) pusher->Enqueue(MakeWindow(s));
  pusher->Start();
  pusher->Stop(std::chrono::milliseconds(5000));
  EXPECT_EQ(adapter_.sequences(), (std::vector<uint64_t>{1, 2, 3}));
}

TEST_F(PusherTest, StopGivesUpAtTheDeadlineWhenTheAdapterIsDown) {
  PusherOptions o;
  o.adapter_url = "http://127.0.0.1:1";
  o.initial_backoff = std::chrono::milliseconds(5);
  auto pusher = Make(o);
  pusher->Enqueue(MakeWindow(1));
  pusher->Start();
  pusher->Stop(std::chrono::milliseconds(200));
  EXPECT_EQ(pusher->pending(), 1u);
  EXPECT_GE(CounterValue(registry_, "kpiscale_sidecar_push_failures_total"), 1);
}

TEST(PusherCreateTest, RejectsBadOptions) {
  kpiscale::v1::PodIdentity pod;
  PusherOptions o;
  o.adapter_url = "adapter:8443";
  EXPECT_FALSE(Pusher::Create(o, pod, nullptr).ok());
  o.adapter_url = "https://adapter:8443";
  o.ca_file = "/nonexistent/ca.pem";
  EXPECT_FALSE(Pusher::Create(o, pod, nullptr).ok());
}

}  // namespace
}  // namespace kpiscale::sidecar
