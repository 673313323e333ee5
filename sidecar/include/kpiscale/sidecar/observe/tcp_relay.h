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
  static constexpr int kMaxThreads = 64;
  std::size_t buffer_bytes = 64 * 1024;  // per direction per connection (the backpressure bound)
  std::size_t max_connections = 1024;    // across listeners and threads; beyond it, accepted
                                         // and closed
  std::chrono::milliseconds connect_timeout{5000};
  /// Event loops, each on its own thread with its own SO_REUSEPORT listening socket per
  /// listener; a connection stays on the loop that accepted it. 1 (the default) suits a
  /// sidecar under a CPU limit; more only help when the relay itself saturates a core.
  int threads = 1;
  /// Reads every socket epoll reported before writing anything (one batch of sends per
  /// wake-up). Off: each read is forwarded at once (the previous behaviour; kept to measure).
  bool defer_writes = true;
  /// After a wake-up with events, polls once more without blocking before sleeping.
  bool poll_before_sleep = false;
};

/// A small epoll TCP relay: one I/O thread (or RelayOptions::threads) for every listener,
/// non-blocking sockets, one
/// bounded buffer per direction (a full buffer stops reading from that side: backpressure),
/// half-close passed through. Every byte is forwarded unchanged and shown to the connection's
/// tap on the way; taps can answer the first client bytes locally (ConnectionTap::Intercept).
/// Thread-safety: AddListener() before Start(); Start() and Stop() from one controlling thread.
/// Each tap runs on the I/O thread of its connection; with several threads, taps of different
/// connections run concurrently (their factory, stats and sink must be thread-safe).
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
  /// Event loops (RelayOptions::threads).
  int threads() const;
  /// Connections accepted by each event loop since Start() (how SO_REUSEPORT spread them).
  std::vector<uint64_t> accepted_per_thread() const;

  struct Impl;

 private:
  explicit TcpRelay(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  bool started_ = false;
};

}  // namespace kpiscale::sidecar::observe
