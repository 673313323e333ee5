#include <gtest/gtest.h>
#include <httplib.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

#include "../observe/recording_sink.h"
#include "../observe/servers.h"
#include "failure_agent.h"
#include "kpiscale/sidecar/observe/data_observers.h"

namespace kpiscale::examples {
namespace {

using testing::PostgresServer;
using testing::RedisServer;
using testing::RunCommand;

class FailureAgentTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    redis_ = RedisServer::Start().release();
    pg_ = PostgresServer::Start().release();
  }
  static void TearDownTestSuite() {
    delete redis_;
    delete pg_;
  }
  void SetUp() override {
    ASSERT_NE(redis_, nullptr);
    ASSERT_NE(pg_, nullptr);
    redis_->Cli("FLUSHALL");
  }

  std::unique_ptr<App> StartApp(const std::string& redis, const std::string& pg_dsn,
                                int64_t seed_rows = 0) {
    AppOptions o;
    o.listen = "127.0.0.1:0";
    o.db.dsn = pg_dsn;
    o.cache.address = redis;
    o.seed_rows = seed_rows;
    auto app = App::Create(o);
    EXPECT_TRUE(app.ok()) << app.status();
    if (!app.ok()) return nullptr;
    (*app)->Start();
    return std::move(*app);
  }

  static RedisServer* redis_;
  static PostgresServer* pg_;
};

RedisServer* FailureAgentTest::redis_ = nullptr;
PostgresServer* FailureAgentTest::pg_ = nullptr;

TEST_F(FailureAgentTest, MigrationsCreateThePartitionedSchemaOnce) {
  auto app = StartApp(redis_->address(), pg_->dsn());
  ASSERT_NE(app, nullptr);
  auto again = StartApp(redis_->address(), pg_->dsn());  // idempotent
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(pg_->Psql("SELECT count(*) FROM schema_migrations").output, "1\n");
  EXPECT_EQ(pg_->Psql("SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_inherits i "
                      "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = "
                      "'failure_logs'::regclass")
                .output,
            "failure_logs_2024,failure_logs_2025,failure_logs_2026,failure_logs_default\n");
  const auto indexes = pg_->Psql(
      "SELECT indexdef FROM pg_indexes WHERE tablename = 'failure_logs' ORDER BY indexname");
  for (const char* def :
       {"(created_at DESC)", "(status, created_at DESC)", "(service_name, created_at DESC)",
        "(service_name, status, created_at DESC)"}) {
    EXPECT_NE(indexes.output.find(def), std::string::npos) << def << "\n" << indexes.output;
  }
}

TEST_F(FailureAgentTest, PoolAndStatementTimeout) {
  auto app = StartApp(redis_->address(), pg_->dsn());
  ASSERT_NE(app, nullptr);
  EXPECT_GE(app->pool().open_connections(), 10u);
  auto lease = app->pool().Acquire();
  ASSERT_TRUE(lease.ok());
  pqxx::nontransaction tx(**lease);
  EXPECT_EQ(std::string(tx.exec("SHOW statement_timeout")[0][0].c_str()), "5s");
}

TEST_F(FailureAgentTest, CreateReadListWithCacheAside) {
  auto app = StartApp(redis_->address(), pg_->dsn());
  ASSERT_NE(app, nullptr);
  httplib::Client client("127.0.0.1", app->port());
  auto health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(client.Get("/readyz")->status, 200);

  auto created = client.Post(
      "/api/v1/failures",
      R"({"service_name":"cache-test","status":"investigating","error_message":"exit code 1",)"
      R"("pipeline":"p1","job":"build","details":{"attempt":1}})",
      "application/json");
  ASSERT_TRUE(created);
  ASSERT_EQ(created->status, 201) << created->body;
  const auto body = nlohmann::json::parse(created->body);
  const int64_t id = body["id"].get<int64_t>();
  EXPECT_EQ(body["status"], "investigating");

  // The new item was cached on write; drop it to see miss-then-hit.
  app->cache().Delete(ItemCacheKey(id));
  auto first = client.Get("/api/v1/failures/" + std::to_string(id));
  ASSERT_EQ(first->status, 200);
  EXPECT_EQ(first->get_header_value("X-Cache"), "miss");
  auto second = client.Get("/api/v1/failures/" + std::to_string(id));
  EXPECT_EQ(second->get_header_value("X-Cache"), "hit");
  EXPECT_EQ(nlohmann::json::parse(second->body), nlohmann::json::parse(first->body));
  const auto ttl = redis_->Cli("TTL " + ItemCacheKey(id));
  EXPECT_GT(std::stoi(ttl.output), 3500);  // default TTL 3600 s

  auto list = client.Get("/api/v1/failures?service=cache-test&status=investigating&limit=5");
  ASSERT_EQ(list->status, 200);
  EXPECT_EQ(list->get_header_value("X-Cache"), "miss");
  EXPECT_EQ(nlohmann::json::parse(list->body)["count"], 1);
  EXPECT_EQ(client.Get("/api/v1/failures?service=cache-test&status=investigating&limit=5")
                ->get_header_value("X-Cache"),
            "hit");
  // A write clears every cached list (SCAN + UNLINK), so the next read sees the new row.
  ASSERT_EQ(client
                .Post("/api/v1/failures",
                      R"({"service_name":"cache-test","status":"investigating",)"
                      R"("error_message":"again"})",
                      "application/json")
                ->status,
            201);
  EXPECT_EQ(redis_->Cli("--scan --pattern 'failures:list:*'").output, "");
  list = client.Get("/api/v1/failures?service=cache-test&status=investigating&limit=5");
  EXPECT_EQ(list->get_header_value("X-Cache"), "miss");
  EXPECT_EQ(nlohmann::json::parse(list->body)["count"], 2);

  EXPECT_EQ(client.Get("/api/v1/failures/999999999")->status, 404);
  EXPECT_EQ(client.Get("/api/v1/failures/abc")->status, 400);
  EXPECT_EQ(client.Get("/api/v1/failures?limit=0")->status, 400);
  EXPECT_EQ(client.Post("/api/v1/failures", "{}", "application/json")->status, 400);
}

TEST_F(FailureAgentTest, ClearPatternWalksWithScan) {
  auto app = StartApp(redis_->address(), pg_->dsn());
  ASSERT_NE(app, nullptr);
  for (int i = 0; i < 1200; ++i) {
    app->cache().Set("failures:list:k" + std::to_string(i), nlohmann::json{{"i", i}});
  }
  app->cache().Set("other:key", nlohmann::json{{"keep", true}});
  app->cache().ClearPattern(kListKeyPattern);
  EXPECT_EQ(redis_->Cli("DBSIZE").output, "1\n");
  EXPECT_TRUE(app->cache().Get("other:key").has_value());
}

TEST_F(FailureAgentTest, DeadRedisDegradesToTheDatabase) {
  const uint16_t dead = testing::FreePort();
  auto app = StartApp("127.0.0.1:" + std::to_string(dead), pg_->dsn());
  ASSERT_NE(app, nullptr);
  httplib::Client client("127.0.0.1", app->port());
  auto created =
      client.Post("/api/v1/failures", R"({"service_name":"no-cache","error_message":"boom"})",
                  "application/json");
  ASSERT_TRUE(created);
  EXPECT_EQ(created->status, 201);
  const int64_t id = nlohmann::json::parse(created->body)["id"].get<int64_t>();
  for (int i = 0; i < 3; ++i) {
    auto r = client.Get("/api/v1/failures/" + std::to_string(id));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->get_header_value("X-Cache"), "miss");
  }
  EXPECT_GE(app->cache().failures(), 1u);
}

TEST_F(FailureAgentTest, BinarySeedsAndExits) {
  const auto r = RunCommand(std::string(FAILURE_AGENT_BINARY) + " --database-dsn '" + pg_->dsn() +
                            "' --redis '' --seed 3000 --seed-only");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto per_partition =
      pg_->Psql("SELECT count(DISTINCT tableoid) >= 3, count(*) >= 3000 FROM failure_logs");
  EXPECT_EQ(per_partition.output, "t|t\n");
  EXPECT_EQ(RunCommand(std::string(FAILURE_AGENT_BINARY) + " --pool-min x").exit_code != 0, true);
}

TEST_F(FailureAgentTest, BehindTheObserversCacheAndDbAreMeasured) {
  kpiscale::testing::RecordingSink sink;
  prometheus::Registry registry;
  sidecar::DataObserverOptions o;
  o.redis_listen = "127.0.0.1:0";
  o.redis_upstream = redis_->address();
  o.postgres_listen = "127.0.0.1:0";
  o.postgres_upstream = pg_->address();
  auto observers = sidecar::StartDataObservers(o, sink, registry);
  ASSERT_TRUE(observers.ok()) << observers.status();
  auto app = StartApp("127.0.0.1:" + std::to_string((*observers)->redis_port()),
                      "host=127.0.0.1 port=" + std::to_string((*observers)->postgres_port()) +
                          " user=postgres dbname=postgres");
  ASSERT_NE(app, nullptr);
  httplib::Client client("127.0.0.1", app->port());
  auto created = client.Post(
      "/api/v1/failures", R"({"service_name":"observed","error_message":"x"})", "application/json");
  ASSERT_EQ(created->status, 201);
  const int64_t id = nlohmann::json::parse(created->body)["id"].get<int64_t>();
  sink.Clear();
  for (int i = 0; i < 4; ++i) client.Get("/api/v1/failures/" + std::to_string(id));
  client.Get("/api/v1/failures/999999998");  // a miss, then a database 404
  // 4 hits (cached on write), 1 miss; one database query for the unknown id.
  EXPECT_EQ(sink.hits(), 4u);
  EXPECT_EQ(sink.misses(), 1u);
  EXPECT_EQ(sink.db_queries(), 1u);
  app->Stop();
  (*observers)->Stop();
}

}  // namespace
}  // namespace kpiscale::examples
