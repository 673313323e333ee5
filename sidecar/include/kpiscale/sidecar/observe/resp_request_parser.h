#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace kpiscale::sidecar::observe {

/// One complete client command as it crossed the wire. Only the command name and the first few
/// arguments are kept (truncated), which is all the classification needs.
struct RespCommand {
  static constexpr std::size_t kMaxNameBytes = 32;
  static constexpr std::size_t kCapturedArgs = 4;
  // 15: a captured argument fits std::string's inline buffer (no allocation per command); the
  // longest argument the classification looks at is "REPLY"/"BLOCK".
  static constexpr std::size_t kMaxArgBytes = 15;

  std::string name;                               // upper-cased, at most kMaxNameBytes
  std::array<std::string, kCapturedArgs> args{};  // arguments 1..4, upper-cased, truncated
  uint64_t argc = 0;                              // including the name
  bool inline_command = false;                    // sent as an inline (telnet-style) line
};

/// Incremental parser of the client→server half of RESP2: multibulk commands
/// (`*N\r\n$len\r\n...`) and inline commands (a text line). Bulk payloads are skipped, not
/// buffered, so memory stays bounded whatever the value sizes. Mirrors redis-server: `*0` or a
/// negative count and empty inline lines are no command (and get no reply).
/// Thread-safety: none (one connection, one thread).
class RespRequestParser {
 public:
  struct Limits {
    int64_t max_multibulk = 0x7fffffff;      // redis: INT_MAX
    int64_t max_bulk = 512LL * 1024 * 1024;  // redis: proto-max-bulk-len default
    std::size_t max_inline = 64 * 1024;      // redis: PROTO_INLINE_MAX_SIZE
  };

  RespRequestParser() = default;
  explicit RespRequestParser(const Limits& limits) : limits_(limits) {}

  /// Consumes `len` bytes, appending each command completed by them to `out`. Returns false on
  /// a protocol error; the parser then stays failed and ignores further input.
  bool Feed(const char* data, std::size_t len, std::vector<RespCommand>* out);

  /// True when some bytes of a not yet complete command have been consumed.
  bool mid_command() const { return state_ != State::kIdle; }
  bool failed() const { return state_ == State::kFailed; }
  const std::string& error() const { return error_; }

 private:
  enum class State { kIdle, kInline, kCount, kBulkHeader, kBulkBody, kFailed };

  bool Fail(const char* why);
  void Emit(std::vector<RespCommand>* out);
  bool FinishInline(std::vector<RespCommand>* out);
  void Capture(const char* data, std::size_t len);

  Limits limits_;
  State state_ = State::kIdle;
  std::string line_;
  RespCommand current_;
  int64_t args_left_ = 0;
  uint64_t arg_index_ = 0;
  int64_t bulk_left_ = 0;  // payload bytes plus the trailing CRLF
  std::string error_;
};

}  // namespace kpiscale::sidecar::observe
