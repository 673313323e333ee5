#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "../../integration/observe/recording_sink.h"
#include "kpiscale/sidecar/observe/tcp_relay.h"

namespace kpiscale::sidecar::observe {
namespace {

using kpiscale::testing::WaitFor;

// What a test tap saw, shared between the relay's I/O thread and the test.
struct Seen {
  std::mutex mu;
  std::string client;
  std::string server;
  std::optional<CloseReason> closed;
};

class RecordingTap final : public ConnectionTap {
 public:
  RecordingTap(Seen* seen, bool intercept) : seen_(seen), intercept_(intercept) {}
  bool WantsIntercept() const override { return intercept_; }
  Intercept InterceptClient(const char* data, std::size_t len) override {
    Intercept ic;
    if (len < 3) {
      ic.action = Intercept::Action::kNeedMore;
    } else if (std::string(data, 3) == "ABC") {
      ic.action = Intercept::Action::kAnswer;
      ic.consumed = 3;
      ic.answer = "N";
    } else {
      intercept_ = false;
    }
    return ic;
  }
  void OnClientBytes(const char* d, std::size_t n, SteadyTime) override {
    std::lock_guard<std::mutex> lock(seen_->mu);
    seen_->client.append(d, n);
  }
  void OnServerBytes(const char* d, std::size_t n, SteadyTime) override {
    std::lock_guard<std::mutex> lock(seen_->mu);
    seen_->server.append(d, n);
  }
  void OnClose(CloseReason reason, SteadyTime) override {
    std::lock_guard<std::mutex> lock(seen_->mu);
    seen_->closed = reason;
  }
  std::string UpstreamFailureAnswer(const std::string&) override {
    return intercept_answer_on_failure ? "DEAD" : "";
  }
  bool intercept_answer_on_failure = false;

 private:
  Seen* seen_;
  bool intercept_;
};

int ListenLoopback(uint16_t* port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(fd, 16) != 0) {
    ::close(fd);
    return -1;
  }
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  *port = ntohs(addr.sin_port);
  return fd;
}

int ConnectLoopback(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool WriteAll(int fd, const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

// Reads until EOF or `want` bytes.
std::string ReadUpTo(int fd, std::size_t want) {
  std::string out;
  char buf[65536];
  while (out.size() < want) {
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

// An upstream that echoes each connection's bytes until EOF, then says "bye" and closes.
class EchoServer {
 public:
  EchoServer() {
    fd_ = ListenLoopback(&port_);
    thread_ = std::thread([this] {
      for (;;) {
        const int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        workers_.emplace_back([c] {
          char buf[65536];
          for (;;) {
            const ssize_t n = ::recv(c, buf, sizeof(buf), 0);
            if (n <= 0) break;
            if (!WriteAll(c, std::string(buf, static_cast<std::size_t>(n)))) break;
          }
          WriteAll(c, "bye");
          ::close(c);
        });
      }
    });
  }
  ~EchoServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
    for (auto& w : workers_) w.join();
  }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::vector<std::thread> workers_;
};

// How the relay runs: every behaviour below must hold with one event loop or several, and
// with writes deferred to the end of each wake-up or sent at once.
struct RelayMode {
  int threads;
  bool defer_writes;
};

std::string ModeName(const ::testing::TestParamInfo<RelayMode>& info) {
  return "threads" + std::to_string(info.param.threads) +
         (info.param.defer_writes ? "_deferred" : "_immediate");
}

class TcpRelayTest : public ::testing::TestWithParam<RelayMode> {
 protected:
  TcpRelayTest() : stats_(*RelayStats::Create(registry_, "test")) {}

  uint16_t StartRelay(uint16_t upstream_port, bool intercept = false, bool failure_answer = false,
                      std::size_t max_connections = 16) {
    RelayOptions options;
    options.max_connections = max_connections;
    options.threads = GetParam().threads;
    options.defer_writes = GetParam().defer_writes;
    auto relay = TcpRelay::Create(options);
    EXPECT_TRUE(relay.ok());
    relay_ = std::move(*relay);
    RelayListenerConfig config;
    config.name = "test";
    config.listen = "127.0.0.1:0";
    config.upstream = "127.0.0.1:" + std::to_string(upstream_port);
    config.stats = &stats_;
    config.new_tap = [this, intercept, failure_answer] {
      auto tap = std::make_unique<RecordingTap>(&seen_, intercept);
      tap->intercept_answer_on_failure = failure_answer;
      return tap;
    };
    auto port = relay_->AddListener(config);
    EXPECT_TRUE(port.ok()) << port.status();
    EXPECT_TRUE(relay_->Start().ok());
    return *port;
  }

  std::optional<CloseReason> ClosedReason() {
    std::lock_guard<std::mutex> lock(seen_.mu);
    return seen_.closed;
  }

  prometheus::Registry registry_;
  RelayStats stats_;
  Seen seen_;
  std::unique_ptr<TcpRelay> relay_;
};

TEST_P(TcpRelayTest, RelaysBytesUnchangedBothWaysWithBackpressure) {
  EchoServer echo;
  const uint16_t port = StartRelay(echo.port());
  const int fd = ConnectLoopback(port);
  ASSERT_GE(fd, 0);
  std::string payload(3 * 1024 * 1024 + 17, '\0');
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 131 + 7);
  // Writing 3 MiB while nobody reads fills every 64 KiB buffer on the way, so the relay must
  // stop reading and resume; a reader thread drains the echo.
  std::string echoed;
  std::thread reader([&] { echoed = ReadUpTo(fd, payload.size() + 3); });
  ASSERT_TRUE(WriteAll(fd, payload));
  ::shutdown(fd, SHUT_WR);
  reader.join();
  ::close(fd);
  EXPECT_EQ(echoed.size(), payload.size() + 3);
  EXPECT_TRUE(echoed == payload + "bye");
  ASSERT_TRUE(WaitFor([&] { return ClosedReason().has_value(); }));
  std::lock_guard<std::mutex> lock(seen_.mu);
  EXPECT_TRUE(seen_.client == payload);
  EXPECT_TRUE(seen_.server == payload + "bye");
  EXPECT_EQ(*seen_.closed, CloseReason::kClientClosed);
  EXPECT_EQ(stats_.bytes_upstream.Value(), static_cast<double>(payload.size()));
  EXPECT_EQ(stats_.connections.Value(), 1);
}

TEST_P(TcpRelayTest, HalfCloseIsPassedOn) {
  EchoServer echo;
  const uint16_t port = StartRelay(echo.port());
  const int fd = ConnectLoopback(port);
  ASSERT_TRUE(WriteAll(fd, "hello"));
  ::shutdown(fd, SHUT_WR);  // the echo server only says "bye" after it sees EOF
  EXPECT_EQ(ReadUpTo(fd, 1000), "hellobye");
  ::close(fd);
  ASSERT_TRUE(WaitFor([&] { return relay_->active_connections() == 0; }));
  EXPECT_EQ(stats_.active.Value(), 0);
}

TEST_P(TcpRelayTest, UnreachableUpstreamClosesTheClientAndIsCounted) {
  uint16_t dead_port = 0;
  ::close(ListenLoopback(&dead_port));  // a port nobody listens on
  const uint16_t port = StartRelay(dead_port);
  const int fd = ConnectLoopback(port);
  ASSERT_GE(fd, 0);
  WriteAll(fd, "PING\r\n");
  EXPECT_EQ(ReadUpTo(fd, 100), "");
  ::close(fd);
  ASSERT_TRUE(WaitFor([&] { return ClosedReason().has_value(); }));
  EXPECT_EQ(*ClosedReason(), CloseReason::kUpstreamConnectFailed);
  EXPECT_EQ(stats_.upstream_failures.Value(), 1);
  // The relay keeps serving.
  const int again = ConnectLoopback(port);
  EXPECT_GE(again, 0);
  EXPECT_EQ(ReadUpTo(again, 100), "");
  ::close(again);
}

TEST_P(TcpRelayTest, InterceptAnswersLocallyThenForwards) {
  EchoServer echo;
  const uint16_t port = StartRelay(echo.port(), /*intercept=*/true);
  const int fd = ConnectLoopback(port);
  ASSERT_TRUE(WriteAll(fd, "AB"));
  ASSERT_TRUE(WriteAll(fd, "C"));
  EXPECT_EQ(ReadUpTo(fd, 1), "N");
  ASSERT_TRUE(WriteAll(fd, "xyz"));
  EXPECT_EQ(ReadUpTo(fd, 3), "xyz");
  ::shutdown(fd, SHUT_WR);
  EXPECT_EQ(ReadUpTo(fd, 100), "bye");
  ::close(fd);
  ASSERT_TRUE(WaitFor([&] { return ClosedReason().has_value(); }));
  std::lock_guard<std::mutex> lock(seen_.mu);
  EXPECT_EQ(seen_.client, "xyz");  // the answered bytes never reach the server
}

TEST_P(TcpRelayTest, UpstreamFailureAnswerAfterInterception) {
  uint16_t dead_port = 0;
  ::close(ListenLoopback(&dead_port));
  const uint16_t port = StartRelay(dead_port, /*intercept=*/true, /*failure_answer=*/true);
  const int fd = ConnectLoopback(port);
  ASSERT_TRUE(WriteAll(fd, "ABC"));
  EXPECT_EQ(ReadUpTo(fd, 1), "N");
  ASSERT_TRUE(WriteAll(fd, "startup"));
  EXPECT_EQ(ReadUpTo(fd, 100), "DEAD");
  ::close(fd);
}

TEST_P(TcpRelayTest, ConnectionLimitRejects) {
  EchoServer echo;
  const uint16_t port = StartRelay(echo.port(), false, false, /*max_connections=*/1);
  const int first = ConnectLoopback(port);
  ASSERT_TRUE(WaitFor([&] { return relay_->active_connections() == 1; }));
  const int second = ConnectLoopback(port);
  EXPECT_EQ(ReadUpTo(second, 100), "");
  EXPECT_EQ(stats_.rejected.Value(), 1);
  ASSERT_TRUE(WriteAll(first, "ok"));
  EXPECT_EQ(ReadUpTo(first, 2), "ok");
  ::close(first);
  ::close(second);
}

// Many concurrent connections over several event loops: every byte arrives on the right
// connection, every connection is counted once, and the kernel spreads them over the loops.
TEST_P(TcpRelayTest, ConcurrentConnectionsKeepTheirOwnBytes) {
  EchoServer echo;
  constexpr int kConnections = 24;
  const uint16_t port = StartRelay(echo.port(), false, false, /*max_connections=*/64);
  std::vector<std::thread> clients;
  std::vector<std::string> got(kConnections);
  std::vector<std::string> want(kConnections);
  for (int i = 0; i < kConnections; ++i) {
    want[i] = std::string(1000 + 37 * i, static_cast<char>('a' + i % 26)) + std::to_string(i);
  }
  for (int i = 0; i < kConnections; ++i) {
    clients.emplace_back([&, i] {
      const int fd = ConnectLoopback(port);
      if (fd < 0) return;
      // Several small writes, each echoed before the next, so the loops interleave.
      const std::size_t step = want[i].size() / 4 + 1;
      for (std::size_t off = 0; off < want[i].size(); off += step) {
        const std::string part = want[i].substr(off, step);
        if (!WriteAll(fd, part)) break;
        got[i] += ReadUpTo(fd, part.size());
      }
      ::shutdown(fd, SHUT_WR);
      got[i] += ReadUpTo(fd, 100);
      ::close(fd);
    });
  }
  for (auto& t : clients) t.join();
  for (int i = 0; i < kConnections; ++i) EXPECT_EQ(got[i], want[i] + "bye") << i;
  ASSERT_TRUE(WaitFor([&] { return relay_->active_connections() == 0; }));
  EXPECT_EQ(stats_.connections.Value(), kConnections);
  EXPECT_EQ(stats_.active.Value(), 0);
  std::size_t bytes = 0;
  for (const auto& w : want) bytes += w.size();
  EXPECT_EQ(stats_.bytes_upstream.Value(), static_cast<double>(bytes));
  EXPECT_EQ(stats_.bytes_downstream.Value(), static_cast<double>(bytes + 3 * kConnections));
  const std::vector<uint64_t> per_thread = relay_->accepted_per_thread();
  ASSERT_EQ(per_thread.size(), static_cast<std::size_t>(GetParam().threads));
  uint64_t total = 0;
  int used = 0;
  for (uint64_t n : per_thread) {
    total += n;
    used += n > 0 ? 1 : 0;
  }
  EXPECT_EQ(total, static_cast<uint64_t>(kConnections));
  // SO_REUSEPORT hashes connections over the loops: with 24 connections and 3 loops, all on
  // one loop has a probability of 3 * 3^-24.
  if (GetParam().threads > 1) {
    EXPECT_GE(used, 2);
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, TcpRelayTest,
                         ::testing::Values(RelayMode{1, true}, RelayMode{1, false},
                                           RelayMode{3, true}),
                         ModeName);

TEST(TcpRelayConfigTest, ThreadCountIsChecked) {
  for (const int threads : {0, -1, RelayOptions::kMaxThreads + 1}) {
    RelayOptions options;
    options.threads = threads;
    EXPECT_FALSE(TcpRelay::Create(options).ok()) << threads;
  }
  RelayOptions options;
  options.threads = 2;
  auto relay = TcpRelay::Create(options);
  ASSERT_TRUE(relay.ok());
  EXPECT_EQ((*relay)->threads(), 2);
}

TEST(TcpRelayConfigTest, BadAddressesAreRejected) {
  prometheus::Registry registry;
  auto stats = RelayStats::Create(registry, "x");
  ASSERT_TRUE(stats.ok());
  auto relay = TcpRelay::Create(RelayOptions{});
  ASSERT_TRUE(relay.ok());
  RelayListenerConfig config;
  config.stats = &*stats;
  config.new_tap = [] { return std::unique_ptr<ConnectionTap>(); };
  for (const auto& [listen, upstream] : std::vector<std::pair<std::string, std::string>>{
           {"127.0.0.1", "127.0.0.1:6379"},
           {"127.0.0.1:0", "127.0.0.1:0"},
           {"127.0.0.1:99999", "127.0.0.1:6379"},
           {"127.0.0.1:0", "no-such-host.invalid:6379"}}) {
    config.listen = listen;
    config.upstream = upstream;
    EXPECT_FALSE((*relay)->AddListener(config).ok()) << listen << " " << upstream;
  }
  std::string host;
  uint16_t port = 0;
  ASSERT_TRUE(SplitHostPort("[::1]:80", &host, &port).ok());
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 80);
}

}  // namespace
}  // namespace kpiscale::sidecar::observe
