#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kpiscale/sidecar/observe/pg_wire.h"

namespace kpiscale::sidecar::observe {
// A namespace of its own: in unity builds several test files share one translation unit.
namespace postgres_wire_test {
namespace {

std::string Be32(uint32_t v) {
  std::string s(4, '\0');
  s[0] = static_cast<char>(v >> 24);
  s[1] = static_cast<char>(v >> 16);
  s[2] = static_cast<char>(v >> 8);
  s[3] = static_cast<char>(v);
  return s;
}

std::string Startup(uint32_t code, const std::string& body = "") {
  return Be32(static_cast<uint32_t>(8 + body.size())) + Be32(code) + body;
}

std::string Msg(char type, const std::string& body = "") {
  return std::string(1, type) + Be32(static_cast<uint32_t>(4 + body.size())) + body;
}

TEST(PgFramerTest, FrontendStartupThenTypedMessages) {
  const std::string user = std::string("user\0app\0\0", 10);
  const std::string bytes =
      Startup(kPgProtocol3, user) + Msg('Q', std::string("SELECT 1\0", 9)) + Msg('X');
  PgFramer framer(true);
  std::vector<PgEvent> events;
  ASSERT_TRUE(framer.Feed(bytes.data(), bytes.size(), &events));
  ASSERT_EQ(events.size(), 6u);
  EXPECT_EQ(events[0].kind, PgEvent::Kind::kStartup);
  EXPECT_FALSE(events[0].complete);
  EXPECT_TRUE(events[1].complete);
  EXPECT_EQ(events[2].type, 'Q');
  EXPECT_EQ(events[2].length, 13u);
  EXPECT_FALSE(events[2].complete);
  EXPECT_TRUE(events[3].complete);
  EXPECT_EQ(events[4].type, 'X');
  EXPECT_FALSE(framer.in_startup_phase());
}

TEST(PgFramerTest, SslRequestKeepsTheStartupPhase) {
  const std::string bytes = Startup(kPgSslRequest) + Startup(kPgGssEncRequest) +
                            Startup(kPgProtocol3 + 2, std::string("\0", 1));
  PgFramer framer(true);
  std::vector<PgEvent> events;
  ASSERT_TRUE(framer.Feed(bytes.data(), bytes.size(), &events));
  ASSERT_EQ(events.size(), 6u);
  EXPECT_EQ(events[0].kind, PgEvent::Kind::kSslRequest);
  EXPECT_EQ(events[2].kind, PgEvent::Kind::kGssEncRequest);
  EXPECT_EQ(events[4].kind, PgEvent::Kind::kStartup);  // protocol 3.2 is still 3.x
}

TEST(PgFramerTest, CancelRequestEndsTheStream) {
  const std::string cancel = Startup(kPgCancelRequest, Be32(1234) + Be32(5678));
  PgFramer framer(true);
  std::vector<PgEvent> events;
  ASSERT_TRUE(framer.Feed(cancel.data(), cancel.size(), &events));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, PgEvent::Kind::kCancelRequest);
  EXPECT_FALSE(framer.Feed("Q", 1, &events));
}

TEST(PgFramerTest, SameEventsWhateverTheSplit) {
  const std::string bytes =
      Msg('T', std::string(30, 'r')) + Msg('D', "row") + Msg('C', "SELECT 1") + Msg('Z', "I");
  for (std::size_t split = 0; split <= bytes.size(); ++split) {
    PgFramer framer(false);
    std::vector<PgEvent> events;
    ASSERT_TRUE(framer.Feed(bytes.data(), split, &events));
    EXPECT_EQ(framer.mid_message(),
              split != 0 && split != 35 && split != 43 && split != 56 && split != bytes.size());
    ASSERT_TRUE(framer.Feed(bytes.data() + split, bytes.size() - split, &events));
    ASSERT_EQ(events.size(), 8u) << split;
    EXPECT_EQ(events[7].type, 'Z');
    EXPECT_TRUE(events[7].complete);
  }
}

TEST(PgFramerTest, RejectsBadLengthsAndVersions) {
  const std::vector<std::string> bad_frontend = {
      Be32(4) + Be32(kPgProtocol3),              // shorter than its header
      Be32(100000) + Be32(kPgProtocol3),         // over the startup packet limit
      Startup(kPgSslRequest, "x"),               // SSLRequest must be exactly 8 bytes
      Startup(kPgCancelRequest),                 // CancelRequest must be 16
      Startup(0x00020000, std::string(4, 'x')),  // protocol 2
  };
  for (const auto& b : bad_frontend) {
    PgFramer framer(true);
    std::vector<PgEvent> events;
    EXPECT_FALSE(framer.Feed(b.data(), b.size(), &events));
    EXPECT_TRUE(framer.failed());
  }
  for (const std::string& b : {std::string("Q") + Be32(3), std::string("D") + Be32(0x7fffffff)}) {
    PgFramer framer(false);
    std::vector<PgEvent> events;
    EXPECT_FALSE(framer.Feed(b.data(), b.size(), &events));
    EXPECT_FALSE(framer.error().empty());
  }
}

TEST(PgErrorResponseTest, WellFormedFatalError) {
  const std::string e = PgErrorResponse("08006", "boom");
  ASSERT_GE(e.size(), 5u);
  EXPECT_EQ(e[0], 'E');
  PgFramer framer(false);
  std::vector<PgEvent> events;
  ASSERT_TRUE(framer.Feed(e.data(), e.size(), &events));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].length + 1, e.size());
  EXPECT_NE(e.find(std::string("C08006\0", 7)), std::string::npos);
  EXPECT_NE(e.find(std::string("Mboom\0", 6)), std::string::npos);
  EXPECT_NE(e.find(std::string("SFATAL\0", 7)), std::string::npos);
  EXPECT_EQ(e.back(), '\0');
}

}  // namespace
}  // namespace postgres_wire_test
}  // namespace kpiscale::sidecar::observe
