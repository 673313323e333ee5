#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "kpiscale/sidecar/routes.h"
#include "kpiscale/sidecar/window_builder.h"

namespace kpiscale::sidecar {

/// Settings of the HTTP/1.1 reverse proxy (`--listen` → `--upstream`).
struct ProxyOptions {
  std::string listen = "0.0.0.0:8080";  // host:port; port 0 picks a free one
  std::string upstream = "127.0.0.1:8000";
  int workers = 1;                           // event-loop threads (SO_REUSEPORT listeners)
  std::size_t max_header_bytes = 16 * 1024;  // larger request heads get 431
  std::size_t max_connections = 4096;        // per worker; beyond it new clients are refused
  std::size_t max_idle_upstream = 64;        // keep-alive pool size per worker
  std::size_t buffer_bytes = 64 * 1024;      // per direction before reading pauses (backpressure)
  /// A request head must arrive within this time of its first byte (slowloris), else 408.
  std::chrono::milliseconds client_header_timeout{10'000};
  /// Idle keep-alive connections, and clients that stop sending a body or reading a response.
  std::chrono::milliseconds client_idle_timeout{60'000};
  std::chrono::milliseconds upstream_connect_timeout{2'000};
  /// No response head (or no response bytes for this long during a body): 504 / close.
  std::chrono::milliseconds upstream_timeout{60'000};
  std::chrono::milliseconds upstream_idle_timeout{30'000};  // pooled connections
};

class Worker;

/// The transparent HTTP/1.1 reverse proxy: `workers` epoll loops, each with its own listener
/// (SO_REUSEPORT), connections and upstream keep-alive pool; no thread per connection. Every
/// request is recorded in the worker's HttpSlot of the WindowBuilder. Requests on one client
/// connection are forwarded one after another (pipelined requests wait in the buffer), which
/// answers them in order.
/// Thread-safety: Start/Shutdown/port from one controlling thread.
class Proxy {
 public:
  /// Binds the listeners and resolves the upstream; does not start the threads yet.
  static absl::StatusOr<std::unique_ptr<Proxy>> Create(const ProxyOptions& options,
                                                       WindowBuilder& builder,
                                                       const RouteTable& routes);
  ~Proxy();
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  uint16_t port() const { return port_; }
  void Start();
  /// Stops accepting, lets in-flight requests finish (then closes their connections), and
  /// returns when every connection is closed or `grace` has passed.
  void Shutdown(std::chrono::milliseconds grace);

 private:
  Proxy() = default;
  uint16_t port_ = 0;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable done_;
  int running_ = 0;
};

}  // namespace kpiscale::sidecar
