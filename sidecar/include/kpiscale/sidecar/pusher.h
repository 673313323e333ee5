#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "kpiscale/sidecar/stats.h"
#include "proto/report.pb.h"

namespace httplib {
class ClientImpl;
}

namespace kpiscale::sidecar {

/// Where and how windows are pushed.
struct PusherOptions {
  /// https://host:port[/prefix] (or http:// for tests and local use); POST <prefix>/v1/reports.
  std::string adapter_url;
  std::string ca_file;                    // trust these CAs instead of the system store
  bool insecure_skip_tls_verify = false;  // local use only
  std::string token_file;                 // bearer token, re-read before every push (rotation)
  std::size_t max_pending_windows = 300;
  std::size_t max_windows_per_batch = 120;
  std::chrono::milliseconds initial_backoff{250};
  std::chrono::milliseconds max_backoff{10'000};
  std::chrono::milliseconds timeout{3'000};
};

/// Sends closed windows to the adapter as kpiscale.v1.ReportBatch on its own thread. Enqueue()
/// never waits for the network: beyond max_pending_windows the oldest window is dropped (and
/// counted). A failed batch is kept and retried with exponential backoff and jitter, with the
/// same sequence numbers, so the adapter stores each window once. 2xx = stored; 4xx other than
/// 408/429 = refused, dropped and counted; everything else = retry.
/// Thread-safety: Enqueue() from any thread; Start/Stop from the owner.
class Pusher {
 public:
  static absl::StatusOr<std::unique_ptr<Pusher>> Create(PusherOptions options,
                                                        kpiscale::v1::PodIdentity pod,
                                                        SidecarStats* stats);
  ~Pusher();
  Pusher(const Pusher&) = delete;
  Pusher& operator=(const Pusher&) = delete;

  void Start();
  void Enqueue(kpiscale::v1::Window window);
  /// Keeps pushing what is pending until everything is sent or `flush_deadline` has passed,
  /// then stops the thread.
  void Stop(std::chrono::milliseconds flush_deadline);
  std::size_t pending() const;

 private:
  Pusher(PusherOptions options, kpiscale::v1::PodIdentity pod, SidecarStats* stats);
  void Run();
  /// Sends one batch; returns the HTTP status, or -1 for a transport error.
  int Send(const std::string& body, std::string* error);

  const PusherOptions options_;
  const kpiscale::v1::PodIdentity pod_;
  SidecarStats* const stats_;
  bool https_ = false;
  std::string host_;
  int port_ = 0;
  std::string path_;
  std::unique_ptr<httplib::ClientImpl> client_;  // pusher thread only; kept alive between pushes

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<kpiscale::v1::Window> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t highest_attempted_ ABSL_GUARDED_BY(mu_) = 0;  // for counting retries
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::chrono::steady_clock::time_point flush_deadline_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace kpiscale::sidecar
