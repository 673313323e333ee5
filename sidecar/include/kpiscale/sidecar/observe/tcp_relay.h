#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kpiscale/sidecar/observe/connection_tap.h"
#include "kpiscale/sidecar/observe/observe_stats.h"

namespace kpiscale::sidecar::observe {

/// Parses "host:port" or "[v6]:port" (port 0 allowed for listen addresses).
absl::Status SplitHostPort(const std::string& address, std::string* host, uint16_t* port);

/// One listening port of the relay and where its connections go.
struct RelayListenerConfig {
  std::string name;      // for logs ("redis", "postgres")
  std::string listen;    // host:port; port 0 picks a free one
  std::string upstream;  // host:port, resolved once when the listener is added
  std::function<std::unique_ptr<ConnectionTap>()> new_tap;
  RelayStats* stats = nullptr;  // not owned; must outlive the relay
};

struct RelayOptions {
  std::size_t buffer_bytes = 64 * 1024;  // per direction per connection (the backpressure bound)
  std::size_t max_connections = 1024;    // across listeners; beyond it, accepted and closed
  std::chrono::milliseconds connect_timeout{5000};
};

/// A small epoll TCP relay: one I/O thread for every listener, non-blocking sockets, one
/// bounded buffer per direction (a full buffer stops reading from that side: backpressure),
/// half-close passed through. Every byte is forwarded unchanged and shown to the connection's
/// tap on the way; taps can answer the first client bytes locally (ConnectionTap::Intercept).
/// Thread-safety: AddListener() before Start(); Start() and Stop() from one controlling thread.
/// Taps run on the I/O thread.
class TcpRelay {
 public:
  static absl::StatusOr<std::unique_ptr<TcpRelay>> Create(const RelayOptions& options);
  ~TcpRelay();
  TcpRelay(const TcpRelay&) = delete;
  TcpRelay& operator=(const TcpRelay&) = delete;

  /// Binds the listener; returns the bound port.
  absl::StatusOr<uint16_t> AddListener(const RelayListenerConfig& config);
  absl::Status Start();
  /// Closes listeners and connections (taps get kShutdown) and joins the I/O thread. Idempotent.
  void Stop();

  /// Connections currently relayed (for tests and metrics).
  std::size_t active_connections() const;

  struct Impl;

 private:
  explicit TcpRelay(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
  bool started_ = false;
};

}  // namespace kpiscale::sidecar::observe
