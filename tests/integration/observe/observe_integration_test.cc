#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "kpiscale/sidecar/observe/data_observers.h"
#include "recording_sink.h"
#include "servers.h"

namespace kpiscale::sidecar {
namespace {

using testing::PostgresServer;
using testing::RecordingSink;
using testing::RedisServer;
using testing::RunCommand;
using testing::WaitFor;

struct ContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;
struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

ContextPtr Connect(uint16_t port) { return ContextPtr(redisConnect("127.0.0.1", port)); }

ReplyPtr Command(redisContext* c, const char* format, ...) {
  va_list ap;
  va_start(ap, format);
  void* r = redisvCommand(c, format, ap);
  va_end(ap);
  return ReplyPtr(static_cast<redisReply*>(r));
}

double MetricValue(prometheus::Registry& registry, const std::string& line_prefix) {
  const std::string text = prometheus::TextSerializer().Serialize(registry.Collect());
  std::size_t pos = 0;
  while ((pos = text.find(line_prefix, pos)) != std::string::npos) {
    if (pos == 0 || text[pos - 1] == '\n') {
      const auto space = text.find(' ', pos + line_prefix.size());
      const auto eol = text.find('\n', space);
      return std::stod(text.substr(space + 1, eol - space - 1));
    }
    pos += line_prefix.size();
  }
  return -1;
}

class ObserveIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    redis_ = RedisServer::Start().release();
    pg_ = PostgresServer::Start().release();
  }
  static void TearDownTestSuite() {
    delete redis_;
    delete pg_;
    redis_ = nullptr;
    pg_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(redis_, nullptr) << "redis-server did not start";
    ASSERT_NE(pg_, nullptr) << "PostgreSQL did not start";
  }

  void StartObservers(const std::string& redis_upstream, const std::string& pg_upstream,
                      int relay_threads = 1) {
    DataObserverOptions o;
    o.relay_threads = relay_threads;
    if (!redis_upstream.empty()) {
      o.redis_listen = "127.0.0.1:0";
      o.redis_upstream = redis_upstream;
    }
    if (!pg_upstream.empty()) {
      o.postgres_listen = "127.0.0.1:0";
      o.postgres_upstream = pg_upstream;
    }
    auto obs = StartDataObservers(o, sink_, registry_);
    ASSERT_TRUE(obs.ok()) << obs.status();
    observers_ = std::move(*obs);
  }

  void PgbenchSleeps(int relay_threads, int clients, int transactions);

  static RedisServer* redis_;
  static PostgresServer* pg_;
  prometheus::Registry registry_;
  RecordingSink sink_;
  std::unique_ptr<DataObservers> observers_;
};

RedisServer* ObserveIntegrationTest::redis_ = nullptr;
PostgresServer* ObserveIntegrationTest::pg_ = nullptr;

TEST_F(ObserveIntegrationTest, RedisCliSequentialHitsAndMisses) {
  StartObservers(redis_->address(), "");
  const std::string cli = "redis-cli -h 127.0.0.1 -p " + std::to_string(observers_->redis_port());
  ASSERT_EQ(RunCommand(cli + " SET seq:a 1").output, "OK\n");
  EXPECT_EQ(RunCommand(cli + " GET seq:a").output, "1\n");
  EXPECT_EQ(RunCommand(cli + " GET seq:missing").output, "\n");
  EXPECT_EQ(RunCommand(cli + " GET seq:a").output, "1\n");
  // redis-cli closes after its reply: the records are in once the relay saw the replies.
  ASSERT_TRUE(WaitFor([&] { return sink_.hits() == 2 && sink_.misses() == 1; }))
      << sink_.hits() << " " << sink_.misses();
  EXPECT_EQ(MetricValue(registry_, "kpiscale_sidecar_cache_hits_total"), 2);
  EXPECT_EQ(MetricValue(registry_, "kpiscale_sidecar_cache_misses_total"), 1);
}

TEST_F(ObserveIntegrationTest, HiredisPipelinedExactCounts) {
  StartObservers(redis_->address(), "");
  auto c = Connect(observers_->redis_port());
  ASSERT_TRUE(c != nullptr && c->err == 0);
  ASSERT_EQ(Command(c.get(), "SET pipe:present v")->type, REDIS_REPLY_STATUS);
  constexpr int kRounds = 500;
  for (int i = 0; i < kRounds; ++i) {
    redisAppendCommand(c.get(), "GET pipe:present");
    redisAppendCommand(c.get(), "GET pipe:absent:%d", i);
    redisAppendCommand(c.get(), "INCR pipe:counter");
  }
  for (int i = 0; i < 3 * kRounds; ++i) {
    void* r = nullptr;
    ASSERT_EQ(redisGetReply(c.get(), &r), REDIS_OK);
    freeReplyObject(r);
  }
  // Every reply has reached the client, so the relay already recorded all of them.
  EXPECT_EQ(sink_.hits(), static_cast<uint64_t>(kRounds));
  EXPECT_EQ(sink_.misses(), static_cast<uint64_t>(kRounds));
  EXPECT_EQ(sink_.cache_commands(), static_cast<std::size_t>(3 * kRounds + 1));
  EXPECT_EQ(sink_.cache_errors(), 0u);
}

// With several relay threads the connections are spread over event loops; the counts stay
// exact because each connection's tap lives on one loop and the sink and metrics are shared.
TEST_F(ObserveIntegrationTest, SeveralRelayThreadsKeepCountsExact) {
  StartObservers(redis_->address(), "", /*relay_threads=*/3);
  {
    auto c = Connect(observers_->redis_port());
    ASSERT_TRUE(c != nullptr && c->err == 0);
    ASSERT_EQ(Command(c.get(), "SET threads:present v")->type, REDIS_REPLY_STATUS);
  }
  sink_.Clear();
  constexpr int kClients = 12;
  constexpr int kRounds = 200;
  std::vector<std::thread> clients;
  std::atomic<int> replies{0};
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      auto c = Connect(observers_->redis_port());
      if (c == nullptr || c->err != 0) return;
      for (int round = 0; round < kRounds; ++round) {
        redisAppendCommand(c.get(), "GET threads:present");
        redisAppendCommand(c.get(), "MGET threads:present threads:absent:%d:%d", i, round);
      }
      for (int k = 0; k < 2 * kRounds; ++k) {
        void* r = nullptr;
        if (redisGetReply(c.get(), &r) != REDIS_OK) return;
        freeReplyObject(r);
        replies.fetch_add(1);
      }
    });
  }
  for (auto& t : clients) t.join();
  ASSERT_EQ(replies.load(), 2 * kClients * kRounds);
  // Every reply reached its client, so every command was already recorded.
  EXPECT_EQ(sink_.cache_commands(), static_cast<std::size_t>(2 * kClients * kRounds));
  EXPECT_EQ(sink_.hits(), static_cast<uint64_t>(2 * kClients * kRounds));
  EXPECT_EQ(sink_.misses(), static_cast<uint64_t>(kClients * kRounds));
  EXPECT_EQ(sink_.cache_errors(), 0u);
  EXPECT_EQ(MetricValue(registry_, "kpiscale_sidecar_cache_hits_total"), 2 * kClients * kRounds);
  EXPECT_EQ(
      MetricValue(registry_, "kpiscale_sidecar_observe_connections_total{observer=\"redis\"}"),
      kClients + 1);
}

TEST_F(ObserveIntegrationTest, MgetHmgetHgetallExistsElementCounting) {
  StartObservers(redis_->address(), "");
  auto c = Connect(observers_->redis_port());
  ASSERT_TRUE(c != nullptr && c->err == 0);
  Command(c.get(), "MSET el:a 1 el:b 2");
  Command(c.get(), "HSET el:h f1 x f2 y");
  sink_.Clear();
  auto r = Command(c.get(), "MGET el:a el:nope el:b el:nada el:zip");
  ASSERT_EQ(r->elements, 5u);
  EXPECT_EQ(sink_.hits(), 2u);
  EXPECT_EQ(sink_.misses(), 3u);
  Command(c.get(), "HMGET el:h f1 f2 f3");
  EXPECT_EQ(sink_.hits(), 4u);
  EXPECT_EQ(sink_.misses(), 4u);
  Command(c.get(), "HGETALL el:h");
  Command(c.get(), "HGETALL el:none");
  Command(c.get(), "EXISTS el:a el:b el:nope");
  EXPECT_EQ(sink_.hits(), 7u);
  EXPECT_EQ(sink_.misses(), 6u);
}

TEST_F(ObserveIntegrationTest, MultiExecCountsTheQueuedReads) {
  StartObservers(redis_->address(), "");
  auto c = Connect(observers_->redis_port());
  ASSERT_TRUE(c != nullptr && c->err == 0);
  Command(c.get(), "SET tx:a 1");
  sink_.Clear();
  EXPECT_EQ(Command(c.get(), "MULTI")->type, REDIS_REPLY_STATUS);
  EXPECT_EQ(std::string(Command(c.get(), "GET tx:a")->str), "QUEUED");
  Command(c.get(), "GET tx:none");
  Command(c.get(), "MGET tx:a tx:none tx:a");
  auto exec = Command(c.get(), "EXEC");
  ASSERT_EQ(exec->type, REDIS_REPLY_ARRAY);
  ASSERT_EQ(exec->elements, 3u);
  EXPECT_EQ(sink_.hits(), 3u);
  EXPECT_EQ(sink_.misses(), 2u);
  EXPECT_EQ(sink_.cache_commands(), 5u);
  // A transaction aborted by a bad queued command is an error.
  Command(c.get(), "MULTI");
  Command(c.get(), "GET");
  auto aborted = Command(c.get(), "EXEC");
  EXPECT_EQ(aborted->type, REDIS_REPLY_ERROR);
  EXPECT_EQ(sink_.cache_errors(), 2u);
}

TEST_F(ObserveIntegrationTest, SubscribePassesThroughAndStopsCounting) {
  StartObservers(redis_->address(), "");
  auto sub = Connect(observers_->redis_port());
  ASSERT_TRUE(sub != nullptr && sub->err == 0);
  Command(sub.get(), "GET sub:x");
  auto r = Command(sub.get(), "SUBSCRIBE kpiscale-test");
  ASSERT_EQ(r->type, REDIS_REPLY_ARRAY);
  auto pub = Connect(redis_->port());
  ASSERT_TRUE(
      WaitFor([&] { return Command(pub.get(), "PUBLISH kpiscale-test hello")->integer == 1; }));
  void* raw = nullptr;
  ASSERT_EQ(redisGetReply(sub.get(), &raw), REDIS_OK);
  ReplyPtr msg(static_cast<redisReply*>(raw));
  ASSERT_EQ(msg->elements, 3u);
  EXPECT_EQ(std::string(msg->element[2]->str), "hello");
  EXPECT_EQ(sink_.cache_commands(), 1u);
  EXPECT_EQ(MetricValue(registry_,
                        "kpiscale_sidecar_cache_untracked_connections_total{reason=\"pubsub\"}"),
            1);
}

TEST_F(ObserveIntegrationTest, DeadRedisIsAConnectionErrorAndTheSidecarKeepsRunning) {
  uint16_t dead = testing::FreePort();
  StartObservers("127.0.0.1:" + std::to_string(dead), "");
  // Directly, the application would get a connection error ...
  auto direct = Connect(dead);
  EXPECT_NE(direct->err, 0);
  // ... through the sidecar the connection opens and the first command fails the same way a
  // dropped connection does.
  for (int i = 0; i < 2; ++i) {
    auto c = Connect(observers_->redis_port());
    ASSERT_TRUE(c != nullptr && c->err == 0);
    EXPECT_EQ(Command(c.get(), "GET k"), nullptr);
    EXPECT_NE(c->err, 0);
  }
  // Commands the relay saw before the failure count as cache errors; none is a hit or miss.
  EXPECT_EQ(sink_.hits() + sink_.misses(), 0u);
  EXPECT_EQ(MetricValue(registry_,
                        "kpiscale_sidecar_observe_upstream_failures_total{observer=\"redis\"}"),
            2);
}

TEST_F(ObserveIntegrationTest, RedisInfoPollerReportsServerWideDeltas) {
  DataObserverOptions o;
  o.redis_info_url = "redis://" + redis_->address();
  o.redis_info_interval = std::chrono::milliseconds(20);
  auto obs = StartDataObservers(o, sink_, registry_);
  ASSERT_TRUE(obs.ok()) << obs.status();
  auto c = Connect(redis_->port());
  Command(c.get(), "SET info:a 1");
  // Keep reading until the poller has seen at least three hits and three misses.
  ASSERT_TRUE(WaitFor([&] {
    Command(c.get(), "GET info:a");
    Command(c.get(), "GET info:none");
    uint64_t hits = 0;
    uint64_t misses = 0;
    for (const auto& s : sink_.server_wide()) {
      hits += s.hits;
      misses += s.misses;
    }
    return hits >= 3 && misses >= 3;
  }));
}

TEST_F(ObserveIntegrationTest, PsqlSimpleProtocolWithKnownLatency) {
  StartObservers("", pg_->address());
  const auto r = pg_->Psql("SELECT pg_sleep(0.2)", observers_->postgres_port());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_TRUE(WaitFor([&] { return sink_.db_queries() >= 1; }));
  const auto db = sink_.db();
  ASSERT_EQ(db.size(), 1u);  // psql -c sends one Query
  EXPECT_GE(db[0].seconds, 0.2);
  EXPECT_LT(db[0].seconds, 5.0);
  EXPECT_FALSE(db[0].error);
  // psql asks for TLS first (sslmode=prefer); the sidecar declines on the loopback hop.
  EXPECT_GE(MetricValue(registry_, "kpiscale_sidecar_db_ssl_requests_declined_total"), 1);
}

TEST_F(ObserveIntegrationTest, PsqlErrorsAreCounted) {
  StartObservers("", pg_->address());
  const auto r = pg_->Psql("SELECT 1/0", observers_->postgres_port());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("division by zero"), std::string::npos) << r.output;
  ASSERT_TRUE(WaitFor([&] { return sink_.db_queries() >= 1; }));
  EXPECT_TRUE(sink_.db()[0].error);
  EXPECT_EQ(MetricValue(registry_, "kpiscale_sidecar_db_errors_total"), 1);
}

// pgbench -M extended through the relay: each of clients x transactions is one slow query.
void ObserveIntegrationTest::PgbenchSleeps(int relay_threads, int clients, int transactions) {
  StartObservers("", pg_->address(), relay_threads);
  const std::string dir = testing::MakeTempDir("kpiscale-pgbench");
  {
    std::ofstream script(dir + "/sleep.sql");
    script << "SELECT pg_sleep(0.05);\n";
  }
  const auto r =
      RunCommand("pgbench -n -M extended -c " + std::to_string(clients) + " -t " +
                 std::to_string(transactions) + " -f " + dir + "/sleep.sql -h 127.0.0.1 -p " +
                 std::to_string(observers_->postgres_port()) + " -U postgres postgres");
  RunCommand("rm -rf " + dir);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const int want = clients * transactions;
  ASSERT_TRUE(WaitFor([&] {
    int slow = 0;
    for (const auto& q : sink_.db()) slow += q.seconds >= 0.05 ? 1 : 0;
    return slow == want;
  }));
  int slow = 0;
  for (const auto& q : sink_.db()) {
    EXPECT_FALSE(q.error);
    slow += q.seconds >= 0.05 ? 1 : 0;
  }
  EXPECT_EQ(slow, want);  // each transaction is Parse/Bind/Execute/Sync
}

TEST_F(ObserveIntegrationTest, PgbenchExtendedProtocolWithKnownLatency) { PgbenchSleeps(1, 2, 4); }

TEST_F(ObserveIntegrationTest, PgbenchOverSeveralRelayThreads) { PgbenchSleeps(2, 6, 2); }

TEST_F(ObserveIntegrationTest, CancelRequestIsRelayed) {
  StartObservers("", pg_->address());
  const std::string dsn = "host=127.0.0.1 port=" + std::to_string(observers_->postgres_port()) +
                          " user=postgres dbname=postgres sslmode=disable";
  PGconn* conn = PQconnectdb(dsn.c_str());
  ASSERT_EQ(PQstatus(conn), CONNECTION_OK) << PQerrorMessage(conn);
  ASSERT_EQ(PQsendQuery(conn, "SELECT pg_sleep(30)"), 1);
  PGcancel* cancel = PQgetCancel(conn);
  char err[256];
  // The backend may not have started the sleep yet; cancel until the query ends.
  PGresult* res = nullptr;
  ASSERT_TRUE(WaitFor([&] {
    PQcancel(cancel, err, sizeof(err));
    PQconsumeInput(conn);
    return PQisBusy(conn) == 0;
  }));
  std::string state;
  while ((res = PQgetResult(conn)) != nullptr) {
    if (PQresultStatus(res) == PGRES_FATAL_ERROR) state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    PQclear(res);
  }
  PQfreeCancel(cancel);
  PQfinish(conn);
  EXPECT_EQ(state, "57014");  // query_canceled
  ASSERT_TRUE(WaitFor([&] { return sink_.db_queries() == 1; }));
  EXPECT_TRUE(sink_.db()[0].error);
  EXPECT_GE(MetricValue(registry_, "kpiscale_sidecar_db_cancel_requests_total"), 1);
}

TEST_F(ObserveIntegrationTest, DeadPostgresGivesAConnectionErrorAndTheSidecarKeepsRunning) {
  const uint16_t dead = testing::FreePort();
  StartObservers("", "127.0.0.1:" + std::to_string(dead));
  const auto direct = pg_->Psql("SELECT 1", dead);
  EXPECT_EQ(direct.exit_code, 2) << direct.output;
  for (int i = 0; i < 2; ++i) {
    const auto via = pg_->Psql("SELECT 1", observers_->postgres_port());
    EXPECT_EQ(via.exit_code, 2) << via.output;  // psql: connection to server failed
    EXPECT_NE(via.output.find("cannot reach the PostgreSQL server"), std::string::npos)
        << via.output;
  }
  EXPECT_EQ(MetricValue(registry_,
                        "kpiscale_sidecar_observe_upstream_failures_total{observer=\"postgres\"}"),
            2);
}

TEST_F(ObserveIntegrationTest, PgPollerProbesAndReadsStatStatements) {
  ASSERT_EQ(pg_->Psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements").exit_code, 0);
  DataObserverOptions o;
  o.postgres_dsn = pg_->dsn();
  o.postgres_poll_interval = std::chrono::milliseconds(50);
  o.postgres_top_statements = 3;
  auto obs = StartDataObservers(o, sink_, registry_);
  ASSERT_TRUE(obs.ok()) << obs.status();
  ASSERT_TRUE(WaitFor([&] {
    pg_->Psql("SELECT count(*) FROM pg_class");
    return MetricValue(registry_, "kpiscale_sidecar_pg_probe_duration_seconds_count") >= 2 &&
           prometheus::TextSerializer()
                   .Serialize(registry_.Collect())
                   .find("kpiscale_sidecar_pg_statement_mean_seconds{queryid=") !=
               std::string::npos;
  }));
  EXPECT_EQ(MetricValue(registry_, "kpiscale_sidecar_pg_probe_failures_total"), 0);
}

}  // namespace
}  // namespace kpiscale::sidecar
