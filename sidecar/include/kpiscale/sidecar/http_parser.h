#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kpiscale::sidecar::http {

/// How a message body ends.
enum class BodyKind {
  kNone,        // no body (GET without length, HEAD responses, 1xx/204/304)
  kLength,      // Content-Length bytes
  kChunked,     // Transfer-Encoding: chunked, up to and including the last chunk and trailers
  kUntilClose,  // responses only: the body ends when the upstream closes
};

/// One header line; the views point into the buffer the head was parsed from.
/// What the proxy does with a header, decided once by name while the head is parsed, so that
/// writing the forwarded head compares no names again.
enum class HeaderRole : uint8_t {
  kEndToEnd,       // forwarded unless the Connection header names it
  kHopByHop,       // Connection, Keep-Alive, Proxy-Connection, TE, Proxy-Authorization
  kUpgrade,        // hop-by-hop, but kept on an upgrade
  kFraming,        // Content-Length, Transfer-Encoding, Host: never dropped via Connection
  kXForwardedFor,  // merged into the X-Forwarded-For the proxy writes
};

struct Header {
  std::string_view name;
  std::string_view value;
  HeaderRole role = HeaderRole::kEndToEnd;
};

/// What a request or response head says, as far as a proxy needs to know.
struct Head {
  bool is_request = true;
  // Request line.
  std::string_view method;
  std::string_view target;
  // Status line.
  int status = 0;
  std::string_view reason;
  int version_minor = 1;  // HTTP/1.<minor>
  std::vector<Header> headers;
  std::size_t head_bytes = 0;  // bytes up to and including the empty line

  BodyKind body = BodyKind::kNone;
  uint64_t content_length = 0;
  bool keep_alive = true;        // after this message, per version and Connection
  bool expect_continue = false;  // request: Expect: 100-continue
  bool upgrade = false;          // Connection: upgrade together with an Upgrade header
  // Connection headers whose lists name something besides keep-alive and upgrade (the names
  // they list are hop-by-hop too); usually 0, and only then are the lists read again.
  int connection_other_names = 0;

  /// Forgets the previous message but keeps the headers' capacity (no allocation per message).
  void Clear();
};

/// Outcome of a head parse.
enum class ParseStatus {
  kIncomplete,  // need more bytes
  kDone,        // head parsed into `Head`
  kTooLarge,    // no complete head within the size limit (431 for requests)
  kInvalid,     // malformed (400 for requests, 502 for responses)
};

/// Finds the end of a head incrementally (so a client sending one byte at a time costs O(n), not
/// O(n^2)) and parses it once it is complete. Strict on framing: lines end in CRLF, no obs-fold,
/// no whitespace before the colon, one Content-Length, never both Content-Length and
/// Transfer-Encoding in a request; this keeps the proxy and the upstream from ever disagreeing
/// on where a message ends (request smuggling).
/// Thread-safety: none; one per connection direction.
class HeadParser {
 public:
  explicit HeadParser(std::size_t max_head_bytes) : max_head_bytes_(max_head_bytes) {}

  /// Parses a request head at the start of `buffer`. Call again with the grown buffer on
  /// kIncomplete. The Head's views point into `buffer`.
  ParseStatus ParseRequest(std::string_view buffer, Head* out);
  /// Parses a response head. `request_method_head` / `request_upgrade` decide the body framing.
  ParseStatus ParseResponse(std::string_view buffer, bool request_method_head, Head* out);

  /// Forgets the scan position (for the next message on the connection).
  void Reset() { scanned_ = 0; }
  /// Why the last parse returned kInvalid.
  const std::string& error() const { return error_; }

 private:
  ParseStatus FindEnd(std::string_view buffer, std::size_t* end);

  std::size_t max_head_bytes_;
  std::size_t scanned_ = 0;
  std::string error_;
};

/// Tracks where a body ends as its bytes stream through, without buffering it. The bytes are
/// forwarded unchanged (chunked framing included).
/// Thread-safety: none.
class BodyFramer {
 public:
  void Reset(BodyKind kind, uint64_t content_length);
  /// Consumes body bytes from the front of `data`; returns how many belong to this body (the
  /// rest is the next message). After done(), returns 0.
  std::size_t Consume(const char* data, std::size_t len);
  bool done() const { return state_ == State::kDone; }
  bool error() const { return state_ == State::kError; }
  BodyKind kind() const { return kind_; }
  /// Body bytes still expected for kLength.
  uint64_t remaining() const { return remaining_; }

 private:
  enum class State {
    kDone,
    kError,
    kLength,
    kUntilClose,
    kChunkSize,
    kChunkExt,
    kChunkSizeLf,
    kChunkData,
    kChunkDataCr,
    kChunkDataLf,
    kTrailerStart,
    kTrailerLine,
    kTrailerLf,
    kFinalLf,
  };
  BodyKind kind_ = BodyKind::kNone;
  State state_ = State::kDone;
  uint64_t remaining_ = 0;
  int size_digits_ = 0;
  std::size_t line_bytes_ = 0;
};

/// Case-insensitive ASCII comparison of header names and tokens.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

/// The first header named `name`, or an empty view.
std::string_view FindHeader(const Head& head, std::string_view name);

/// Writes the head to forward to the upstream: request line, end-to-end headers (hop-by-hop
/// headers and those named in Connection removed), `X-Forwarded-For` with `client_ip` appended,
/// and for upgrades `Connection: upgrade` with the Upgrade header kept.
void WriteUpstreamRequestHead(const Head& head, std::string_view client_ip, std::string* out);

/// Writes the head to send to the client: status line, end-to-end headers, `Connection: close`
/// when `close` (or `keep-alive` for an HTTP/1.0 client kept open), and for 101 the upgrade
/// headers.
void WriteClientResponseHead(const Head& head, bool close, int client_version_minor,
                             std::string* out);

/// A complete response the proxy itself produces (431, 400, 502, 504), with Connection: close.
std::string SimpleResponse(int status, std::string_view reason, std::string_view body);

}  // namespace kpiscale::sidecar::http
