#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "../../integration/observe/recording_sink.h"
#include "kpiscale/sidecar/observe/data_observers.h"

namespace kpiscale::sidecar {
namespace {

TEST(StartDataObserversTest, NothingAskedNothingStarted) {
  prometheus::Registry registry;
  testing::RecordingSink sink;
  auto obs = StartDataObservers(DataObserverOptions{}, sink, registry);
  ASSERT_TRUE(obs.ok()) << obs.status();
  EXPECT_EQ((*obs)->redis_port(), 0);
  EXPECT_EQ((*obs)->postgres_port(), 0);
}

TEST(StartDataObserversTest, RejectsHalfConfiguredProxies) {
  prometheus::Registry registry;
  testing::RecordingSink sink;
  DataObserverOptions o;
  o.redis_listen = "127.0.0.1:0";
  EXPECT_EQ(StartDataObservers(o, sink, registry).status().code(),
            absl::StatusCode::kInvalidArgument);
  o = DataObserverOptions{};
  o.postgres_upstream = "127.0.0.1:5432";
  EXPECT_FALSE(StartDataObservers(o, sink, registry).ok());
  o = DataObserverOptions{};
  o.redis_info_url = "http://x";
  EXPECT_FALSE(StartDataObservers(o, sink, registry).ok());
  o = DataObserverOptions{};
  o.redis_listen = "nonsense";
  o.redis_upstream = "127.0.0.1:6379";
  EXPECT_FALSE(StartDataObservers(o, sink, registry).ok());
}

TEST(StartDataObserversTest, BindsPortZeroAndRegistersTheAgreedMetrics) {
  prometheus::Registry registry;
  testing::RecordingSink sink;
  DataObserverOptions o;
  o.redis_listen = "127.0.0.1:0";
  o.redis_upstream = "127.0.0.1:1";
  o.postgres_listen = "127.0.0.1:0";
  o.postgres_upstream = "127.0.0.1:1";
  auto obs = StartDataObservers(o, sink, registry);
  ASSERT_TRUE(obs.ok()) << obs.status();
  EXPECT_GT((*obs)->redis_port(), 0);
  EXPECT_GT((*obs)->postgres_port(), 0);
  EXPECT_NE((*obs)->redis_port(), (*obs)->postgres_port());
  const std::string text = prometheus::TextSerializer().Serialize(registry.Collect());
  for (const char* name :
       {"kpiscale_sidecar_cache_commands_total", "kpiscale_sidecar_cache_hits_total",
        "kpiscale_sidecar_cache_misses_total", "kpiscale_sidecar_cache_errors_total",
        "kpiscale_sidecar_cache_command_duration_seconds_bucket",
        "kpiscale_sidecar_db_queries_total", "kpiscale_sidecar_db_errors_total",
        "kpiscale_sidecar_db_query_duration_seconds_bucket{le=\"0.1\"}"}) {
    EXPECT_NE(text.find(name), std::string::npos) << name;
  }
  (*obs)->Stop();
  (*obs)->Stop();  // idempotent
}

}  // namespace
}  // namespace kpiscale::sidecar
