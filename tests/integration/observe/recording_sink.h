#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "kpiscale/sidecar/signal_sink.h"

namespace kpiscale::testing {

/// A SignalSink that remembers every call (the observers' tests assert on it).
/// Thread-safety: all methods may be called concurrently.
class RecordingSink final : public sidecar::SignalSink {
 public:
  struct Cache {
    double seconds;
    sidecar::CacheCommandResult result;
  };
  struct Db {
    double seconds;
    bool error;
  };
  struct ServerWide {
    uint64_t hits;
    uint64_t misses;
  };

  void RecordCacheCommand(double seconds, const sidecar::CacheCommandResult& result) override {
    std::lock_guard<std::mutex> lock(mu_);
    cache_.push_back(Cache{seconds, result});
  }
  void RecordCacheServerWide(uint64_t hits, uint64_t misses) override {
    std::lock_guard<std::mutex> lock(mu_);
    server_wide_.push_back(ServerWide{hits, misses});
  }
  void RecordDbQuery(double seconds, bool error) override {
    std::lock_guard<std::mutex> lock(mu_);
    db_.push_back(Db{seconds, error});
  }

  std::vector<Cache> cache() const {
    std::lock_guard<std::mutex> lock(mu_);
    return cache_;
  }
  std::vector<Db> db() const {
    std::lock_guard<std::mutex> lock(mu_);
    return db_;
  }
  std::vector<ServerWide> server_wide() const {
    std::lock_guard<std::mutex> lock(mu_);
    return server_wide_;
  }
  uint64_t hits() const {
    return Sum([](const Cache& c) { return c.result.hits; });
  }
  uint64_t misses() const {
    return Sum([](const Cache& c) { return c.result.misses; });
  }
  uint64_t cache_errors() const {
    return Sum([](const Cache& c) { return c.result.error ? 1 : 0; });
  }
  std::size_t cache_commands() const {
    std::lock_guard<std::mutex> lock(mu_);
    return cache_.size();
  }
  std::size_t db_queries() const {
    std::lock_guard<std::mutex> lock(mu_);
    return db_.size();
  }
  void Clear() {
    std::lock_guard<std::mutex> lock(mu_);
    cache_.clear();
    db_.clear();
    server_wide_.clear();
  }

 private:
  uint64_t Sum(const std::function<uint64_t(const Cache&)>& f) const {
    std::lock_guard<std::mutex> lock(mu_);
    uint64_t total = 0;
    for (const Cache& c : cache_) total += f(c);
    return total;
  }

  mutable std::mutex mu_;
  std::vector<Cache> cache_;
  std::vector<Db> db_;
  std::vector<ServerWide> server_wide_;
};

/// Polls `cond` until it holds or `timeout` passes (tests never sleep to synchronize).
inline bool WaitFor(const std::function<bool()>& cond,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return cond();
}

}  // namespace kpiscale::testing
