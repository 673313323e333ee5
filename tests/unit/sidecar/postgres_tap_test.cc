#include <gtest/gtest.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <string>

#include "../../integration/observe/recording_sink.h"
#include "kpiscale/sidecar/observe/observe_stats.h"
#include "kpiscale/sidecar/observe/pg_tap.h"

namespace kpiscale::sidecar::observe {
namespace {

using std::chrono::milliseconds;

std::string Be32(uint32_t v) {
  std::string s(4, '\0');
  s[0] = static_cast<char>(v >> 24);
  s[1] = static_cast<char>(v >> 16);
  s[2] = static_cast<char>(v >> 8);
  s[3] = static_cast<char>(v);
  return s;
}
std::string Msg(char type, const std::string& body = "") {
  return std::string(1, type) + Be32(static_cast<uint32_t>(4 + body.size())) + body;
}
std::string Startup() {
  const std::string body = std::string("user\0app\0\0", 10);
  return Be32(static_cast<uint32_t>(8 + body.size())) + Be32(kPgProtocol3) + body;
}
const std::string kAuthOk = Msg('R', Be32(0)) + Msg('S', std::string("a\0b\0", 4)) +
                            Msg('K', Be32(1) + Be32(2)) + Msg('Z', "I");

class PgTapTest : public ::testing::Test {
 protected:
  PgTapTest() : stats_(*DbStats::Create(registry_)), tap_(sink_, stats_) {}

  SteadyTime At(int ms) const { return t0_ + milliseconds(ms); }
  void Client(const std::string& b, int ms = 0) { tap_.OnClientBytes(b.data(), b.size(), At(ms)); }
  void Server(const std::string& b, int ms = 0) { tap_.OnServerBytes(b.data(), b.size(), At(ms)); }
  void Connect() {
    const std::string s = Startup();
    const Intercept ic = tap_.InterceptClient(s.data(), s.size());
    ASSERT_EQ(ic.action, Intercept::Action::kForward);
    Client(s);
    Server(kAuthOk);
  }

  prometheus::Registry registry_;
  DbStats stats_;
  testing::RecordingSink sink_;
  PgTap tap_;
  const SteadyTime t0_ = std::chrono::steady_clock::now();
};

TEST_F(PgTapTest, DeclinesSslRequestThenForwardsStartup) {
  EXPECT_TRUE(tap_.WantsIntercept());
  const std::string ssl = Be32(8) + Be32(kPgSslRequest);
  EXPECT_EQ(tap_.InterceptClient(ssl.data(), 5).action, Intercept::Action::kNeedMore);
  const Intercept ic = tap_.InterceptClient(ssl.data(), ssl.size());
  EXPECT_EQ(ic.action, Intercept::Action::kAnswer);
  EXPECT_EQ(ic.consumed, 8u);
  EXPECT_EQ(ic.answer, "N");
  EXPECT_TRUE(tap_.WantsIntercept());
  EXPECT_EQ(stats_.ssl_declined.Value(), 1);
  const std::string s = Startup();
  EXPECT_EQ(tap_.InterceptClient(s.data(), s.size()).action, Intercept::Action::kForward);
  EXPECT_FALSE(tap_.WantsIntercept());
}

TEST_F(PgTapTest, AuthenticationReadyForQueryIsNotAQuery) {
  Connect();
  EXPECT_EQ(sink_.db_queries(), 0u);
  EXPECT_TRUE(tap_.tracking());
}

TEST_F(PgTapTest, SimpleQueryFromQueryToReadyForQuery) {
  Connect();
  Client(Msg('Q', std::string("SELECT pg_sleep(0.05)\0", 22)), 10);
  Server(Msg('T', "x") + Msg('D', "y") + Msg('C', "SELECT 1"), 58);
  EXPECT_EQ(sink_.db_queries(), 0u);
  Server(Msg('Z', "I"), 61);
  const auto db = sink_.db();
  ASSERT_EQ(db.size(), 1u);
  EXPECT_DOUBLE_EQ(db[0].seconds, 0.051);
  EXPECT_FALSE(db[0].error);
  EXPECT_EQ(stats_.queries.Value(), 1);
}

TEST_F(PgTapTest, ExtendedBatchFromFirstMessageToSyncAnswer) {
  Connect();
  Client(Msg('P', "p") + Msg('B', "b"), 0);
  Client(Msg('D', "d") + Msg('E', "e") + Msg('S'), 3);
  Server(Msg('1') + Msg('2') + Msg('T') + Msg('D') + Msg('C') + Msg('Z', "I"), 20);
  const auto db = sink_.db();
  ASSERT_EQ(db.size(), 1u);
  EXPECT_DOUBLE_EQ(db[0].seconds, 0.020);
}

TEST_F(PgTapTest, PipelinedSyncsMatchInOrderAndBareSyncIsNotAQuery) {
  Connect();
  Client(Msg('B') + Msg('E') + Msg('S'), 0);
  Client(Msg('S'), 1);
  Client(Msg('B') + Msg('E') + Msg('S'), 2);
  Server(Msg('2') + Msg('C') + Msg('Z', "I"), 5);
  Server(Msg('Z', "I"), 6);
  Server(Msg('E', "Serror") + Msg('Z', "I"), 9);
  const auto db = sink_.db();
  ASSERT_EQ(db.size(), 2u);
  EXPECT_DOUBLE_EQ(db[0].seconds, 0.005);
  EXPECT_FALSE(db[0].error);
  EXPECT_DOUBLE_EQ(db[1].seconds, 0.007);
  EXPECT_TRUE(db[1].error);
  EXPECT_EQ(stats_.errors.Value(), 1);
}

TEST_F(PgTapTest, ErrorBeforeSyncArrivesBelongsToTheOpenBatch) {
  Connect();
  Client(Msg('P') + Msg('B') + Msg('E') + Msg('H'), 0);
  Server(Msg('E', "Sboom"), 2);
  Client(Msg('S'), 3);
  Server(Msg('Z', "I"), 4);
  ASSERT_EQ(sink_.db().size(), 1u);
  EXPECT_TRUE(sink_.db()[0].error);
}

TEST_F(PgTapTest, SimpleQueryClosesAnOpenExtendedBatch) {
  Connect();
  Client(Msg('P') + Msg('B') + Msg('E'), 0);
  Client(Msg('Q', std::string("COMMIT\0", 7)), 5);
  Server(Msg('C') + Msg('C') + Msg('Z', "I"), 8);
  ASSERT_EQ(sink_.db().size(), 1u);
  EXPECT_DOUBLE_EQ(sink_.db()[0].seconds, 0.008);
}

TEST_F(PgTapTest, CopyPassesThrough) {
  Connect();
  Client(Msg('Q', std::string("COPY t FROM STDIN\0", 18)), 0);
  Server(Msg('G', std::string(3, '\0')), 1);
  Client(Msg('d', "1\n") + Msg('d', "2\n") + Msg('c'), 2);
  Server(Msg('C', "COPY 2") + Msg('Z', "I"), 4);
  ASSERT_EQ(sink_.db().size(), 1u);
  EXPECT_DOUBLE_EQ(sink_.db()[0].seconds, 0.004);
}

TEST_F(PgTapTest, CancelRequestIsCounted) {
  const std::string cancel = Be32(16) + Be32(kPgCancelRequest) + Be32(1) + Be32(2);
  EXPECT_EQ(tap_.InterceptClient(cancel.data(), cancel.size()).action, Intercept::Action::kForward);
  Client(cancel);
  EXPECT_EQ(stats_.cancel_requests.Value(), 1);
  EXPECT_TRUE(tap_.tracking());
}

TEST_F(PgTapTest, ServerLossCountsPendingQueriesAsErrors) {
  Connect();
  Client(Msg('Q', std::string("SELECT 1\0", 9)), 0);
  Server(Msg('E', "SFATAL"), 3);
  tap_.OnClose(CloseReason::kUpstreamClosed, At(4));
  ASSERT_EQ(sink_.db().size(), 1u);
  EXPECT_TRUE(sink_.db()[0].error);
}

TEST_F(PgTapTest, FramingErrorsAndUnmatchedRepliesStopCounting) {
  Connect();
  Server(Msg('Z', "I"));
  EXPECT_FALSE(tap_.tracking());
  EXPECT_EQ(stats_.untracked_unmatched_reply.Value(), 1);

  PgTap tap(sink_, stats_);
  const std::string s = Startup();
  tap.OnClientBytes(s.data(), s.size(), At(0));
  const std::string bad = std::string("Q") + Be32(1);
  tap.OnClientBytes(bad.data(), bad.size(), At(0));
  EXPECT_FALSE(tap.tracking());
  EXPECT_EQ(stats_.untracked_parse_error.Value(), 1);
}

TEST_F(PgTapTest, UpstreamFailureAnswerIsAnErrorResponse) {
  const std::string answer = tap_.UpstreamFailureAnswer("Connection refused");
  ASSERT_FALSE(answer.empty());
  EXPECT_EQ(answer[0], 'E');
  EXPECT_NE(answer.find("Connection refused"), std::string::npos);
}

}  // namespace
}  // namespace kpiscale::sidecar::observe
