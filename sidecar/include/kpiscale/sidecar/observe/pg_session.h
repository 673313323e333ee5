#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace kpiscale::sidecar::observe {

/// How one call to PostgreSQL ended. Plain types only: it crosses into the separately loaded
/// `kpiscale-sidecar-postgres.so`, which holds libpqxx and libpq so that a sidecar without
/// `--postgres-dsn` never maps them (about 3.7 MB of RSS with their Kerberos, LDAP and GnuTLS
/// dependencies).
struct PgCallResult {
  enum class Kind { kOk, kFailed, kBroken };  // kBroken: the connection is gone, reconnect
  Kind kind = Kind::kOk;
  std::string error;
  bool ok() const { return kind == Kind::kOk; }
};

/// One pg_stat_statements row as read (the poller turns successive rows into deltas).
struct PgStatementRow {
  int64_t queryid = 0;
  int64_t calls = 0;
  double total_ms = 0;
};

/// One libpqxx connection used by the poller. Exceptions never leave it.
/// Thread-safety: none; the poller thread alone uses it.
class PgSession {
 public:
  virtual ~PgSession() = default;
  /// Connects when not connected, sets a 2 s statement timeout and finds out whether
  /// pg_stat_statements exists and which column holds total time for the server version.
  virtual PgCallResult Connect() = 0;
  virtual bool connected() const = 0;
  virtual bool has_statements() const = 0;
  /// `SELECT 1`.
  virtual PgCallResult Probe() = 0;
  /// The current database's pg_stat_statements rows.
  virtual PgCallResult ReadStatements(std::vector<PgStatementRow>* rows) = 0;
};

/// Bumped whenever PgSession or PgCallResult change, so that a module from another build is
/// refused.
inline constexpr int kPgSessionAbi = 1;
/// File name of the module, looked up beside the executable (see LoadPgSession).
inline constexpr char kPgSessionModuleName[] = "kpiscale-sidecar-postgres.so";
/// The module's one exported symbol: `kpiscale_new_pg_session(abi, dsn)`, nullptr on ABI mismatch.
using NewPgSessionFn = PgSession* (*)(int abi, const char* dsn);

/// Loads the module (from $KPISCALE_SIDECAR_MODULE_DIR, else beside the executable, else the build
/// tree) and opens a session for `dsn`, not yet connected. FailedPrecondition, naming every place
/// looked at, when the module is missing or from another build.
/// Thread-safety: safe to call from any thread.
absl::StatusOr<std::unique_ptr<PgSession>> LoadPgSession(const std::string& dsn);

}  // namespace kpiscale::sidecar::observe
