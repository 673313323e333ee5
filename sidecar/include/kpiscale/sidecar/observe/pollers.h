#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "kpiscale/sidecar/observe/observe_stats.h"
#include "kpiscale/sidecar/signal_sink.h"

namespace kpiscale::sidecar::observe {

/// keyspace_hits and keyspace_misses from an `INFO stats` answer.
struct KeyspaceCounters {
  uint64_t hits = 0;
  uint64_t misses = 0;
};

/// Parses the `key:value` lines of INFO output. Fails when either counter is missing.
absl::StatusOr<KeyspaceCounters> ParseInfoStats(const std::string& text);

/// Turns successive server-wide counters into deltas. The first sample only sets the baseline;
/// a counter that went down means CONFIG RESETSTAT or a restart, so the new value is the delta.
/// Thread-safety: none.
class KeyspaceDeltas {
 public:
  std::optional<KeyspaceCounters> Update(const KeyspaceCounters& now);

 private:
  std::optional<KeyspaceCounters> previous_;
};

/// One pg_stat_statements row.
struct StatementSample {
  int64_t queryid = 0;
  int64_t calls = 0;
  double total_ms = 0;
};

/// One statement's figures over a poll interval.
struct StatementDelta {
  int64_t queryid = 0;
  int64_t calls = 0;
  double mean_seconds = 0;
  double total_seconds = 0;
};

/// Mean execution time per statement between two polls (Δtotal / Δcalls), top N by Δtotal.
/// Statements new since the previous poll, idle ones and ones whose counters went down (reset or
/// evicted) are left out of that interval.
/// Thread-safety: none.
class StatementDeltas {
 public:
  explicit StatementDeltas(std::size_t top_n) : top_n_(top_n) {}
  std::vector<StatementDelta> Update(const std::vector<StatementSample>& samples);

 private:
  std::size_t top_n_;
  std::map<int64_t, StatementSample> previous_;
};

/// Background poller of one thing on an interval; Stop() wakes and joins it.
/// Thread-safety: Stop() from any one thread.
class Poller {
 public:
  virtual ~Poller();
  void Stop();

 protected:
  explicit Poller(std::chrono::milliseconds interval) : interval_(interval) {}
  void StartThread();
  virtual void PollOnce() = 0;

 private:
  void Loop();
  std::chrono::milliseconds interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

/// Polls `INFO stats` of a Redis server (redis://[:password@]host[:port]) and records the
/// server-wide keyspace deltas (SignalSink::RecordCacheServerWide and metrics).
absl::StatusOr<std::unique_ptr<Poller>> StartRedisInfoPoller(const std::string& url,
                                                             std::chrono::milliseconds interval,
                                                             SignalSink& sink,
                                                             const CacheStats& stats);

/// Polls PostgreSQL through libpqxx: a SELECT 1 probe each interval, and pg_stat_statements
/// (when the extension exists; column names by server version) into top-N statement gauges.
absl::StatusOr<std::unique_ptr<Poller>> StartPgPoller(const std::string& dsn,
                                                      std::chrono::milliseconds interval,
                                                      std::size_t top_n, const DbStats& stats);

}  // namespace kpiscale::sidecar::observe
