#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct redisContext;
namespace httplib {
class Server;
}

namespace kpiscale::examples {

// ---------------------------------------------------------------------------------------------
// Model and request validation (pure; unit-tested).

/// The statuses a failure can have.
inline const char* const kStatuses[] = {"open", "investigating", "resolved"};

/// One row of failure_logs.
struct Failure {
  int64_t id = 0;
  std::string service_name;
  std::string status;
  std::string pipeline;
  std::string job;
  std::string error_message;
  nlohmann::json details = nlohmann::json::object();
  std::string created_at;  // ISO 8601, UTC
};

nlohmann::json FailureToJson(const Failure& f);
absl::StatusOr<Failure> FailureFromJson(const nlohmann::json& j);

/// `GET /api/v1/failures?service=&status=&limit=`.
struct ListQuery {
  std::optional<std::string> service;
  std::optional<std::string> status;
  int limit = 50;
};

inline constexpr int kMaxListLimit = 500;
inline constexpr std::size_t kMaxNameBytes = 200;
inline constexpr std::size_t kMaxMessageBytes = 16 * 1024;

/// Validates query parameters (absent or empty means "no filter").
absl::StatusOr<ListQuery> ParseListQuery(const std::multimap<std::string, std::string>& params);

/// Validates a POST body: service_name and error_message required; status defaults to "open".
absl::StatusOr<Failure> ParseNewFailure(const std::string& body);

/// Cache keys: one per item, one per list query (all under a prefix cleared on writes).
std::string ItemCacheKey(int64_t id);
std::string ListCacheKey(const ListQuery& q);
inline constexpr const char* kListKeyPattern = "failures:list:*";

// ---------------------------------------------------------------------------------------------
// PostgreSQL.

/// The schema as ordered migrations; applied once each, under an advisory lock, at start.
const std::vector<std::string>& Migrations();

struct DbOptions {
  std::string dsn;
  std::size_t pool_min = 10;
  std::size_t pool_max = 50;
  std::chrono::milliseconds statement_timeout{5000};
  std::chrono::milliseconds acquire_timeout{5000};
};

/// A bounded pool of libpqxx connections (min opened at start, grown on demand up to max).
/// Thread-safety: all methods may be called concurrently.
class ConnectionPool {
 public:
  static absl::StatusOr<std::unique_ptr<ConnectionPool>> Create(const DbOptions& options);
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  /// A connection on loan; returned to the pool on destruction unless marked broken.
  class Lease {
   public:
    Lease(ConnectionPool* pool, std::unique_ptr<pqxx::connection> conn);
    Lease(Lease&&) noexcept;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    pqxx::connection& operator*() { return *conn_; }
    void MarkBroken() { broken_ = true; }

   private:
    ConnectionPool* pool_;
    std::unique_ptr<pqxx::connection> conn_;
    bool broken_ = false;
  };

  absl::StatusOr<Lease> Acquire();
  std::size_t open_connections() const;

 private:
  explicit ConnectionPool(DbOptions options) : options_(std::move(options)) {}
  absl::StatusOr<std::unique_ptr<pqxx::connection>> Open();
  void Release(std::unique_ptr<pqxx::connection> conn, bool broken);

  const DbOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  std::size_t open_ = 0;
};

/// Applies the migrations that are not applied yet.
absl::Status Migrate(ConnectionPool& pool);

/// The failure_logs queries (extended protocol, parameters bound).
class FailureRepository {
 public:
  explicit FailureRepository(ConnectionPool& pool) : pool_(pool) {}
  absl::StatusOr<std::vector<Failure>> List(const ListQuery& q);
  /// NotFound when there is no such id.
  absl::StatusOr<Failure> Get(int64_t id);
  absl::StatusOr<Failure> Insert(const Failure& f);
  /// Inserts `rows` realistic rows spread over 2024 up to now (deterministic for a seed).
  absl::Status Seed(int64_t rows, double seed);

 private:
  ConnectionPool& pool_;
};

// ---------------------------------------------------------------------------------------------
// Redis cache-aside.

struct CacheOptions {
  std::string address;  // host:port; empty disables the cache
  std::chrono::seconds ttl{3600};
  std::chrono::milliseconds timeout{200};
  std::chrono::milliseconds retry_after{1000};  // after a failure, skip Redis for this long
};

/// A JSON cache over Redis. Every failure degrades to "not cached" and is counted; nothing
/// here ever fails a request.
/// Thread-safety: all methods may be called concurrently (a small pool of hiredis contexts).
class Cache {
 public:
  explicit Cache(CacheOptions options);
  ~Cache();
  Cache(const Cache&) = delete;
  Cache& operator=(const Cache&) = delete;

  std::optional<nlohmann::json> Get(const std::string& key);
  void Set(const std::string& key, const nlohmann::json& value);
  void Set(const std::string& key, const nlohmann::json& value, std::chrono::seconds ttl);
  void Delete(const std::string& key);
  /// Deletes every key matching a glob pattern, walking with SCAN (never KEYS).
  void ClearPattern(const std::string& pattern);

  bool enabled() const { return !options_.address.empty(); }
  uint64_t failures() const { return failures_.load(); }

 private:
  struct ContextDeleter {
    void operator()(redisContext* c) const;
  };
  using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;
  ContextPtr Borrow();
  void Return(ContextPtr ctx);
  void Failed(const std::string& what);

  const CacheOptions options_;
  std::string host_;
  int port_ = 0;
  std::mutex mu_;
  std::vector<ContextPtr> idle_;
  std::chrono::steady_clock::time_point skip_until_{};
  std::atomic<uint64_t> failures_{0};
};

// ---------------------------------------------------------------------------------------------
// The HTTP service.

struct AppOptions {
  std::string listen = "127.0.0.1:8000";
  DbOptions db;
  CacheOptions cache;
  int64_t seed_rows = 0;
};

/// The failure agent: routes over the repository and the cache.
/// Thread-safety: Start/Stop from one thread; handlers run on httplib's pool.
class App {
 public:
  /// Connects, migrates, seeds if asked, and binds (port 0 picks one).
  static absl::StatusOr<std::unique_ptr<App>> Create(const AppOptions& options);
  ~App();
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  int port() const { return port_; }
  /// Serves until Stop() (blocks).
  void Run();
  /// Serves on a background thread.
  void Start();
  void Stop();

  Cache& cache() { return *cache_; }
  ConnectionPool& pool() { return *pool_; }

 private:
  App() = default;
  void Routes();

  std::unique_ptr<ConnectionPool> pool_;
  std::unique_ptr<FailureRepository> repo_;
  std::unique_ptr<Cache> cache_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace kpiscale::examples
