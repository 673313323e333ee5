#include "kpiscale/sidecar/observe/data_observers.h"

#include <memory>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "kpiscale/common/status.h"
#include "kpiscale/sidecar/observe/observe_stats.h"
#include "kpiscale/sidecar/observe/pg_tap.h"
#include "kpiscale/sidecar/observe/pollers.h"
#include "kpiscale/sidecar/observe/resp_tap.h"
#include "kpiscale/sidecar/observe/tcp_relay.h"
#include "observe_log.h"

namespace kpiscale::sidecar {
namespace {

using observe::CacheStats;
using observe::DbStats;
using observe::RelayStats;

class DataObserversImpl final : public DataObservers {
 public:
  DataObserversImpl() = default;
  ~DataObserversImpl() override { Stop(); }
  DataObserversImpl(const DataObserversImpl&) = delete;
  DataObserversImpl& operator=(const DataObserversImpl&) = delete;

  uint16_t redis_port() const override { return redis_port_; }
  uint16_t postgres_port() const override { return postgres_port_; }

  void Stop() override {
    if (relay_ != nullptr) relay_->Stop();
    for (auto& p : pollers_) p->Stop();
  }

  absl::Status Start(const DataObserverOptions& options, SignalSink& sink,
                     prometheus::Registry& registry) {
    const bool redis_proxy = !options.redis_listen.empty() || !options.redis_upstream.empty();
    const bool pg_proxy = !options.postgres_listen.empty() || !options.postgres_upstream.empty();
    if (redis_proxy && (options.redis_listen.empty() || options.redis_upstream.empty())) {
      return absl::InvalidArgumentError("--redis-listen and --redis-upstream go together");
    }
    if (pg_proxy && (options.postgres_listen.empty() || options.postgres_upstream.empty())) {
      return absl::InvalidArgumentError("--postgres-listen and --postgres-upstream go together");
    }
    if (options.max_connections == 0) {
      return absl::InvalidArgumentError("max connections must be > 0");
    }
    if (redis_proxy || !options.redis_info_url.empty()) {
      KPISCALE_ASSIGN_OR_RETURN(CacheStats cache, CacheStats::Create(registry));
      cache_.emplace(std::move(cache));
    }
    if (pg_proxy || !options.postgres_dsn.empty()) {
      KPISCALE_ASSIGN_OR_RETURN(DbStats db, DbStats::Create(registry));
      db_.emplace(std::move(db));
    }
    if (redis_proxy || pg_proxy) {
      observe::RelayOptions relay_options;
      relay_options.max_connections = options.max_connections;
      relay_options.threads = options.relay_threads;
      relay_options.defer_writes = options.relay_defer_writes;
      relay_options.poll_before_sleep = options.relay_poll_before_sleep;
      KPISCALE_ASSIGN_OR_RETURN(relay_, observe::TcpRelay::Create(relay_options));
    }
    if (redis_proxy) {
      KPISCALE_ASSIGN_OR_RETURN(RelayStats rs, RelayStats::Create(registry, "redis"));
      redis_relay_stats_.emplace(std::move(rs));
      observe::RelayListenerConfig config;
      config.name = "redis";
      config.listen = options.redis_listen;
      config.upstream = options.redis_upstream;
      config.stats = &*redis_relay_stats_;
      const CacheStats* stats = &*cache_;
      SignalSink* s = &sink;
      config.new_tap = [s, stats] { return std::make_unique<observe::RespTap>(*s, *stats); };
      KPISCALE_ASSIGN_OR_RETURN(redis_port_, relay_->AddListener(config));
    }
    if (pg_proxy) {
      KPISCALE_ASSIGN_OR_RETURN(RelayStats rs, RelayStats::Create(registry, "postgres"));
      pg_relay_stats_.emplace(std::move(rs));
      observe::RelayListenerConfig config;
      config.name = "postgres";
      config.listen = options.postgres_listen;
      config.upstream = options.postgres_upstream;
      config.stats = &*pg_relay_stats_;
      const DbStats* stats = &*db_;
      SignalSink* s = &sink;
      config.new_tap = [s, stats] { return std::make_unique<observe::PgTap>(*s, *stats); };
      KPISCALE_ASSIGN_OR_RETURN(postgres_port_, relay_->AddListener(config));
    }
    if (relay_ != nullptr) KPISCALE_RETURN_IF_ERROR(relay_->Start());
    if (!options.redis_info_url.empty()) {
      KPISCALE_ASSIGN_OR_RETURN(
          auto poller, observe::StartRedisInfoPoller(options.redis_info_url,
                                                     options.redis_info_interval, sink, *cache_));
      pollers_.push_back(std::move(poller));
    }
    if (!options.postgres_dsn.empty()) {
      KPISCALE_ASSIGN_OR_RETURN(
          auto poller, observe::StartPgPoller(options.postgres_dsn, options.postgres_poll_interval,
                                              options.postgres_top_statements, *db_));
      pollers_.push_back(std::move(poller));
    }
    SPDLOG_LOGGER_INFO(observe::ObserveLogger(),
                       "msg=data_observers_started redis_port={} postgres_port={} "
                       "redis_info={} postgres_dsn={}",
                       redis_port_, postgres_port_, !options.redis_info_url.empty(),
                       !options.postgres_dsn.empty());
    return absl::OkStatus();
  }

 private:
  // Declared before their users so they are destroyed after them.
  std::optional<CacheStats> cache_;
  std::optional<DbStats> db_;
  std::optional<RelayStats> redis_relay_stats_;
  std::optional<RelayStats> pg_relay_stats_;
  std::unique_ptr<observe::TcpRelay> relay_;
  std::vector<std::unique_ptr<observe::Poller>> pollers_;
  uint16_t redis_port_ = 0;
  uint16_t postgres_port_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<DataObservers>> StartDataObservers(
    const DataObserverOptions& options, SignalSink& sink, prometheus::Registry& registry) {
  auto observers = std::make_unique<DataObserversImpl>();
  KPISCALE_RETURN_IF_ERROR(observers->Start(options, sink, registry));
  return std::unique_ptr<DataObservers>(std::move(observers));
}

}  // namespace kpiscale::sidecar
