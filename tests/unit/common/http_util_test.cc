#include "kpiscale/common/http_util.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <cstdio>
#include <memory>
#include <string>

#include "kpiscale/common/process_metrics.h"

namespace kpiscale::common {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Runs promtool's exposition-format linter over text; returns its exit status and output.
std::pair<int, std::string> PromtoolCheckMetrics(const std::string& text) {
  const std::string path = testing::TempDir() + "/kpiscale_http_util_metrics.txt";
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    EXPECT_NE(f, nullptr);
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
  }
  const std::string cmd = "promtool check metrics < " + path + " 2>&1";
  std::FILE* p = popen(cmd.c_str(), "r");
  EXPECT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  const int status = pclose(p);
  return {status, out};
}

TEST(ServeMetricsTest, ServesRegistriesAndProcessMetricsThatPromtoolAccepts) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto& family = prometheus::BuildCounter()
                     .Name("kpiscale_test_requests_total")
                     .Help("Requests seen by the test.")
                     .Register(*registry);
  family.Add({{"code", "200"}}).Increment(3);
  auto process = std::make_shared<ProcessCollector>(
      ProcessCollector::Options{"/proc", "1.0.0", "adapter", 0, 0});

  httplib::Server server;
  ServeMetrics(server, {registry, process});
  auto thread = ServerThread::Start(server, "127.0.0.1", 0);
  ASSERT_TRUE(thread.ok()) << thread.status();
  ASSERT_GT((*thread)->port(), 0);

  httplib::Client client("127.0.0.1", (*thread)->port());
  const auto res = client.Get("/metrics");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), kPrometheusTextContentType);
  EXPECT_THAT(res->body, HasSubstr("kpiscale_test_requests_total{code=\"200\"} 3"));
  EXPECT_THAT(res->body, HasSubstr("process_resident_memory_bytes "));
  EXPECT_THAT(res->body,
              HasSubstr("kpiscale_build_info{component=\"adapter\",version=\"1.0.0\"} 1"));

  const auto [status, output] = PromtoolCheckMetrics(res->body);
  EXPECT_EQ(status, 0) << output << "\n" << res->body;

  // The server holds weak references: once the registry is gone, its metrics go too.
  registry.reset();
  const auto later = client.Get("/metrics");
  ASSERT_TRUE(later);
  EXPECT_THAT(later->body, Not(HasSubstr("kpiscale_test_requests_total")));
  EXPECT_THAT(later->body, HasSubstr("process_open_fds"));
  (*thread)->Stop();
  EXPECT_FALSE(client.Get("/metrics"));
}

TEST(ServerThreadTest, BusyPortIsUnavailableAndBadPortIsInvalid) {
  httplib::Server first;
  auto a = ServerThread::Start(first, "127.0.0.1", 0);
  ASSERT_TRUE(a.ok());
  httplib::Server second;
  const auto b = ServerThread::Start(second, "127.0.0.1", (*a)->port());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(b.status().message(), HasSubstr("cannot listen on 127.0.0.1:"));
  httplib::Server third;
  EXPECT_EQ(ServerThread::Start(third, "127.0.0.1", 70000).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(HttpCodeTest, AttachedCodeWinsOverTheCanonicalMapping) {
  const absl::Status base = absl::InvalidArgumentError("too big");
  EXPECT_EQ(HttpCodeOf(base), 400);
  const absl::Status tagged = WithHttpCode(base, 413);
  EXPECT_EQ(HttpCodeOf(tagged), 413);
  EXPECT_EQ(tagged.message(), "too big");
  EXPECT_EQ(tagged.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(WithHttpCode(absl::OkStatus(), 500).ok());
  EXPECT_EQ(HttpCodeOf(absl::PermissionDeniedError("x")), 403);
  EXPECT_EQ(HttpCodeOf(absl::ResourceExhaustedError("x")), 429);
}

}  // namespace
}  // namespace kpiscale::common
