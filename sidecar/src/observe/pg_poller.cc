#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>

#include <algorithm>
#include <pqxx/pqxx>

#include "kpiscale/sidecar/observe/pollers.h"
#include "observe_log.h"

namespace kpiscale::sidecar::observe {
namespace {

class PgPoller final : public Poller {
 public:
  PgPoller(std::string dsn, std::chrono::milliseconds interval, std::size_t top_n,
           const DbStats& stats)
      : Poller(interval), dsn_(std::move(dsn)), stats_(stats), deltas_(top_n) {
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
    // libpqxx reports everything by exception; they stop here (house style rule 4).
    try {
      if (conn_ == nullptr) {
        conn_ = std::make_unique<pqxx::connection>(dsn_);
        pqxx::nontransaction tx(*conn_);
        tx.exec("SET statement_timeout = 2000");
        has_statements_ = !tx.exec(
                                 "SELECT 1 FROM pg_extension WHERE extname = "
                                 "'pg_stat_statements'")
                               .empty();
        total_column_ = conn_->server_version() >= 130000 ? "total_exec_time" : "total_time";
      }
    } catch (const std::exception& e) {
      conn_.reset();
      stats_.probe_failures.Increment();
      if (log_.ShouldLog()) {
        SPDLOG_LOGGER_WARN(ObserveLogger(), "msg=pg_connect_failed err=\"{}\"", e.what());
      }
      return;
    }
    Probe();
    if (conn_ != nullptr && has_statements_) PollStatements();
  }

  void Probe() {
    const auto start = std::chrono::steady_clock::now();
    try {
      pqxx::nontransaction tx(*conn_);
      tx.exec("SELECT 1");
    } catch (const pqxx::broken_connection& e) {
      conn_.reset();  // reconnect on the next tick
      ProbeFailed(e.what());
      return;
    } catch (const std::exception& e) {
      ProbeFailed(e.what());
      return;
    }
    stats_.probe_duration.Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }

  void ProbeFailed(const char* why) {
    stats_.probe_failures.Increment();
    if (log_.ShouldLog())
      SPDLOG_LOGGER_WARN(ObserveLogger(), "msg=pg_probe_failed err=\"{}\"", why);
  }

  void PollStatements() {
    std::vector<StatementSample> samples;
    try {
      pqxx::nontransaction tx(*conn_);
      const pqxx::result rows =
          tx.exec("SELECT queryid, calls, " + total_column_ +
                  " FROM pg_stat_statements WHERE queryid IS NOT NULL AND dbid = (SELECT oid FROM "
                  "pg_database WHERE datname = current_database())");
      samples.reserve(rows.size());
      for (const auto& row : rows) {
        samples.push_back(
            StatementSample{row[0].as<long long>(), row[1].as<long long>(), row[2].as<double>()});
      }
    } catch (const pqxx::broken_connection& e) {
      conn_.reset();
      StatementsFailed(e.what());
      return;
    } catch (const std::exception& e) {
      StatementsFailed(e.what());
      return;
    }
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

  void StatementsFailed(const char* why) {
    stats_.stat_statements_poll_failures.Increment();
    if (log_.ShouldLog()) {
      SPDLOG_LOGGER_WARN(ObserveLogger(), "msg=pg_stat_statements_failed err=\"{}\"", why);
    }
  }

  std::string dsn_;
  const DbStats& stats_;
  StatementDeltas deltas_;
  std::unique_ptr<pqxx::connection> conn_;
  bool has_statements_ = false;
  std::string total_column_;
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

absl::StatusOr<std::unique_ptr<Poller>> StartPgPoller(const std::string& dsn,
                                                      std::chrono::milliseconds interval,
                                                      std::size_t top_n, const DbStats& stats) {
  if (interval.count() <= 0)
    return absl::InvalidArgumentError("postgres poll interval must be > 0");
  if (top_n == 0 || top_n > 1000) {
    return absl::InvalidArgumentError("postgres top statements must be in 1..1000");
  }
  return std::unique_ptr<Poller>(new PgPoller(dsn, interval, top_n, stats));
}

}  // namespace kpiscale::sidecar::observe
