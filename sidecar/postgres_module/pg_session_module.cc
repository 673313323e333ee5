// kpiscale-sidecar-postgres.so: the libpqxx side of the PostgreSQL poller, loaded by the sidecar
// only when --postgres-dsn is given (see pg_session.h for why it is separate).
#include <memory>
#include <pqxx/pqxx>

#include "kpiscale/sidecar/observe/pg_session.h"

namespace kpiscale::sidecar::observe {
namespace {

class PqxxSession final : public PgSession {
 public:
  explicit PqxxSession(std::string dsn) : dsn_(std::move(dsn)) {}

  PgCallResult Connect() override {
    if (conn_ != nullptr) return {};
    // libpqxx reports everything by exception; they stop here (house style rule 4).
    try {
      conn_ = std::make_unique<pqxx::connection>(dsn_);
      pqxx::nontransaction tx(*conn_);
      tx.exec("SET statement_timeout = 2000");
      has_statements_ =
          !tx.exec("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'").empty();
      total_column_ = conn_->server_version() >= 130000 ? "total_exec_time" : "total_time";
    } catch (const std::exception& e) {
      conn_.reset();
      return {PgCallResult::Kind::kBroken, e.what()};
    }
    return {};
  }

  bool connected() const override { return conn_ != nullptr; }
  bool has_statements() const override { return has_statements_; }

  PgCallResult Probe() override {
    return Run([](pqxx::nontransaction& tx) { tx.exec("SELECT 1"); });
  }

  PgCallResult ReadStatements(std::vector<PgStatementRow>* rows) override {
    rows->clear();
    return Run([this, rows](pqxx::nontransaction& tx) {
      const pqxx::result result =
          tx.exec("SELECT queryid, calls, " + total_column_ +
                  " FROM pg_stat_statements WHERE queryid IS NOT NULL AND dbid = (SELECT oid FROM "
                  "pg_database WHERE datname = current_database())");
      rows->reserve(result.size());
      for (const auto& row : result) {
        rows->push_back(
            PgStatementRow{row[0].as<long long>(), row[1].as<long long>(), row[2].as<double>()});
      }
    });
  }

 private:
  template <typename Body>
  PgCallResult Run(Body body) {
    if (conn_ == nullptr) return {PgCallResult::Kind::kBroken, "not connected"};
    try {
      pqxx::nontransaction tx(*conn_);
      body(tx);
    } catch (const pqxx::broken_connection& e) {
      conn_.reset();  // reconnect on the next tick
      return {PgCallResult::Kind::kBroken, e.what()};
    } catch (const std::exception& e) {
      return {PgCallResult::Kind::kFailed, e.what()};
    }
    return {};
  }

  std::string dsn_;
  std::unique_ptr<pqxx::connection> conn_;
  bool has_statements_ = false;
  std::string total_column_;
};

}  // namespace
}  // namespace kpiscale::sidecar::observe

extern "C" __attribute__((visibility("default"))) kpiscale::sidecar::observe::PgSession*
kpiscale_new_pg_session(int abi, const char* dsn) {
  if (abi != kpiscale::sidecar::observe::kPgSessionAbi || dsn == nullptr) return nullptr;
  return new kpiscale::sidecar::observe::PqxxSession(dsn);
}
