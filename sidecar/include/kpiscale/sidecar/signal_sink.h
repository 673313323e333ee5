#pragma once

#include <cstdint>

namespace kpiscale::sidecar {

/// How one cache read command ended, for the cache-hit ratio.
struct CacheCommandResult {
  /// Keys found / not found by a read command (GET: one of them is 1; MGET: per element).
  uint32_t hits = 0;
  uint32_t misses = 0;
  /// The server answered with an error reply, or the connection failed mid-command.
  bool error = false;
};

/// Where the Redis and PostgreSQL observers put what they measure. The window builder implements
/// it: each call lands in the window that is open at the time of the call.
/// Thread-safety: implementations accept calls from any thread, and never block for long (the
/// observers call it on their I/O threads).
class SignalSink {
 public:
  virtual ~SignalSink() = default;
  /// One cache command, from the first request byte to the last reply byte.
  virtual void RecordCacheCommand(double seconds, const CacheCommandResult& result) = 0;
  /// Server-wide keyspace hits and misses since the previous poll (INFO mode), not timed.
  virtual void RecordCacheServerWide(uint64_t hits, uint64_t misses) = 0;
  /// One database query (simple protocol: Query to ReadyForQuery; extended: first message of the
  /// batch to the ReadyForQuery answering its Sync).
  virtual void RecordDbQuery(double seconds, bool error) = 0;
};

}  // namespace kpiscale::sidecar
