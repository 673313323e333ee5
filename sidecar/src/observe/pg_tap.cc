#include "kpiscale/sidecar/observe/pg_tap.h"

#include <prometheus/counter.h>
#include <prometheus/histogram.h>

#include <algorithm>

namespace kpiscale::sidecar::observe {

PgTap::PgTap(SignalSink& sink, const DbStats& stats) : sink_(sink), stats_(stats) {}

Intercept PgTap::InterceptClient(const char* data, std::size_t len) {
  Intercept result;
  if (len < 8) {
    result.action = Intercept::Action::kNeedMore;
    return result;
  }
  const auto* bytes = reinterpret_cast<const unsigned char*>(data);
  const uint32_t length = ReadBe32(bytes);
  const uint32_t code = ReadBe32(bytes + 4);
  if (length == 8 && (code == kPgSslRequest || code == kPgGssEncRequest)) {
    // Decline: the client continues in plain text on the loopback hop (or gives up if it
    // insists on sslmode=require, which is the documented limitation).
    stats_.ssl_declined.Increment();
    result.action = Intercept::Action::kAnswer;
    result.consumed = 8;
    result.answer = "N";
    return result;
  }
  intercepting_ = false;
  result.action = Intercept::Action::kForward;
  return result;
}

void PgTap::StopTracking(prometheus::Counter& reason) {
  if (!tracking_) return;
  tracking_ = false;
  reason.Increment();
  pending_.clear();
  events_.clear();
}

void PgTap::Record(double seconds, bool error) {
  sink_.RecordDbQuery(seconds, error);
  stats_.queries.Increment();
  if (error) stats_.errors.Increment();
  stats_.duration.Observe(seconds);
}

void PgTap::OnClientBytes(const char* data, std::size_t len, SteadyTime now) {
  if (!tracking_) return;
  events_.clear();
  const bool ok = frontend_.Feed(data, len, &events_);
  for (const PgEvent& ev : events_) {
    if (ev.complete) continue;
    if (ev.kind == PgEvent::Kind::kCancelRequest) {
      stats_.cancel_requests.Increment();
      continue;
    }
    if (ev.kind != PgEvent::Kind::kMessage) continue;
    switch (ev.type) {
      case 'Q':  // Query
      case 'F':  // FunctionCall
        // A simple Query also ends an extended batch that never sent Sync: one ReadyForQuery
        // answers both, so they are one query from the batch's first message.
        if (batch_open_) {
          pending_.push_back(Pending{batch_start_, true, batch_error_});
          batch_open_ = false;
        } else {
          pending_.push_back(Pending{now, true, false});
        }
        break;
      case 'P':  // Parse
      case 'B':  // Bind
      case 'D':  // Describe
      case 'E':  // Execute
      case 'C':  // Close
      case 'H':  // Flush
        if (!batch_open_) {
          batch_open_ = true;
          batch_error_ = false;
          batch_start_ = now;
        }
        break;
      case 'S':  // Sync
        pending_.push_back(
            Pending{batch_open_ ? batch_start_ : now, batch_open_, batch_open_ && batch_error_});
        batch_open_ = false;
        break;
      default:
        break;
    }
  }
  if (!ok) {
    StopTracking(stats_.untracked_parse_error);
  } else if (pending_.size() > kMaxPending) {
    StopTracking(stats_.untracked_overflow);
  }
}

void PgTap::OnServerBytes(const char* data, std::size_t len, SteadyTime now) {
  if (!tracking_) return;
  events_.clear();
  const bool ok = backend_.Feed(data, len, &events_);
  for (const PgEvent& ev : events_) {
    if (!tracking_) break;
    if (!ev.complete || ev.kind != PgEvent::Kind::kMessage) continue;
    if (ev.type == 'E') {  // ErrorResponse
      if (!authenticated_) continue;
      if (!pending_.empty()) {
        pending_.front().error = true;
      } else if (batch_open_) {
        batch_error_ = true;
      }
    } else if (ev.type == 'Z') {  // ReadyForQuery
      if (!authenticated_) {
        authenticated_ = true;
        continue;
      }
      if (pending_.empty()) {
        StopTracking(stats_.untracked_unmatched_reply);
        break;
      }
      const Pending p = pending_.front();
      pending_.pop_front();
      if (p.counted) Record(ElapsedSeconds(p.start, now), p.error);
    }
  }
  if (!ok) StopTracking(stats_.untracked_parse_error);
}

void PgTap::OnClose(CloseReason reason, SteadyTime now) {
  if (!tracking_) return;
  if (reason == CloseReason::kUpstreamClosed || reason == CloseReason::kUpstreamConnectFailed) {
    for (const Pending& p : pending_) {
      if (p.counted) Record(ElapsedSeconds(p.start, now), true);
    }
  }
  pending_.clear();
}

std::string PgTap::UpstreamFailureAnswer(const std::string& error) {
  // SQLSTATE 08006 connection_failure: libpq shows it as the connection attempt's error, the
  // closest the application can get to what a direct connection would have reported.
  return PgErrorResponse("08006", "kpiscale-sidecar: cannot reach the PostgreSQL server: " + error);
}

}  // namespace kpiscale::sidecar::observe
