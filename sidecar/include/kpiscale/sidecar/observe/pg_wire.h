#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace kpiscale::sidecar::observe {

/// Request codes of the untyped messages that open a PostgreSQL connection.
inline constexpr uint32_t kPgProtocol3 = 196608;  // 3.0; any 3.x minor is accepted
inline constexpr uint32_t kPgSslRequest = 80877103;
inline constexpr uint32_t kPgGssEncRequest = 80877104;
inline constexpr uint32_t kPgCancelRequest = 80877102;

/// One message boundary seen by PgFramer.
struct PgEvent {
  enum class Kind : uint8_t {
    kStartup,     // StartupMessage (untyped)
    kSslRequest,  // SSLRequest (untyped)
    kGssEncRequest,
    kCancelRequest,
    kMessage,  // a typed message; `type` is its first byte
  };
  Kind kind = Kind::kMessage;
  char type = 0;
  /// false: the header has just been read (the message starts); true: its last byte was read.
  /// A typed message yields both events (at once when the body is empty).
  bool complete = false;
  uint32_t length = 0;  // the length field (includes itself, not the type byte)
};

/// Incremental framing of one direction of the PostgreSQL v3 wire protocol: 1-byte type plus
/// int32 length, except for the untyped startup-phase messages a client may send first
/// (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest). Bodies are skipped, never
/// buffered. After an SSLRequest/GSSENCRequest the client still is in the startup phase;
/// after a CancelRequest nothing more may follow.
/// Thread-safety: none.
class PgFramer {
 public:
  static constexpr uint32_t kMaxStartupLength = 10000;       // postgres: MAX_STARTUP_PACKET_LENGTH
  static constexpr uint32_t kMaxMessageLength = 0x40000000;  // 1 GiB, postgres' MaxAllocSize

  /// `frontend`: the client→server direction (starts in the startup phase).
  explicit PgFramer(bool frontend) : startup_phase_(frontend) {}

  /// Consumes bytes, appending message boundaries to `out`. Returns false on a framing error;
  /// the framer then stays failed.
  bool Feed(const char* data, std::size_t len, std::vector<PgEvent>* out);

  bool failed() const { return failed_; }
  bool in_startup_phase() const { return startup_phase_; }
  /// True when the bytes fed so far end inside a message.
  bool mid_message() const { return header_have_ > 0 || body_left_ > 0; }
  const std::string& error() const { return error_; }

 private:
  bool Fail(const char* why);

  bool startup_phase_;
  bool cancelled_ = false;
  bool failed_ = false;
  unsigned char header_[8] = {};
  std::size_t header_have_ = 0;
  uint32_t body_left_ = 0;
  PgEvent current_;
  std::string error_;
};

/// The big-endian 32-bit integer at p (lengths and codes in the PostgreSQL wire protocol).
inline uint32_t ReadBe32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

/// Builds an ErrorResponse ('E') message with severity FATAL, the SQLSTATE and the message.
std::string PgErrorResponse(const std::string& sqlstate, const std::string& message);

}  // namespace kpiscale::sidecar::observe
