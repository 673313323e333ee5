#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "kpiscale/sidecar/observe/connection_tap.h"
#include "kpiscale/sidecar/observe/observe_stats.h"
#include "kpiscale/sidecar/observe/pg_wire.h"
#include "kpiscale/sidecar/signal_sink.h"

namespace kpiscale::sidecar::observe {

/// Counts one PostgreSQL connection. Simple protocol: a query runs from `Query` (or
/// `FunctionCall`) to its `ReadyForQuery`. Extended protocol: from the first
/// Parse/Bind/Describe/Execute/Close/Flush of a batch to the `ReadyForQuery` answering its
/// `Sync`, matched in order (pipelined Syncs included); a bare Sync is not a query. A query is an
/// error when an `ErrorResponse` arrived before its ReadyForQuery. The ReadyForQuery that ends
/// authentication is not a query. SSLRequest and GSSENCRequest are declined with 'N' on the local
/// hop (InterceptClient), so the client goes on in plain text over loopback.
/// Thread-safety: none (one connection, one I/O thread); `sink`/`stats` must outlive it.
class PgTap final : public ConnectionTap {
 public:
  static constexpr std::size_t kMaxPending = 100'000;

  PgTap(SignalSink& sink, const DbStats& stats);

  bool WantsIntercept() const override { return intercepting_; }
  Intercept InterceptClient(const char* data, std::size_t len) override;
  void OnClientBytes(const char* data, std::size_t len, SteadyTime now) override;
  void OnServerBytes(const char* data, std::size_t len, SteadyTime now) override;
  void OnClose(CloseReason reason, SteadyTime now) override;
  std::string UpstreamFailureAnswer(const std::string& error) override;

  bool tracking() const { return tracking_; }

 private:
  struct Pending {
    SteadyTime start;
    bool counted;  // false for a bare Sync
    bool error;
  };

  void StopTracking(prometheus::Counter& reason);
  void Record(double seconds, bool error);

  SignalSink& sink_;
  const DbStats& stats_;
  PgFramer frontend_{true};
  PgFramer backend_{false};
  std::vector<PgEvent> events_;
  std::deque<Pending> pending_;
  bool intercepting_ = true;
  bool tracking_ = true;
  bool authenticated_ = false;  // the first ReadyForQuery (end of startup) was seen
  bool batch_open_ = false;
  bool batch_error_ = false;
  SteadyTime batch_start_{};
};

}  // namespace kpiscale::sidecar::observe
