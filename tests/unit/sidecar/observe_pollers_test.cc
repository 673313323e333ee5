#include <gtest/gtest.h>

#include "kpiscale/sidecar/observe/pollers.h"

namespace kpiscale::sidecar::observe {
namespace {

TEST(ParseInfoStatsTest, ReadsKeyspaceCounters) {
  const std::string info =
      "# Stats\r\ntotal_connections_received:5\r\nkeyspace_hits:42\r\nkeyspace_misses:7\r\n"
      "evicted_keys:0\r\n";
  const auto c = ParseInfoStats(info);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->hits, 42u);
  EXPECT_EQ(c->misses, 7u);
}

TEST(ParseInfoStatsTest, MissingOrBadCountersAreErrors) {
  EXPECT_FALSE(ParseInfoStats("# Stats\r\nkeyspace_hits:1\r\n").ok());
  EXPECT_FALSE(ParseInfoStats("keyspace_hits:x\r\nkeyspace_misses:1\r\n").ok());
  EXPECT_FALSE(ParseInfoStats("").ok());
}

TEST(KeyspaceDeltasTest, FirstSampleIsBaselineAndDecreaseIsReset) {
  KeyspaceDeltas d;
  EXPECT_FALSE(d.Update({100, 50}).has_value());
  auto delta = d.Update({130, 55});
  ASSERT_TRUE(delta.has_value());
  EXPECT_EQ(delta->hits, 30u);
  EXPECT_EQ(delta->misses, 5u);
  delta = d.Update({4, 1});  // CONFIG RESETSTAT
  ASSERT_TRUE(delta.has_value());
  EXPECT_EQ(delta->hits, 4u);
  EXPECT_EQ(delta->misses, 1u);
}

TEST(StatementDeltasTest, MeanPerIntervalTopNByTotalTime) {
  StatementDeltas d(2);
  EXPECT_TRUE(d.Update({{1, 10, 100.0}, {2, 10, 10.0}, {3, 5, 1000.0}}).empty());
  const auto top = d.Update({{1, 20, 300.0},    // +10 calls, +200 ms: mean 20 ms
                             {2, 30, 30.0},     // +20 calls, +20 ms
                             {3, 5, 1000.0},    // idle
                             {4, 1, 5000.0}});  // new: no interval yet
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].queryid, 1);
  EXPECT_EQ(top[0].calls, 10);
  EXPECT_DOUBLE_EQ(top[0].mean_seconds, 0.02);
  EXPECT_EQ(top[1].queryid, 2);
  EXPECT_DOUBLE_EQ(top[1].mean_seconds, 0.001);
}

TEST(StatementDeltasTest, ResetOrEvictionDropsTheInterval) {
  StatementDeltas d(5);
  d.Update({{1, 100, 1000.0}});
  EXPECT_TRUE(d.Update({{1, 3, 9.0}}).empty());
  const auto top = d.Update({{1, 5, 19.0}});
  ASSERT_EQ(top.size(), 1u);
  EXPECT_DOUBLE_EQ(top[0].mean_seconds, 0.005);
}

TEST(StatementDeltasTest, SameQueryIdFromSeveralUsersIsSummed) {
  StatementDeltas d(5);
  d.Update({{7, 1, 1.0}, {7, 1, 1.0}});
  const auto top = d.Update({{7, 2, 3.0}, {7, 4, 5.0}});
  ASSERT_EQ(top.size(), 1u);
  EXPECT_EQ(top[0].calls, 4);
  EXPECT_DOUBLE_EQ(top[0].total_seconds, 0.006);
}

}  // namespace
}  // namespace kpiscale::sidecar::observe
