#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "kpiscale/sidecar/observe/connection_tap.h"
#include "kpiscale/sidecar/observe/observe_stats.h"
#include "kpiscale/sidecar/observe/resp_request_parser.h"
#include "kpiscale/sidecar/signal_sink.h"

struct redisReader;

namespace kpiscale::sidecar::observe {

/// How a command's reply is counted (see docs/data-observers.md).
enum class RespKind : uint8_t {
  kOther,        // any command not in the read table: counted, timed, never a hit or miss
  kSingleRead,   // GET GETEX GETDEL HGET: bulk string = hit, nil = miss
  kMultiRead,    // MGET HMGET: per array element
  kHashRead,     // HGETALL: non-empty array = hit, empty = miss
  kExists,       // EXISTS k1..kn: integer reply = hits, (n - reply) = misses
  kMulti,        // MULTI
  kExec,         // EXEC: one command; hits/misses from its array, per queued read command
  kDiscard,      // DISCARD
  kBlocking,     // BLPOP & co, XREAD BLOCK, WAIT: timed apart, never a cache lookup
  kStopPubSub,   // (P|S)SUBSCRIBE: the connection leaves request/reply mode
  kStopMonitor,  // MONITOR
  kStopNoReply,  // CLIENT REPLY OFF|SKIP: replies no longer match commands
  kStopResp3,    // HELLO 3: RESP3 replies, which hiredis 0.14 cannot read
};

/// Classifies a parsed command.
RespKind ClassifyRespCommand(const RespCommand& command);

/// Counts one Redis connection: parses the client's commands and, with hiredis' reply reader,
/// the server's replies, matches them in order (pipelining included) and records each command
/// into the SignalSink and the cache metrics. A parse failure or anything it cannot follow
/// stops the counting of this connection (counted by reason); the relay keeps relaying.
/// Thread-safety: none (one connection, one I/O thread); `sink` and `stats` must outlive it.
class RespTap final : public ConnectionTap {
 public:
  /// Commands awaiting their replies before the tap gives up on a connection.
  static constexpr std::size_t kMaxPending = 100'000;
  /// Reply bytes buffered while waiting for a reply to complete (huge values).
  static constexpr std::size_t kMaxReplyBuffer = 16 * 1024 * 1024;

  RespTap(SignalSink& sink, const CacheStats& stats);
  ~RespTap() override;
  RespTap(const RespTap&) = delete;
  RespTap& operator=(const RespTap&) = delete;

  void OnClientBytes(const char* data, std::size_t len, SteadyTime now) override;
  void OnServerBytes(const char* data, std::size_t len, SteadyTime now) override;
  void OnClose(CloseReason reason, SteadyTime now) override;

  bool tracking() const { return tracking_; }

 private:
  struct Pending {
    RespKind kind;
    uint32_t keys;  // argc - 1, for EXISTS and per-element reads
    SteadyTime start;
  };
  struct ReaderDeleter {
    void operator()(redisReader* r) const;
  };

  void StopTracking(prometheus::Counter& reason);
  void StopFor(RespKind kind);
  void OnReply(const void* reply, SteadyTime now);
  void Record(double seconds, const CacheCommandResult& result);

  SignalSink& sink_;
  const CacheStats& stats_;
  RespRequestParser parser_;
  std::unique_ptr<redisReader, ReaderDeleter> reader_;
  std::deque<Pending> pending_;
  std::vector<RespCommand> scratch_;
  SteadyTime partial_start_{};
  bool tracking_ = true;
  bool in_transaction_ = false;
  std::vector<Pending> queued_;  // commands queued inside MULTI, in order
};

}  // namespace kpiscale::sidecar::observe
