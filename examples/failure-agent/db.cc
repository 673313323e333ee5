#include <spdlog/spdlog.h>

#include <pqxx/pqxx>

#include "failure_agent.h"
#include "kpiscale/common/status.h"

namespace kpiscale::examples {
namespace {

constexpr const char* kColumns =
    "id, service_name, status, pipeline, job, error_message, details::text, "
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')";

Failure RowToFailure(const pqxx::row& row) {
  Failure f;
  f.id = row[0].as<long long>();
  f.service_name = row[1].c_str();
  f.status = row[2].c_str();
  f.pipeline = row[3].is_null() ? "" : row[3].c_str();
  f.job = row[4].is_null() ? "" : row[4].c_str();
  f.error_message = row[5].c_str();
  f.details = nlohmann::json::parse(row[6].c_str(), nullptr, false);
  if (f.details.is_discarded()) f.details = nlohmann::json::object();
  f.created_at = row[7].c_str();
  return f;
}

// Runs `fn` on a pooled connection, turning libpqxx exceptions into Status (house style rule 4).
template <typename Fn>
auto WithConnection(ConnectionPool& pool, Fn fn)
    -> decltype(fn(std::declval<pqxx::connection&>())) {
  auto lease = pool.Acquire();
  if (!lease.ok()) return lease.status();
  try {
    return fn(**lease);
  } catch (const pqxx::broken_connection& e) {
    lease->MarkBroken();
    return absl::UnavailableError(std::string("database connection lost: ") + e.what());
  } catch (const pqxx::sql_error& e) {
    if (e.sqlstate() == "57014") {
      return absl::DeadlineExceededError("statement timeout: " + std::string(e.what()));
    }
    return absl::InternalError(std::string("database error: ") + e.what());
  } catch (const std::exception& e) {
    lease->MarkBroken();
    return absl::InternalError(std::string("database failure: ") + e.what());
  }
}

}  // namespace

const std::vector<std::string>& Migrations() {
  static const auto* migrations = new std::vector<std::string>{
      // 1: failure_logs, range-partitioned by year of created_at (the PostgreSQL form of the
      // MySQL plan), with the four indexes the queries use. The primary key has to include the
      // partition key.
      R"sql(
CREATE TABLE failure_logs (
  id            bigint GENERATED ALWAYS AS IDENTITY,
  service_name  text        NOT NULL,
  status        text        NOT NULL CHECK (status IN ('open', 'investigating', 'resolved')),
  pipeline      text,
  job           text,
  error_message text        NOT NULL,
  details       jsonb       NOT NULL DEFAULT '{}'::jsonb,
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE TABLE failure_logs_2024 PARTITION OF failure_logs
  FOR VALUES FROM ('2024-01-01 00:00:00+00') TO ('2025-01-01 00:00:00+00');
CREATE TABLE failure_logs_2025 PARTITION OF failure_logs
  FOR VALUES FROM ('2025-01-01 00:00:00+00') TO ('2026-01-01 00:00:00+00');
CREATE TABLE failure_logs_2026 PARTITION OF failure_logs
  FOR VALUES FROM ('2026-01-01 00:00:00+00') TO ('2027-01-01 00:00:00+00');
CREATE TABLE failure_logs_default PARTITION OF failure_logs DEFAULT;
CREATE INDEX idx_failure_logs_created_at ON failure_logs (created_at DESC);
CREATE INDEX idx_failure_logs_status_created_at ON failure_logs (status, created_at DESC);
CREATE INDEX idx_failure_logs_service_created_at ON failure_logs (service_name, created_at DESC);
CREATE INDEX idx_failure_logs_service_status_created_at
  ON failure_logs (service_name, status, created_at DESC);
)sql",
  };
  return *migrations;
}

absl::StatusOr<std::unique_ptr<ConnectionPool>> ConnectionPool::Create(const DbOptions& options) {
  if (options.dsn.empty()) return absl::InvalidArgumentError("--database-dsn is required");
  if (options.pool_min > options.pool_max || options.pool_max == 0) {
    return absl::InvalidArgumentError("pool: need 0 <= min <= max and max > 0");
  }
  auto pool = std::unique_ptr<ConnectionPool>(new ConnectionPool(options));
  for (std::size_t i = 0; i < options.pool_min; ++i) {
    KPISCALE_ASSIGN_OR_RETURN(auto conn, pool->Open());
    std::lock_guard<std::mutex> lock(pool->mu_);
    pool->idle_.push_back(std::move(conn));
    ++pool->open_;
  }
  return pool;
}

ConnectionPool::~ConnectionPool() = default;

absl::StatusOr<std::unique_ptr<pqxx::connection>> ConnectionPool::Open() {
  try {
    auto conn = std::make_unique<pqxx::connection>(options_.dsn);
    pqxx::nontransaction tx(*conn);
    tx.exec("SET statement_timeout = " + std::to_string(options_.statement_timeout.count()));
    tx.exec("SET application_name = 'failure-agent'");
    return conn;
  } catch (const std::exception& e) {
    return absl::UnavailableError(std::string("cannot connect to PostgreSQL: ") + e.what());
  }
}

absl::StatusOr<ConnectionPool::Lease> ConnectionPool::Acquire() {
  std::unique_lock<std::mutex> lock(mu_);
  const auto deadline = std::chrono::steady_clock::now() + options_.acquire_timeout;
  for (;;) {
    if (!idle_.empty()) {
      auto conn = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(conn));
    }
    if (open_ < options_.pool_max) {
      ++open_;
      lock.unlock();
      auto conn = Open();
      if (!conn.ok()) {
        lock.lock();
        --open_;
        cv_.notify_one();
        return conn.status();
      }
      return Lease(this, std::move(*conn));
    }
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty()) {
      return absl::UnavailableError("database pool exhausted");
    }
  }
}

void ConnectionPool::Release(std::unique_ptr<pqxx::connection> conn, bool broken) {
  std::lock_guard<std::mutex> lock(mu_);
  if (broken || conn == nullptr || !conn->is_open()) {
    --open_;
  } else {
    idle_.push_back(std::move(conn));
  }
  cv_.notify_one();
}

std::size_t ConnectionPool::open_connections() const {
  std::lock_guard<std::mutex> lock(mu_);
  return open_;
}

ConnectionPool::Lease::Lease(ConnectionPool* pool, std::unique_ptr<pqxx::connection> conn)
    : pool_(pool), conn_(std::move(conn)) {}

ConnectionPool::Lease::Lease(Lease&& other) noexcept
    : pool_(other.pool_), conn_(std::move(other.conn_)), broken_(other.broken_) {
  other.pool_ = nullptr;
}

ConnectionPool::Lease::~Lease() {
  if (pool_ != nullptr) pool_->Release(std::move(conn_), broken_);
}

absl::Status Migrate(ConnectionPool& pool) {
  return WithConnection(pool, [](pqxx::connection& c) -> absl::Status {
    pqxx::work tx(c);
    // Several replicas may start at once: one migrates, the others wait and find it done.
    tx.exec("SELECT pg_advisory_xact_lock(7274551)");
    tx.exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
        "applied_at timestamptz NOT NULL DEFAULT now())");
    const pqxx::result done = tx.exec("SELECT coalesce(max(version), 0) FROM schema_migrations");
    const int applied = done[0][0].as<int>();
    const auto& all = Migrations();
    for (int v = applied + 1; v <= static_cast<int>(all.size()); ++v) {
      tx.exec(all[static_cast<std::size_t>(v - 1)]);
      tx.exec_params("INSERT INTO schema_migrations (version) VALUES ($1)", v);
      spdlog::info("msg=migration_applied version={}", v);
    }
    tx.commit();
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<Failure>> FailureRepository::List(const ListQuery& q) {
  return WithConnection(pool_, [&](pqxx::connection& c) -> absl::StatusOr<std::vector<Failure>> {
    pqxx::nontransaction tx(c);
    // One statement per filter combination, so each can use its own index.
    const std::string base = std::string("SELECT ") + kColumns + " FROM failure_logs ";
    const std::string tail = " ORDER BY created_at DESC LIMIT ";
    pqxx::result rows;
    if (q.service && q.status) {
      rows = tx.exec_params(base + "WHERE service_name = $1 AND status = $2" + tail + "$3",
                            *q.service, *q.status, q.limit);
    } else if (q.service) {
      rows = tx.exec_params(base + "WHERE service_name = $1" + tail + "$2", *q.service, q.limit);
    } else if (q.status) {
      rows = tx.exec_params(base + "WHERE status = $1" + tail + "$2", *q.status, q.limit);
    } else {
      rows = tx.exec_params(base + tail + "$1", q.limit);
    }
    std::vector<Failure> out;
    out.reserve(rows.size());
    for (const auto& row : rows) out.push_back(RowToFailure(row));
    return out;
  });
}

absl::StatusOr<Failure> FailureRepository::Get(int64_t id) {
  return WithConnection(pool_, [&](pqxx::connection& c) -> absl::StatusOr<Failure> {
    pqxx::nontransaction tx(c);
    const pqxx::result rows =
        tx.exec_params(std::string("SELECT ") + kColumns + " FROM failure_logs WHERE id = $1", id);
    if (rows.empty()) return absl::NotFoundError("no failure " + std::to_string(id));
    return RowToFailure(rows[0]);
  });
}

absl::StatusOr<Failure> FailureRepository::Insert(const Failure& f) {
  return WithConnection(pool_, [&](pqxx::connection& c) -> absl::StatusOr<Failure> {
    pqxx::work tx(c);
    const pqxx::result rows = tx.exec_params(
        std::string("INSERT INTO failure_logs (service_name, status, pipeline, job, "
                    "error_message, details) VALUES ($1, $2, NULLIF($3, ''), NULLIF($4, ''), $5, "
                    "$6::jsonb) RETURNING ") +
            kColumns,
        f.service_name, f.status, f.pipeline, f.job, f.error_message, f.details.dump());
    tx.commit();
    return RowToFailure(rows[0]);
  });
}

absl::Status FailureRepository::Seed(int64_t rows, double seed) {
  if (rows < 0 || rows > 10'000'000) return absl::InvalidArgumentError("seed rows: 0..10000000");
  if (seed < -1 || seed > 1) return absl::InvalidArgumentError("seed: -1..1");
  return WithConnection(pool_, [&](pqxx::connection& c) -> absl::Status {
    pqxx::work tx(c);
    tx.exec("SET LOCAL statement_timeout = 0");  // a big seed may take longer than 5 s
    tx.exec_params("SELECT setseed($1)", seed);
    tx.exec_params(R"sql(
INSERT INTO failure_logs (service_name, status, pipeline, job, error_message, details, created_at)
SELECT (ARRAY['checkout','payments','search','auth','inventory','notifications','billing',
              'gateway','reports','catalog'])[1 + floor(random() * 10)::int],
       (ARRAY['open','open','investigating','resolved','resolved','resolved'])
         [1 + floor(random() * 6)::int],
       'pipeline-' || (1 + floor(random() * 40)::int),
       (ARRAY['build','unit-tests','integration-tests','lint','deploy-staging','deploy-prod'])
         [1 + floor(random() * 6)::int],
       (ARRAY['exit code 1','timeout after 600s','OOMKilled','flaky test detected',
              'dependency download failed','image push denied'])[1 + floor(random() * 6)::int],
       jsonb_build_object('attempt', 1 + floor(random() * 3)::int,
                          'runner', 'runner-' || floor(random() * 16)::int),
       timestamptz '2024-01-01 00:00:00+00' + random() * (now() - timestamptz '2024-01-01 00:00:00+00')
FROM generate_series(1, $1)
)sql",
                   rows);
    tx.exec("ANALYZE failure_logs");
    tx.commit();
    spdlog::info("msg=seeded rows={}", rows);
    return absl::OkStatus();
  });
}

}  // namespace kpiscale::examples
