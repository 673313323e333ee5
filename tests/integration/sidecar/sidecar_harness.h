#pragma once

// Helpers for the sidecar integration tests: run the real kpiscale-sidecar binary, an in-test
// upstream and a fake adapter ingest endpoint, and talk raw HTTP/1.1 over sockets.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "httplib.h"
#include "proto/report.pb.h"

namespace kpiscale::sidecar::testing {

using Clock = std::chrono::steady_clock;

/// Polls `pred` until it holds or `limit` passes (yielding, never sleeping a fixed time).
template <typename Pred>
bool WaitFor(Pred pred, std::chrono::milliseconds limit = std::chrono::milliseconds(15'000)) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::yield();
  }
  return pred();
}

/// The kpiscale-sidecar process. Reads the `ready` line for the bound ports.
class SidecarProcess {
 public:
  static std::unique_ptr<SidecarProcess> Start(
      const std::vector<std::string>& args, const std::vector<std::string>& env = {},
      const std::string& binary = KPISCALE_SIDECAR_BINARY,
      const std::string& ready_prefix = "ready proxy_port=") {
    auto p = std::unique_ptr<SidecarProcess>(new SidecarProcess());
    int out[2];
    if (pipe(out) != 0) return nullptr;
    p->log_path_ = ::testing::TempDir() + "/sidecar-" + std::to_string(getpid()) + "-" +
                   std::to_string(counter_++) + ".log";
    const pid_t pid = fork();
    if (pid == 0) {
      dup2(out[1], STDOUT_FILENO);
      const int log = open(p->log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(log, STDERR_FILENO);
      close(out[0]);
      for (const std::string& kv : env) {
        const std::size_t eq = kv.find('=');
        setenv(kv.substr(0, eq).c_str(), kv.substr(eq + 1).c_str(), 1);
      }
      std::vector<char*> argv;
      std::string bin = binary;
      argv.push_back(bin.data());
      std::vector<std::string> copy = args;
      for (auto& a : copy) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(bin.c_str(), argv.data());
      _exit(127);
    }
    close(out[1]);
    p->pid_ = pid;
    p->out_fd_ = out[0];
    // Read until the ready line (the process logs elsewhere, but be tolerant).
    std::string buffer;
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    while (Clock::now() < deadline) {
      pollfd pfd{p->out_fd_, POLLIN, 0};
      if (poll(&pfd, 1, 100) <= 0) continue;
      char buf[512];
      const ssize_t n = read(p->out_fd_, buf, sizeof(buf));
      if (n <= 0) break;
      buffer.append(buf, static_cast<std::size_t>(n));
      const std::size_t pos = buffer.find(ready_prefix);
      if (pos != std::string::npos && buffer.find('\n', pos) != std::string::npos) {
        std::istringstream line(buffer.substr(pos));
        std::string word;
        while (line >> word) {
          if (word.rfind("proxy_port=", 0) == 0) p->proxy_port = std::stoi(word.substr(11));
          if (word.rfind("metrics_port=", 0) == 0) p->metrics_port = std::stoi(word.substr(13));
          if (word.rfind("secure_port=", 0) == 0) p->secure_port = std::stoi(word.substr(12));
          if (word.rfind("ingest_port=", 0) == 0) p->ingest_port = std::stoi(word.substr(12));
          if (word.find('\n') != std::string::npos) break;
        }
        return p;
      }
    }
    ADD_FAILURE() << "sidecar did not become ready; log:\n" << p->Log();
    return nullptr;
  }

  ~SidecarProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (out_fd_ >= 0) close(out_fd_);
  }

  /// SIGTERM, then the exit code (or -1 if it did not exit within the limit).
  int Terminate(std::chrono::milliseconds limit = std::chrono::milliseconds(20'000)) {
    kill(pid_, SIGTERM);
    return Wait(limit);
  }
  int Wait(std::chrono::milliseconds limit) {
    int status = 0;
    const bool exited = WaitFor(
        [&] {
          const pid_t r = waitpid(pid_, &status, WNOHANG);
          return r == pid_;
        },
        limit);
    if (!exited) return -1;
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  std::string Log() const {
    std::ifstream in(log_path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  std::string Metrics() const {
    httplib::Client client("127.0.0.1", metrics_port);
    auto res = client.Get("/metrics");
    return res ? res->body : std::string();
  }
  /// Sum of the samples of `name` whose label text contains `labels` (e.g. `code="2xx"`).
  double MetricValue(const std::string& name, const std::string& labels = "") const {
    std::istringstream in(Metrics());
    std::string line;
    double sum = 0;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      const std::size_t space = line.rfind(' ');
      const std::string series = line.substr(0, space);
      const std::string metric = series.substr(0, series.find('{'));
      if (metric != name) continue;
      if (!labels.empty() && series.find(labels) == std::string::npos) continue;
      sum += std::stod(line.substr(space + 1));
    }
    return sum;
  }

  int proxy_port = 0;
  int metrics_port = 0;
  int secure_port = 0;  // kpiscale-adapter
  int ingest_port = 0;  // kpiscale-adapter

 private:
  SidecarProcess() = default;
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string log_path_;
  static inline std::atomic<int> counter_{0};
};

/// A stand-in for the adapter's ingest endpoint: records every ReportBatch.
class FakeAdapter {
 public:
  FakeAdapter() {
    server_.Post("/v1/reports", [this](const httplib::Request& req, httplib::Response& res) {
      kpiscale::v1::ReportBatch batch;
      if (!batch.ParseFromString(req.body)) {
        res.status = 400;
        return;
      }
      std::lock_guard<std::mutex> lock(mu_);
      batches_.push_back(batch);
      res.status = 200;
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
  std::vector<kpiscale::v1::Window> windows() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<kpiscale::v1::Window> out;
    for (const auto& b : batches_) {
      for (const auto& w : b.windows()) out.push_back(w);
    }
    return out;
  }
  std::vector<kpiscale::v1::ReportBatch> batches() {
    std::lock_guard<std::mutex> lock(mu_);
    return batches_;
  }
  /// Sum of http.requests over all windows received.
  uint64_t requests() {
    uint64_t n = 0;
    for (const auto& w : windows()) n += w.http().requests();
    return n;
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::vector<kpiscale::v1::ReportBatch> batches_;
};

/// A blocking TCP client socket with read deadlines.
class RawConn {
 public:
  explicit RawConn(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~RawConn() {
    if (fd_ >= 0) close(fd_);
  }
  bool connected() const { return connected_; }
  bool Send(const std::string& data) {
    std::size_t off = 0;
    while (off < data.size()) {
      const ssize_t n = send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<std::size_t>(n);
    }
    return true;
  }
  /// Reads until `done(buffer)` holds, EOF, or the deadline. Returns false on timeout.
  template <typename Done>
  bool ReadUntil(Done done, std::chrono::milliseconds limit = std::chrono::milliseconds(10'000)) {
    const auto deadline = Clock::now() + limit;
    while (!done(buffer_)) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return false;
      pollfd pfd{fd_, POLLIN, 0};
      if (poll(&pfd, 1, static_cast<int>(left.count())) <= 0) return false;
      char buf[65536];
      const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) {
        eof_ = true;
        return done(buffer_);
      }
      buffer_.append(buf, static_cast<std::size_t>(n));
    }
    return true;
  }
  /// Reads until the peer closes.
  bool ReadToEof(std::chrono::milliseconds limit = std::chrono::milliseconds(10'000)) {
    ReadUntil([this](const std::string&) { return eof_; }, limit);
    return eof_;
  }
  std::string& buffer() { return buffer_; }
  bool eof() const { return eof_; }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  bool connected_ = false;
  bool eof_ = false;
  std::string buffer_;
};

/// One response parsed from the front of a buffer (Content-Length or no body only).
struct RawResponse {
  int status = 0;
  std::string head;
  std::string body;
};

/// Length of the first complete response in `buf` (0 if incomplete); `head_only` for HEAD.
inline std::size_t CompleteResponseLength(const std::string& buf, bool head_only = false) {
  const std::size_t end = buf.find("\r\n\r\n");
  if (end == std::string::npos) return 0;
  const std::string head = buf.substr(0, end);
  std::size_t length = 0;
  std::string lower = head;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const std::size_t cl = lower.find("content-length:");
  if (cl != std::string::npos && !head_only) {
    length = std::stoul(head.substr(cl + 15));
  }
  const int status = std::stoi(head.substr(9, 3));
  if (status < 200 || status == 204 || status == 304) length = 0;
  return buf.size() >= end + 4 + length ? end + 4 + length : 0;
}

inline std::optional<RawResponse> PopResponse(std::string* buf, bool head_only = false) {
  const std::size_t n = CompleteResponseLength(*buf, head_only);
  if (n == 0) return std::nullopt;
  RawResponse r;
  const std::size_t end = buf->find("\r\n\r\n");
  r.head = buf->substr(0, end + 4);
  r.body = buf->substr(end + 4, n - end - 4);
  r.status = std::stoi(r.head.substr(9, 3));
  buf->erase(0, n);
  return r;
}

/// Runs an httplib server on an ephemeral loopback port in its own thread.
class TestServer {
 public:
  TestServer() = default;
  void Start() {
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::yield();
  }
  ~TestServer() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  httplib::Server& server() { return server_; }
  int port() const { return port_; }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
};

/// A port with nothing listening on it (bound, then closed).
inline int ClosedPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace kpiscale::sidecar::testing
