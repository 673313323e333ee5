#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace kpiscale::sidecar::observe {

using SteadyTime = std::chrono::steady_clock::time_point;

/// Seconds from `from` to `to`, never negative (a latency sample).
inline double ElapsedSeconds(SteadyTime from, SteadyTime to) {
  const double s = std::chrono::duration<double>(to - from).count();
  return s > 0 ? s : 0.0;
}

/// Why a relayed connection ended, as far as the relay can tell.
enum class CloseReason {
  kClientClosed,           // the application closed (or reset) first
  kUpstreamClosed,         // the server closed or reset while the application was still there
  kUpstreamConnectFailed,  // the server could not be reached at all
  kShutdown,               // the relay is stopping
};

/// What a tap wants done with the first, not yet forwarded, client bytes.
struct Intercept {
  enum class Action {
    kForward,   // forward everything from here on; stop intercepting
    kNeedMore,  // hold the bytes, call again when more arrive
    kAnswer,    // drop `consumed` bytes and send `answer` to the client; keep intercepting
  };
  Action action = Action::kForward;
  std::size_t consumed = 0;
  std::string answer;
};

/// Sees both directions of one relayed connection; the relay forwards the bytes unchanged
/// whatever the tap does with them (fail open). All calls come from the relay's I/O thread, in
/// stream order, with the time the bytes were read.
/// Thread-safety: none needed (one thread per connection).
class ConnectionTap {
 public:
  virtual ~ConnectionTap() = default;

  /// While true, new client bytes are offered to InterceptClient() before anything is forwarded
  /// (PostgreSQL uses this to decline an SSLRequest on the local hop).
  virtual bool WantsIntercept() const { return false; }
  virtual Intercept InterceptClient(const char* /*data*/, std::size_t /*len*/) { return {}; }

  /// Bytes from the application to the server (after any interception).
  virtual void OnClientBytes(const char* data, std::size_t len, SteadyTime now) = 0;
  /// Bytes from the server to the application.
  virtual void OnServerBytes(const char* data, std::size_t len, SteadyTime now) = 0;
  /// Called once, when the connection ends.
  virtual void OnClose(CloseReason reason, SteadyTime now) = 0;

  /// Bytes sent to the application before closing when the server cannot be reached (after
  /// interception ended). Empty: just close.
  virtual std::string UpstreamFailureAnswer(const std::string& /*error*/) { return {}; }
};

}  // namespace kpiscale::sidecar::observe
