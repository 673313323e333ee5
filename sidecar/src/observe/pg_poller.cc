#include <dlfcn.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <unistd.h>

#include <algorithm>
#include <climits>

#include "absl/strings/str_cat.h"
#include "kpiscale/common/status.h"
#include "kpiscale/sidecar/observe/pg_session.h"
#include "kpiscale/sidecar/observe/pollers.h"
#include "observe_log.h"

namespace kpiscale::sidecar::observe {
namespace {

class PgPoller final : public Poller {
 public:
  PgPoller(std::unique_ptr<PgSession> session, std::chrono::milliseconds interval,
           std::size_t top_n, const DbStats& stats)
      : Poller(interval), session_(std::move(session)), stats_(stats), deltas_(top_n) {
    StartThread();
  }
  ~PgPoller() override {
    Stop();
    for (auto& [id, g] : gauges_) {
      stats_.statement_mean_seconds.Remove(g.first);
      stats_.statement_calls.Remove(g.second);
    }
  }

 private:
  void PollOnce() override {
    if (const PgCallResult connected = session_->Connect(); !connected.ok()) {
      stats_.probe_failures.Increment();
      if (log_.ShouldLog()) {
        SPDLOG_LOGGER_WARN(ObserveLogger(), "msg=pg_connect_failed err=\"{}\"", connected.error);
      }
      return;
    }
    Probe();
    if (session_->connected() && session_->has_statements()) PollStatements();
  }

  void Probe() {
    const auto start = std::chrono::steady_clock::now();
    const PgCallResult probed = session_->Probe();
    if (!probed.ok()) {
      stats_.probe_failures.Increment();
      if (log_.ShouldLog()) {
        SPDLOG_LOGGER_WARN(ObserveLogger(), "msg=pg_probe_failed err=\"{}\"", probed.error);
      }
      return;
    }
    stats_.probe_duration.Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }

  void PollStatements() {
    std::vector<PgStatementRow> rows;
    if (const PgCallResult read = session_->ReadStatements(&rows); !read.ok()) {
      stats_.stat_statements_poll_failures.Increment();
      if (log_.ShouldLog()) {
        SPDLOG_LOGGER_WARN(ObserveLogger(), "msg=pg_stat_statements_failed err=\"{}\"", read.error);
      }
      return;
    }
    std::vector<StatementSample> samples;
    samples.reserve(rows.size());
    for (const PgStatementRow& r : rows) samples.push_back({r.queryid, r.calls, r.total_ms});
    const std::vector<StatementDelta> top = deltas_.Update(samples);
    std::map<int64_t, std::pair<prometheus::Gauge*, prometheus::Gauge*>> next;
    for (const StatementDelta& d : top) {
      auto it = gauges_.find(d.queryid);
      std::pair<prometheus::Gauge*, prometheus::Gauge*> g;
      if (it != gauges_.end()) {
        g = it->second;
        gauges_.erase(it);
      } else {
        const prometheus::Labels labels{{"queryid", std::to_string(d.queryid)}};
        g = {&stats_.statement_mean_seconds.Add(labels), &stats_.statement_calls.Add(labels)};
      }
      g.first->Set(d.mean_seconds);
      g.second->Set(static_cast<double>(d.calls));
      next[d.queryid] = g;
    }
    // Statements that left the top N lose their series (bounded cardinality).
    for (auto& [id, g] : gauges_) {
      stats_.statement_mean_seconds.Remove(g.first);
      stats_.statement_calls.Remove(g.second);
    }
    gauges_ = std::move(next);
  }

  std::unique_ptr<PgSession> session_;
  const DbStats& stats_;
  StatementDeltas deltas_;
  std::map<int64_t, std::pair<prometheus::Gauge*, prometheus::Gauge*>> gauges_;
  LogLimiter log_;
};

}  // namespace

std::vector<StatementDelta> StatementDeltas::Update(const std::vector<StatementSample>& samples) {
  std::vector<StatementDelta> out;
  std::map<int64_t, StatementSample> current;
  for (const StatementSample& s : samples) {
    // The same queryid can appear once per user and top-level flag: sum them.
    StatementSample& acc = current[s.queryid];
    acc.queryid = s.queryid;
    acc.calls += s.calls;
    acc.total_ms += s.total_ms;
  }
  for (const auto& [id, now] : current) {
    const auto it = previous_.find(id);
    if (it == previous_.end()) continue;
    const int64_t calls = now.calls - it->second.calls;
    const double total_ms = now.total_ms - it->second.total_ms;
    if (calls <= 0 || total_ms < 0) continue;  // idle, or reset / evicted meanwhile
    out.push_back(StatementDelta{id, calls, total_ms / 1000.0 / static_cast<double>(calls),
                                 total_ms / 1000.0});
  }
  previous_ = std::move(current);
  std::sort(out.begin(), out.end(), [](const StatementDelta& a, const StatementDelta& b) {
    return a.total_seconds != b.total_seconds ? a.total_seconds > b.total_seconds
                                              : a.queryid < b.queryid;
  });
  if (out.size() > top_n_) out.resize(top_n_);
  return out;
}

absl::StatusOr<std::unique_ptr<PgSession>> LoadPgSession(const std::string& dsn) {
  // The module is looked for in $KPISCALE_SIDECAR_MODULE_DIR, beside the executable, then in the
  // build tree (tests and benchmarks run from there).
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("KPISCALE_SIDECAR_MODULE_DIR"); env != nullptr && *env)
    dirs.emplace_back(env);
  char exe[PATH_MAX];
  if (const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1); n > 0) {
    std::string path(exe, static_cast<std::size_t>(n));
    dirs.push_back(path.substr(0, path.rfind('/')));
  }
#ifdef KPISCALE_SIDECAR_MODULE_BUILD_DIR
  dirs.emplace_back(KPISCALE_SIDECAR_MODULE_BUILD_DIR);
#endif
  std::string tried;
  for (const std::string& dir : dirs) {
    const std::string path = dir + "/" + kPgSessionModuleName;
    if (access(path.c_str(), R_OK) != 0) {
      absl::StrAppend(&tried, tried.empty() ? "" : ", ", path);
      continue;
    }
    // Never unloaded: the session's code must outlive every PgPoller.
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat("cannot load ", path, ": ", dlerror()));
    }
    auto* make = reinterpret_cast<NewPgSessionFn>(dlsym(handle, "kpiscale_new_pg_session"));
    if (make == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, " has no kpiscale_new_pg_session: not a kpiscale module"));
    }
    std::unique_ptr<PgSession> session(make(kPgSessionAbi, dsn.c_str()));
    if (session == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat(path,
                       " is from another kpiscale build (ABI differs); install the module "
                       "built with this sidecar"));
    }
    return session;
  }
  return absl::FailedPreconditionError(
      absl::StrCat("--postgres-dsn needs ", kPgSessionModuleName,
                   " (the libpqxx poller); not found at: ", tried));
}

absl::StatusOr<std::unique_ptr<Poller>> StartPgPoller(const std::string& dsn,
                                                      std::chrono::milliseconds interval,
                                                      std::size_t top_n, const DbStats& stats) {
  if (interval.count() <= 0)
    return absl::InvalidArgumentError("postgres poll interval must be > 0");
  if (top_n == 0 || top_n > 1000) {
    return absl::InvalidArgumentError("postgres top statements must be in 1..1000");
  }
  KPISCALE_ASSIGN_OR_RETURN(std::unique_ptr<PgSession> session, LoadPgSession(dsn));
  return std::unique_ptr<Poller>(new PgPoller(std::move(session), interval, top_n, stats));
}

}  // namespace kpiscale::sidecar::observe
