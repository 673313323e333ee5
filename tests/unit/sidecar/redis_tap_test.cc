#include <gtest/gtest.h>
#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <string>

#include "../../integration/observe/recording_sink.h"
#include "kpiscale/sidecar/observe/observe_stats.h"
#include "kpiscale/sidecar/observe/resp_tap.h"

namespace kpiscale::sidecar::observe {
namespace {

using std::chrono::milliseconds;

class RespTapTest : public ::testing::Test {
 protected:
  RespTapTest() : stats_(*CacheStats::Create(registry_)), tap_(sink_, stats_) {}

  SteadyTime At(int ms) const { return t0_ + milliseconds(ms); }
  void Client(const std::string& bytes, int ms = 0) {
    tap_.OnClientBytes(bytes.data(), bytes.size(), At(ms));
  }
  void Server(const std::string& bytes, int ms = 0) {
    tap_.OnServerBytes(bytes.data(), bytes.size(), At(ms));
  }
  static std::string Cmd(std::initializer_list<std::string> args) {
    std::string out = "*" + std::to_string(args.size()) + "\r\n";
    for (const auto& a : args) out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
    return out;
  }

  prometheus::Registry registry_;
  CacheStats stats_;
  testing::RecordingSink sink_;
  RespTap tap_;
  const SteadyTime t0_ = std::chrono::steady_clock::now();
};

TEST_F(RespTapTest, GetHitAndMissWithLatency) {
  Client(Cmd({"GET", "a"}), 0);
  Server("$3\r\nfoo\r\n", 2);
  Client(Cmd({"get", "b"}), 10);
  Server("$-1\r\n", 15);
  const auto cache = sink_.cache();
  ASSERT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache[0].result.hits, 1u);
  EXPECT_EQ(cache[0].result.misses, 0u);
  EXPECT_DOUBLE_EQ(cache[0].seconds, 0.002);
  EXPECT_EQ(cache[1].result.misses, 1u);
  EXPECT_DOUBLE_EQ(cache[1].seconds, 0.005);
  EXPECT_EQ(stats_.hits.Value(), 1);
  EXPECT_EQ(stats_.misses.Value(), 1);
  EXPECT_EQ(stats_.commands.Value(), 2);
}

TEST_F(RespTapTest, PipelinedRepliesMatchInOrder) {
  Client(Cmd({"GET", "a"}) + Cmd({"SET", "b", "1"}) + Cmd({"GET", "c"}) + Cmd({"GET", "d"}), 0);
  Server("$1\r\nx\r\n+OK\r\n$-", 3);
  Server("1\r\n$2\r\nyy\r\n", 7);
  const auto cache = sink_.cache();
  ASSERT_EQ(cache.size(), 4u);
  EXPECT_EQ(cache[0].result.hits, 1u);
  EXPECT_EQ(cache[1].result.hits + cache[1].result.misses, 0u);  // SET is not a read
  EXPECT_EQ(cache[2].result.misses, 1u);
  EXPECT_DOUBLE_EQ(cache[2].seconds, 0.007);  // the reply's last byte came at 7 ms
  EXPECT_EQ(cache[3].result.hits, 1u);
  EXPECT_EQ(sink_.hits(), 2u);
  EXPECT_EQ(sink_.misses(), 1u);
}

TEST_F(RespTapTest, LatencyStartsAtTheFirstRequestByte) {
  const std::string cmd = Cmd({"GET", "key"});
  tap_.OnClientBytes(cmd.data(), 5, At(0));
  tap_.OnClientBytes(cmd.data() + 5, cmd.size() - 5, At(4));
  Server("$-1\r\n", 6);
  ASSERT_EQ(sink_.cache().size(), 1u);
  EXPECT_DOUBLE_EQ(sink_.cache()[0].seconds, 0.006);
}

TEST_F(RespTapTest, MgetAndHmgetCountPerElement) {
  Client(Cmd({"MGET", "a", "b", "c"}) + Cmd({"HMGET", "h", "f1", "f2"}));
  Server("*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n3\r\n*2\r\n$-1\r\n$-1\r\n");
  const auto cache = sink_.cache();
  ASSERT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache[0].result.hits, 2u);
  EXPECT_EQ(cache[0].result.misses, 1u);
  EXPECT_EQ(cache[1].result.hits, 0u);
  EXPECT_EQ(cache[1].result.misses, 2u);
}

TEST_F(RespTapTest, HgetallExistsGetexGetdelHget) {
  Client(Cmd({"HGETALL", "h"}) + Cmd({"HGETALL", "none"}) + Cmd({"EXISTS", "a", "b", "c"}) +
         Cmd({"GETEX", "a"}) + Cmd({"GETDEL", "a"}) + Cmd({"HGET", "h", "f"}));
  Server("*2\r\n$1\r\nf\r\n$1\r\nv\r\n*0\r\n:2\r\n$1\r\nv\r\n$-1\r\n$1\r\nv\r\n");
  const auto cache = sink_.cache();
  ASSERT_EQ(cache.size(), 6u);
  EXPECT_EQ(cache[0].result.hits, 1u);
  EXPECT_EQ(cache[1].result.misses, 1u);
  EXPECT_EQ(cache[2].result.hits, 2u);
  EXPECT_EQ(cache[2].result.misses, 1u);
  EXPECT_EQ(cache[3].result.hits, 1u);
  EXPECT_EQ(cache[4].result.misses, 1u);
  EXPECT_EQ(cache[5].result.hits, 1u);
}

TEST_F(RespTapTest, ErrorRepliesAreErrorsNotMisses) {
  Client(Cmd({"GET", "list"}) + Cmd({"NOSUCH"}));
  Server("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-ERR unknown\r\n");
  EXPECT_EQ(sink_.cache_errors(), 2u);
  EXPECT_EQ(sink_.misses(), 0u);
  EXPECT_EQ(stats_.errors.Value(), 2);
}

TEST_F(RespTapTest, MultiExecCountsQueuedReadsFromTheExecArray) {
  Client(Cmd({"MULTI"}) + Cmd({"GET", "a"}) + Cmd({"SET", "b", "1"}) + Cmd({"MGET", "a", "z"}) +
         Cmd({"EXEC"}));
  Server(
      "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n$1\r\n1\r\n+OK\r\n*2\r\n$1\r\n1\r\n$-1\r\n");
  const auto cache = sink_.cache();
  ASSERT_EQ(cache.size(), 5u);  // MULTI, three queued commands, EXEC
  for (int i = 0; i < 4; ++i) EXPECT_EQ(cache[i].result.hits + cache[i].result.misses, 0u);
  EXPECT_EQ(cache[4].result.hits, 2u);
  EXPECT_EQ(cache[4].result.misses, 1u);
  EXPECT_FALSE(cache[4].result.error);
  // Back to normal counting after EXEC.
  Client(Cmd({"GET", "a"}));
  Server("$-1\r\n");
  EXPECT_EQ(sink_.misses(), 2u);
}

TEST_F(RespTapTest, AbortedAndDiscardedTransactions) {
  // WATCH made EXEC return nil: nothing ran.
  Client(Cmd({"MULTI"}) + Cmd({"GET", "a"}) + Cmd({"EXEC"}));
  Server("+OK\r\n+QUEUED\r\n*-1\r\n");
  EXPECT_EQ(sink_.hits() + sink_.misses(), 0u);
  EXPECT_EQ(sink_.cache_errors(), 0u);
  // A bad queued command aborts EXEC.
  Client(Cmd({"MULTI"}) + Cmd({"GET"}) + Cmd({"EXEC"}));
  Server(
      "+OK\r\n-ERR wrong number of arguments for 'get' command\r\n"
      "-EXECABORT Transaction discarded because of previous errors.\r\n");
  EXPECT_EQ(sink_.cache_errors(), 2u);
  Client(Cmd({"MULTI"}) + Cmd({"GET", "a"}) + Cmd({"DISCARD"}) + Cmd({"GET", "a"}));
  Server("+OK\r\n+QUEUED\r\n+OK\r\n$1\r\n1\r\n");
  EXPECT_EQ(sink_.hits(), 1u);
  EXPECT_TRUE(tap_.tracking());
}

TEST_F(RespTapTest, SubscribeStopsCountingTheConnection) {
  Client(Cmd({"GET", "a"}) + Cmd({"SUBSCRIBE", "ch"}));
  Server("$1\r\n1\r\n*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
  EXPECT_FALSE(tap_.tracking());
  EXPECT_EQ(sink_.cache_commands(), 1u);  // the GET before it still counted
  Server("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
  EXPECT_EQ(sink_.cache_commands(), 1u);
  EXPECT_EQ(stats_.untracked_pubsub.Value(), 1);
}

TEST_F(RespTapTest, MonitorClientReplyAndResp3StopCounting) {
  struct Case {
    std::string command;
    prometheus::Counter* counter;
  };
  for (const auto& c : {Case{Cmd({"MONITOR"}), &stats_.untracked_monitor},
                        Case{Cmd({"CLIENT", "REPLY", "OFF"}), &stats_.untracked_client_reply},
                        Case{Cmd({"HELLO", "3"}), &stats_.untracked_resp3}}) {
    RespTap tap(sink_, stats_);
    tap.OnClientBytes(c.command.data(), c.command.size(), At(0));
    EXPECT_TRUE(tap.tracking());
    tap.OnServerBytes("+OK\r\n", 5, At(1));
    EXPECT_FALSE(tap.tracking()) << c.command;
    EXPECT_EQ(c.counter->Value(), 1);
  }
  EXPECT_EQ(sink_.cache_commands(), 0u);
}

TEST_F(RespTapTest, BlockingCommandsAreTimedApart) {
  Client(Cmd({"BLPOP", "q", "0"}) + Cmd({"XREAD", "BLOCK", "100", "STREAMS", "s", "$"}) +
             Cmd({"XREAD", "STREAMS", "s", "0"}),
         0);
  Server("*2\r\n$1\r\nq\r\n$1\r\nv\r\n*-1\r\n*-1\r\n", 500);
  EXPECT_EQ(stats_.blocking_commands.Value(), 2);
  EXPECT_EQ(sink_.cache_commands(), 1u);  // only the non-blocking XREAD
}

TEST_F(RespTapTest, InlineCommandsCount) {
  Client("GET a\r\n\r\nGET b\r\n");
  Server("$1\r\n1\r\n$-1\r\n");
  EXPECT_EQ(sink_.hits(), 1u);
  EXPECT_EQ(sink_.misses(), 1u);
}

TEST_F(RespTapTest, ParseFailureStopsCountingButIsCounted) {
  Client("*1\r\n+bad\r\n");
  EXPECT_FALSE(tap_.tracking());
  EXPECT_EQ(stats_.untracked_parse_error.Value(), 1);
  Server("-ERR Protocol error\r\n");
  EXPECT_EQ(sink_.cache_commands(), 0u);
}

TEST_F(RespTapTest, BadReplyStreamAndUnmatchedRepliesStopCounting) {
  {
    RespTap tap(sink_, stats_);
    tap.OnServerBytes("+hello\r\n", 8, At(0));
    EXPECT_FALSE(tap.tracking());
    EXPECT_EQ(stats_.untracked_unmatched_reply.Value(), 1);
  }
  {
    RespTap tap(sink_, stats_);
    const std::string get = Cmd({"GET", "a"});
    tap.OnClientBytes(get.data(), get.size(), At(0));
    tap.OnServerBytes("!garbage\r\n", 10, At(1));
    EXPECT_FALSE(tap.tracking());
    EXPECT_EQ(stats_.untracked_parse_error.Value(), 1);
  }
}

TEST_F(RespTapTest, LostConnectionCountsPendingCommandsAsErrors) {
  Client(Cmd({"GET", "a"}) + Cmd({"GET", "b"}), 0);
  Server("$1\r\n1\r\n", 1);
  tap_.OnClose(CloseReason::kUpstreamClosed, At(9));
  const auto cache = sink_.cache();
  ASSERT_EQ(cache.size(), 2u);
  EXPECT_TRUE(cache[1].result.error);
  EXPECT_DOUBLE_EQ(cache[1].seconds, 0.009);
}

TEST_F(RespTapTest, ClientLeavingIsNotAnError) {
  Client(Cmd({"GET", "a"}));
  tap_.OnClose(CloseReason::kClientClosed, At(1));
  EXPECT_EQ(sink_.cache_commands(), 0u);
}

TEST_F(RespTapTest, TooManyPendingCommandsStopCounting) {
  std::string many;
  for (std::size_t i = 0; i <= RespTap::kMaxPending; ++i) many += "PING\r\n";
  Client(many);
  EXPECT_FALSE(tap_.tracking());
  EXPECT_EQ(stats_.untracked_overflow.Value(), 1);
}

TEST(RespClassifyTest, Table) {
  RespCommand c;
  c.name = "GET";
  EXPECT_EQ(ClassifyRespCommand(c), RespKind::kSingleRead);
  c.name = "SET";
  EXPECT_EQ(ClassifyRespCommand(c), RespKind::kOther);
  c.name = "CLIENT";
  c.args[0] = "REPLY";
  c.args[1] = "ON";
  EXPECT_EQ(ClassifyRespCommand(c), RespKind::kOther);
  c.args[1] = "SKIP";
  EXPECT_EQ(ClassifyRespCommand(c), RespKind::kStopNoReply);
  c = RespCommand{};
  c.name = "HELLO";
  c.argc = 2;
  c.args[0] = "2";
  EXPECT_EQ(ClassifyRespCommand(c), RespKind::kOther);
  c.argc = 1;
  c.args[0] = "";
  EXPECT_EQ(ClassifyRespCommand(c), RespKind::kOther);
  c.name = "XREADGROUP";
  c.args = {"GROUP", "g", "c", "BLOCK"};
  EXPECT_EQ(ClassifyRespCommand(c), RespKind::kBlocking);
}

}  // namespace
}  // namespace kpiscale::sidecar::observe
