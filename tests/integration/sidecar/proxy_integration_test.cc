// The real kpiscale-sidecar binary in front of an in-test upstream, pushing to a fake adapter.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "sidecar_harness.h"

namespace kpiscale::sidecar::testing {
namespace {

std::string Pattern(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (std::size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

class ProxyIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto& s = upstream_.server();
    big_ = Pattern(3 * 1024 * 1024 + 7, 1);
    s.Get("/hello", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("hello", "text/plain");
    });
    s.Get("/big", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(big_, "application/octet-stream");
    });
    s.Get("/chunked", [this](const httplib::Request&, httplib::Response& res) {
      res.set_chunked_content_provider(
          "application/octet-stream", [this](std::size_t offset, httplib::DataSink& sink) {
            if (offset >= big_.size()) {
              sink.done();
              return true;
            }
            // Uneven chunks cross every buffer boundary.
            const std::size_t n = std::min<std::size_t>(1 + offset % 70'001, big_.size() - offset);
            sink.write(big_.data() + offset, n);
            return true;
          });
    });
    // A response longer than any socket buffering: the client's early close always lands
    // mid-response, whatever the kernel's buffer autotuning does.
    s.Get("/endless", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content_provider(std::size_t{1} << 40, "application/octet-stream",
                               [this](std::size_t, std::size_t, httplib::DataSink& sink) {
                                 return sink.write(big_.data(), 64 * 1024);
                               });
    });
    s.Post("/echo", [](const httplib::Request& req, httplib::Response& res) {
      res.set_content(req.body, "application/octet-stream");
    });
    s.Get(R"(/status/(\d+))", [](const httplib::Request& req, httplib::Response& res) {
      res.status = std::stoi(req.matches[1]);
      res.set_content("status", "text/plain");
    });
    s.Get(R"(/slow/(\d+))", [this](const httplib::Request& req, httplib::Response& res) {
      slow_started_++;
      std::this_thread::sleep_for(std::chrono::milliseconds(std::stoi(req.matches[1])));
      res.set_content("slow", "text/plain");
    });
    s.Get("/conn", [](const httplib::Request& req, httplib::Response& res) {
      res.set_content(std::to_string(req.remote_port), "text/plain");
    });
    s.Get("/headers", [](const httplib::Request& req, httplib::Response& res) {
      res.set_content("xff=" + req.get_header_value("X-Forwarded-For") +
                          ";conn=" + req.get_header_value("Connection") +
                          ";secret=" + req.get_header_value("X-Hop"),
                      "text/plain");
    });
    upstream_.Start();
  }

  std::unique_ptr<SidecarProcess> StartSidecar(std::vector<std::string> extra = {},
                                               int upstream_port = 0) {
    std::vector<std::string> args = {
        "--listen=127.0.0.1:0",
        "--upstream=127.0.0.1:" + std::to_string(upstream_port ? upstream_port : upstream_.port()),
        "--metrics-listen=127.0.0.1:0",
        "--adapter-url=" + adapter_.url(),
        "--push-interval=100ms",
        "--slo-threshold=1s",
        "--slo-threshold=0.05",
        "--workload=deployment/web",
        "--log-level=warn"};
    args.insert(args.end(), extra.begin(), extra.end());
    return SidecarProcess::Start(args);
  }

  TestServer upstream_;
  FakeAdapter adapter_;
  std::string big_;
  std::atomic<int> slow_started_{0};
};

TEST_F(ProxyIntegrationTest, BodiesAreByteExact) {
  auto sc = StartSidecar();
  ASSERT_TRUE(sc);
  httplib::Client client("127.0.0.1", sc->proxy_port);
  client.set_read_timeout(std::chrono::seconds(20));
  auto big = client.Get("/big");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 200);
  EXPECT_TRUE(big->body == big_) << "size " << big->body.size();
  auto chunked = client.Get("/chunked");
  ASSERT_TRUE(chunked);
  EXPECT_EQ(chunked->get_header_value("Transfer-Encoding"), "chunked");
  EXPECT_TRUE(chunked->body == big_) << "size " << chunked->body.size();
  const std::string upload = Pattern(2 * 1024 * 1024 + 3, 2);
  auto echo = client.Post("/echo", upload, "application/octet-stream");
  ASSERT_TRUE(echo);
  EXPECT_TRUE(echo->body == upload);
  // A chunked request body (no length known up front).
  auto chunked_up = client.Post(
      "/echo",
      [&](std::size_t offset, httplib::DataSink& sink) {
        if (offset >= upload.size()) {
          sink.done();
          return true;
        }
        sink.write(upload.data() + offset, std::min<std::size_t>(50'000, upload.size() - offset));
        return true;
      },
      "application/octet-stream");
  ASSERT_TRUE(chunked_up);
  EXPECT_TRUE(chunked_up->body == upload);
}

TEST_F(ProxyIntegrationTest, KeepAliveReusesOneUpstreamConnectionAndForwardsHeaders) {
  auto sc = StartSidecar();
  ASSERT_TRUE(sc);
  RawConn conn(sc->proxy_port);
  ASSERT_TRUE(conn.connected());
  std::set<std::string> upstream_ports;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(conn.Send("GET /conn HTTP/1.1\r\nHost: t\r\n\r\n"));
    ASSERT_TRUE(conn.ReadUntil([](const std::string& b) { return CompleteResponseLength(b) > 0; }));
    auto r = PopResponse(&conn.buffer());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    upstream_ports.insert(r->body);
  }
  EXPECT_EQ(upstream_ports.size(), 1u) << "the upstream connection was not reused";
  ASSERT_TRUE(
      conn.Send("GET /headers HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 10.1.2.3\r\n"
                "Connection: X-Hop\r\nX-Hop: secret\r\n\r\n"));
  ASSERT_TRUE(conn.ReadUntil([](const std::string& b) { return CompleteResponseLength(b) > 0; }));
  auto r = PopResponse(&conn.buffer());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "xff=10.1.2.3, 127.0.0.1;conn=;secret=");
}

TEST_F(ProxyIntegrationTest, PipelinedRequestsAreAnsweredInOrder) {
  auto sc = StartSidecar();
  ASSERT_TRUE(sc);
  RawConn conn(sc->proxy_port);
  ASSERT_TRUE(
      conn.Send("GET /status/201 HTTP/1.1\r\nHost: t\r\n\r\n"
                "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nabcde"
                "GET /status/404 HTTP/1.1\r\nHost: t\r\n\r\n"
                "HEAD /big HTTP/1.1\r\nHost: t\r\n\r\n"
                "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
  ASSERT_TRUE(conn.ReadToEof());
  std::string& buf = conn.buffer();
  auto r1 = PopResponse(&buf);
  auto r2 = PopResponse(&buf);
  auto r3 = PopResponse(&buf);
  auto r4 = PopResponse(&buf, /*head_only=*/true);
  auto r5 = PopResponse(&buf);
  ASSERT_TRUE(r1 && r2 && r3 && r4 && r5);
  EXPECT_EQ(r1->status, 201);
  EXPECT_EQ(r2->status, 200);
  EXPECT_EQ(r2->body, "abcde");
  EXPECT_EQ(r3->status, 404);
  EXPECT_EQ(r4->status, 200);
  EXPECT_NE(r4->head.find("Content-Length: " + std::to_string(big_.size())), std::string::npos);
  EXPECT_EQ(r5->body, "hello");
  EXPECT_NE(r5->head.find("Connection: close"), std::string::npos);
  EXPECT_TRUE(buf.empty());
}

TEST_F(ProxyIntegrationTest, ExpectContinueIsRelayed) {
  auto sc = StartSidecar();
  ASSERT_TRUE(sc);
  RawConn conn(sc->proxy_port);
  ASSERT_TRUE(
      conn.Send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 7\r\n"
                "Expect: 100-continue\r\n\r\n"));
  ASSERT_TRUE(
      conn.ReadUntil([](const std::string& b) { return b.find("\r\n\r\n") != std::string::npos; }));
  EXPECT_EQ(conn.buffer().rfind("HTTP/1.1 100", 0), 0u) << conn.buffer();
  conn.buffer().clear();
  ASSERT_TRUE(conn.Send("payload"));
  ASSERT_TRUE(conn.ReadUntil([](const std::string& b) { return CompleteResponseLength(b) > 0; }));
  auto r = PopResponse(&conn.buffer());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "payload");
}

TEST_F(ProxyIntegrationTest, LimitsGiveClearErrors) {
  auto sc = StartSidecar({"--client-header-timeout=300ms", "--max-header-bytes=4096"});
  ASSERT_TRUE(sc);
  {
    RawConn conn(sc->proxy_port);
    ASSERT_TRUE(conn.Send("GET / HTTP/1.1\r\nX-Big: " + std::string(8000, 'a') + "\r\n\r\n"));
    ASSERT_TRUE(conn.ReadToEof());
    EXPECT_EQ(conn.buffer().rfind("HTTP/1.1 431", 0), 0u) << conn.buffer().substr(0, 100);
  }
  {
    RawConn conn(sc->proxy_port);
    ASSERT_TRUE(
        conn.Send("GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"));
    ASSERT_TRUE(conn.ReadToEof());
    EXPECT_EQ(conn.buffer().rfind("HTTP/1.1 400", 0), 0u);
  }
  {
    // Slowloris: half a head, then nothing.
    RawConn conn(sc->proxy_port);
    ASSERT_TRUE(conn.Send("GET / HTTP/1.1\r\nHost: x\r\n"));
    ASSERT_TRUE(conn.ReadToEof());
    EXPECT_EQ(conn.buffer().rfind("HTTP/1.1 408", 0), 0u);
  }
  EXPECT_TRUE(WaitFor([&] { return sc->MetricValue("kpiscale_sidecar_http_rejected_total") == 3; }))
      << sc->Metrics();
  EXPECT_EQ(sc->MetricValue("kpiscale_sidecar_http_requests_total", "code=\"4xx\""), 3);
}

TEST_F(ProxyIntegrationTest, UpstreamTimeoutIs504) {
  auto sc = StartSidecar({"--upstream-timeout=300ms"});
  ASSERT_TRUE(sc);
  httplib::Client client("127.0.0.1", sc->proxy_port);
  auto res = client.Get("/slow/1500");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 504);
  auto ok = client.Get("/hello");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_TRUE(WaitFor([&] {
    return sc->MetricValue("kpiscale_sidecar_http_upstream_failures_total", "reason=\"timeout\"") ==
           1;
  }));
  EXPECT_EQ(sc->MetricValue("kpiscale_sidecar_http_errors_total"), 1);
}

TEST_F(ProxyIntegrationTest, UpstreamDownIs502AndCounted) {
  auto sc = StartSidecar({}, ClosedPort());
  ASSERT_TRUE(sc);
  httplib::Client client("127.0.0.1", sc->proxy_port);
  for (int i = 0; i < 3; ++i) {
    auto res = client.Get("/hello");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 502);
  }
  EXPECT_TRUE(WaitFor([&] {
    return sc->MetricValue("kpiscale_sidecar_http_upstream_failures_total", "reason=\"connect\"") ==
           3;
  }));
  EXPECT_EQ(sc->MetricValue("kpiscale_sidecar_http_requests_total", "code=\"5xx\""), 3);
  EXPECT_EQ(sc->MetricValue("kpiscale_sidecar_http_errors_total"), 3);
  EXPECT_TRUE(WaitFor([&] { return adapter_.requests() == 3; }));
  uint64_t errors = 0;
  for (const auto& w : adapter_.windows()) errors += w.http().errors();
  EXPECT_EQ(errors, 3u);
}

TEST_F(ProxyIntegrationTest, AdapterDownFailsNoRequest) {
  auto sc = SidecarProcess::Start(
      {"--listen=127.0.0.1:0", "--upstream=127.0.0.1:" + std::to_string(upstream_.port()),
       "--metrics-listen=127.0.0.1:0",
       "--adapter-url=http://127.0.0.1:" + std::to_string(ClosedPort()), "--push-interval=100ms",
       "--max-pending-windows=5", "--log-level=error"});
  ASSERT_TRUE(sc);
  httplib::Client client("127.0.0.1", sc->proxy_port);
  for (int i = 0; i < 50; ++i) {
    auto res = client.Get("/hello");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
  }
  EXPECT_TRUE(
      WaitFor([&] { return sc->MetricValue("kpiscale_sidecar_push_failures_total") >= 2; }));
  EXPECT_TRUE(
      WaitFor([&] { return sc->MetricValue("kpiscale_sidecar_windows_dropped_total") >= 1; }));
  EXPECT_LE(sc->MetricValue("kpiscale_sidecar_push_queue_windows"), 5);
  EXPECT_GE(sc->MetricValue("kpiscale_sidecar_windows_retried_total"), 1);
  EXPECT_TRUE(WaitFor([&] {
    return sc->MetricValue("kpiscale_sidecar_http_requests_total", "code=\"2xx\"") == 50;
  }));
  EXPECT_EQ(sc->Terminate(), 0);
}

TEST_F(ProxyIntegrationTest, WindowsCarryExactCountsToTheAdapter) {
  auto sc = StartSidecar();
  ASSERT_TRUE(sc);
  httplib::Client client("127.0.0.1", sc->proxy_port);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(client.Get("/hello"));
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(client.Get("/status/500"));
  std::vector<std::thread> slow;
  for (int i = 0; i < 3; ++i) {
    slow.emplace_back([&] {
      httplib::Client c("127.0.0.1", sc->proxy_port);
      auto r = c.Get("/slow/1100");
      EXPECT_TRUE(r && r->status == 200);
    });
  }
  for (auto& t : slow) t.join();
  ASSERT_TRUE(WaitFor([&] { return adapter_.requests() == 25; })) << adapter_.requests();
  uint64_t errors = 0, s5 = 0, s2 = 0, slow_1s = 0, latency_count = 0;
  std::set<uint64_t> sequences;
  uint64_t prev = 0;
  for (const auto& w : adapter_.windows()) {
    EXPECT_GT(w.sequence(), prev);
    prev = w.sequence();
    sequences.insert(w.sequence());
    EXPECT_LT(w.start_unix_ms(), w.end_unix_ms());
    errors += w.http().errors();
    s5 += w.http().status_5xx();
    s2 += w.http().status_2xx();
    latency_count += w.http().latency().count();
    for (const auto& t : w.http().slo()) {
      if (t.threshold_seconds() == 1.0) slow_1s += t.slow();
    }
  }
  EXPECT_EQ(errors, 2u);
  EXPECT_EQ(s5, 2u);
  EXPECT_EQ(s2, 23u);
  EXPECT_EQ(slow_1s, 3u);
  EXPECT_EQ(latency_count, 25u);
  const auto batch = adapter_.batches().at(0);
  EXPECT_EQ(batch.pod().workload_kind(), "Deployment");
  EXPECT_EQ(batch.pod().workload_name(), "web");
  EXPECT_FALSE(batch.pod().pod_uid().empty());
}

TEST_F(ProxyIntegrationTest, SigtermFinishesInFlightRequestsAndFlushes) {
  auto sc = StartSidecar({"--push-interval=60s"});
  ASSERT_TRUE(sc);
  std::atomic<int> status{0};
  std::thread request([&] {
    httplib::Client c("127.0.0.1", sc->proxy_port);
    auto r = c.Get("/slow/700");
    status = r ? r->status : -1;
  });
  ASSERT_TRUE(WaitFor([&] { return slow_started_ == 1; }));
  EXPECT_EQ(sc->Terminate(), 0);
  request.join();
  EXPECT_EQ(status, 200);
  // The only window (60 s interval) was closed and pushed at exit.
  EXPECT_EQ(adapter_.requests(), 1u);
}

TEST_F(ProxyIntegrationTest, MetricsPassPromtool) {
  auto sc = StartSidecar({});
  ASSERT_TRUE(sc);
  httplib::Client client("127.0.0.1", sc->proxy_port);
  ASSERT_TRUE(client.Get("/hello"));
  ASSERT_TRUE(WaitFor([&] {
    return sc->MetricValue("kpiscale_sidecar_http_requests_total", "code=\"2xx\"") == 1;
  }));
  const std::string text = sc->Metrics();
  for (const char* name :
       {"kpiscale_sidecar_http_request_duration_seconds_bucket{le=\"1\"}",
        "kpiscale_sidecar_http_request_duration_seconds_bucket{le=\"0.05\"}",
        "kpiscale_sidecar_http_time_to_first_byte_seconds_bucket",
        "kpiscale_sidecar_http_slow_requests_total{threshold=\"1\"}",
        "kpiscale_sidecar_http_slow_requests_total{threshold=\"0.05\"}",
        "kpiscale_sidecar_http_requests_in_flight", "kpiscale_sidecar_windows_pushed_total",
        "kpiscale_sidecar_push_queue_windows", "process_resident_memory_bytes",
        "process_cpu_seconds_total", "kpiscale_build_info"}) {
    EXPECT_NE(text.find(name), std::string::npos) << name;
  }
  const std::string path = ::testing::TempDir() + "/sidecar-metrics.txt";
  { std::ofstream(path) << text; }
  const std::string cmd = "promtool check metrics < " + path + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string output;
  char buf[256];
  while (fgets(buf, sizeof(buf), p) != nullptr) output += buf;
  EXPECT_EQ(pclose(p), 0) << output;
}

// An upstream that accepts an upgrade and then echoes bytes, written with raw sockets so the
// 101 exchange is exact.
TEST_F(ProxyIntegrationTest, UpgradeBecomesATunnel) {
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(listener, 4), 0);
  socklen_t len = sizeof(addr);
  getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  std::thread echo([listener] {
    const int fd = accept(listener, nullptr, nullptr);
    if (fd < 0) return;
    std::string in;
    char buf[4096];
    while (in.find("\r\n\r\n") == std::string::npos) {
      const ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      in.append(buf, static_cast<std::size_t>(n));
    }
    const std::string reply =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n";
    send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
    in.erase(0, in.find("\r\n\r\n") + 4);
    if (!in.empty()) send(fd, in.data(), in.size(), MSG_NOSIGNAL);
    while (true) {
      const ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      send(fd, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL);
    }
    close(fd);
  });
  auto sc = StartSidecar({}, ntohs(addr.sin_port));
  ASSERT_TRUE(sc);
  {
    RawConn conn(sc->proxy_port);
    ASSERT_TRUE(
        conn.Send("GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n"));
    ASSERT_TRUE(conn.ReadUntil(
        [](const std::string& b) { return b.find("\r\n\r\n") != std::string::npos; }));
    EXPECT_EQ(conn.buffer().rfind("HTTP/1.1 101", 0), 0u) << conn.buffer();
    EXPECT_NE(conn.buffer().find("Upgrade: echo"), std::string::npos);
    conn.buffer().clear();
    const std::string payload = "\x81\x05hello-not-http\r\n\r\n";
    ASSERT_TRUE(conn.Send(payload));
    ASSERT_TRUE(conn.ReadUntil([&](const std::string& b) { return b.size() >= payload.size(); }));
    EXPECT_EQ(conn.buffer(), payload);
  }
  echo.join();
  close(listener);
  EXPECT_TRUE(
      WaitFor([&] { return sc->MetricValue("kpiscale_sidecar_http_upgrades_total") == 1; }));
  // A tunnel is not a timed request.
  EXPECT_EQ(sc->MetricValue("kpiscale_sidecar_http_request_duration_seconds_count"), 0);
}

TEST_F(ProxyIntegrationTest, ClientDisconnectMidResponseIsCountedNotFatal) {
  auto sc = StartSidecar();
  ASSERT_TRUE(sc);
  {
    RawConn conn(sc->proxy_port);
    ASSERT_TRUE(conn.Send("GET /endless HTTP/1.1\r\nHost: t\r\n\r\n"));
    ASSERT_TRUE(conn.ReadUntil([](const std::string& b) { return b.size() > 1000; }));
  }  // closed mid-response: the body never ends
  EXPECT_TRUE(
      WaitFor([&] { return sc->MetricValue("kpiscale_sidecar_http_client_aborts_total") == 1; }));
  httplib::Client client("127.0.0.1", sc->proxy_port);
  auto ok = client.Get("/hello");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->body, "hello");
  EXPECT_EQ(sc->MetricValue("kpiscale_sidecar_http_requests_in_flight"), 0);
}

}  // namespace
}  // namespace kpiscale::sidecar::testing
