#include <gtest/gtest.h>

#include "failure_agent.h"

namespace kpiscale::examples {
namespace {

TEST(ParseListQueryTest, DefaultsAndFilters) {
  auto q = ParseListQuery({});
  ASSERT_TRUE(q.ok());
  EXPECT_FALSE(q->service.has_value());
  EXPECT_FALSE(q->status.has_value());
  EXPECT_EQ(q->limit, 50);
  q = ParseListQuery({{"service", "checkout"}, {"status", "open"}, {"limit", "10"}});
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(*q->service, "checkout");
  EXPECT_EQ(*q->status, "open");
  EXPECT_EQ(q->limit, 10);
  q = ParseListQuery({{"service", ""}, {"status", ""}});  // empty means no filter
  ASSERT_TRUE(q.ok());
  EXPECT_FALSE(q->service.has_value());
}

TEST(ParseListQueryTest, RejectsBadValues) {
  for (const auto& params :
       std::vector<std::multimap<std::string, std::string>>{{{"limit", "0"}},
                                                            {{"limit", "501"}},
                                                            {{"limit", "ten"}},
                                                            {{"limit", "5x"}},
                                                            {{"status", "closed"}},
                                                            {{"service", "bad name"}},
                                                            {{"service", std::string(201, 'a')}}}) {
    const auto q = ParseListQuery(params);
    EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument) << params.begin()->second;
  }
}

TEST(ParseNewFailureTest, ValidBodyWithDefaults) {
  const auto f = ParseNewFailure(
      R"({"service_name":"checkout","error_message":"exit code 1","details":{"attempt":2}})");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->service_name, "checkout");
  EXPECT_EQ(f->status, "open");
  EXPECT_EQ(f->details["attempt"], 2);
  EXPECT_EQ(f->pipeline, "");
}

TEST(ParseNewFailureTest, RejectsBadBodies) {
  for (const char* body : {
           "",
           "[]",
           "{",
           R"({"error_message":"x"})",
           R"({"service_name":"a"})",
           R"({"service_name":"a","error_message":""})",
           R"({"service_name":"a","error_message":"x","status":"done"})",
           R"({"service_name":"a","error_message":"x","details":[1]})",
           R"({"service_name":"a","error_message":7})",
           R"({"service_name":"a b","error_message":"x"})",
       }) {
    EXPECT_EQ(ParseNewFailure(body).status().code(), absl::StatusCode::kInvalidArgument) << body;
  }
  const std::string huge =
      R"({"service_name":"a","error_message":")" + std::string(20000, 'x') + "\"}";
  EXPECT_FALSE(ParseNewFailure(huge).ok());
}

TEST(FailureJsonTest, RoundTrips) {
  Failure f;
  f.id = 42;
  f.service_name = "search";
  f.status = "resolved";
  f.pipeline = "pipeline-3";
  f.job = "lint";
  f.error_message = "OOMKilled";
  f.details = {{"runner", "r1"}};
  f.created_at = "2026-01-02T03:04:05.000000Z";
  const auto back = FailureFromJson(FailureToJson(f));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(FailureToJson(*back), FailureToJson(f));
  EXPECT_FALSE(FailureFromJson(nlohmann::json::array()).ok());
  EXPECT_FALSE(FailureFromJson(nlohmann::json{{"id", "x"}}).ok());
}

TEST(CacheKeyTest, KeysAreDistinctAndListsShareThePrefix) {
  EXPECT_EQ(ItemCacheKey(7), "failures:item:7");
  ListQuery a;
  ListQuery b;
  b.service = "checkout";
  ListQuery c = b;
  c.limit = 10;
  EXPECT_NE(ListCacheKey(a), ListCacheKey(b));
  EXPECT_NE(ListCacheKey(b), ListCacheKey(c));
  for (const auto& q : {a, b, c}) EXPECT_EQ(ListCacheKey(q).rfind("failures:list:", 0), 0u);
}

TEST(MigrationsTest, PartitionedTableWithTheFourIndexes) {
  ASSERT_EQ(Migrations().size(), 1u);
  const std::string& m = Migrations()[0];
  EXPECT_NE(m.find("PARTITION BY RANGE (created_at)"), std::string::npos);
  for (const char* part : {"failure_logs_2024", "failure_logs_2025", "failure_logs_2026",
                           "failure_logs_default PARTITION OF failure_logs DEFAULT"}) {
    EXPECT_NE(m.find(part), std::string::npos) << part;
  }
  for (const char* index :
       {"(created_at DESC)", "(status, created_at DESC)", "(service_name, created_at DESC)",
        "(service_name, status, created_at DESC)"}) {
    EXPECT_NE(m.find(index), std::string::npos) << index;
  }
}

TEST(CacheTest, DisabledOrUnreachableCacheDegradesQuietly) {
  Cache off(CacheOptions{});
  EXPECT_FALSE(off.enabled());
  EXPECT_FALSE(off.Get("k").has_value());
  off.Set("k", nlohmann::json{{"a", 1}});
  off.ClearPattern("*");
  EXPECT_EQ(off.failures(), 0u);

  CacheOptions dead;
  dead.address = "127.0.0.1:1";  // nothing listens on port 1
  Cache cache(dead);
  EXPECT_FALSE(cache.Get("k").has_value());
  EXPECT_EQ(cache.failures(), 1u);
  // Within the back-off period Redis is not tried again.
  cache.Set("k", nlohmann::json{{"a", 1}});
  cache.Delete("k");
  EXPECT_EQ(cache.failures(), 1u);
}

}  // namespace
}  // namespace kpiscale::examples
