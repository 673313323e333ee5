#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kpiscale/sidecar/observe/resp_request_parser.h"

namespace kpiscale::sidecar::observe {
namespace {

std::vector<RespCommand> ParseAll(const std::string& bytes, bool* ok = nullptr) {
  RespRequestParser parser;
  std::vector<RespCommand> out;
  const bool result = parser.Feed(bytes.data(), bytes.size(), &out);
  if (ok != nullptr) *ok = result;
  return out;
}

TEST(RespRequestParserTest, ParsesMultibulkCommandNameAndArgs) {
  const auto cmds = ParseAll("*3\r\n$3\r\nset\r\n$3\r\nfoo\r\n$3\r\nbar\r\n");
  ASSERT_EQ(cmds.size(), 1u);
  EXPECT_EQ(cmds[0].name, "SET");
  EXPECT_EQ(cmds[0].argc, 3u);
  EXPECT_EQ(cmds[0].args[0], "FOO");
  EXPECT_EQ(cmds[0].args[1], "BAR");
  EXPECT_FALSE(cmds[0].inline_command);
}

TEST(RespRequestParserTest, ParsesPipelinedCommands) {
  const auto cmds = ParseAll(
      "*2\r\n$3\r\nGET\r\n$1\r\na\r\n*2\r\n$3\r\nGET\r\n$1\r\nb\r\n"
      "*1\r\n$4\r\nPING\r\n");
  ASSERT_EQ(cmds.size(), 3u);
  EXPECT_EQ(cmds[0].name, "GET");
  EXPECT_EQ(cmds[1].args[0], "B");
  EXPECT_EQ(cmds[2].name, "PING");
  EXPECT_EQ(cmds[2].argc, 1u);
}

TEST(RespRequestParserTest, SameResultWhateverTheSplit) {
  const std::string bytes =
      "*3\r\n$4\r\nMGET\r\n$5\r\nalpha\r\n$4\r\nbeta\r\nGET "
      "inline\r\n*2\r\n$4\r\nEcho\r\n$0\r\n\r\n";
  for (std::size_t split = 0; split <= bytes.size(); ++split) {
    RespRequestParser parser;
    std::vector<RespCommand> out;
    ASSERT_TRUE(parser.Feed(bytes.data(), split, &out));
    ASSERT_TRUE(parser.Feed(bytes.data() + split, bytes.size() - split, &out));
    ASSERT_EQ(out.size(), 3u) << "split at " << split;
    EXPECT_EQ(out[0].name, "MGET");
    EXPECT_EQ(out[0].argc, 3u);
    EXPECT_EQ(out[1].name, "GET");
    EXPECT_TRUE(out[1].inline_command);
    EXPECT_EQ(out[2].name, "ECHO");
    EXPECT_FALSE(parser.mid_command());
  }
  // One byte at a time.
  RespRequestParser parser;
  std::vector<RespCommand> out;
  for (char c : bytes) ASSERT_TRUE(parser.Feed(&c, 1, &out));
  EXPECT_EQ(out.size(), 3u);
}

TEST(RespRequestParserTest, MidCommandTracksPartialInput) {
  RespRequestParser parser;
  std::vector<RespCommand> out;
  EXPECT_FALSE(parser.mid_command());
  ASSERT_TRUE(parser.Feed("*1\r\n$4\r\nPI", 10, &out));
  EXPECT_TRUE(parser.mid_command());
  EXPECT_TRUE(out.empty());
  ASSERT_TRUE(parser.Feed("NG\r\n", 4, &out));
  EXPECT_FALSE(parser.mid_command());
  ASSERT_EQ(out.size(), 1u);
}

TEST(RespRequestParserTest, InlineCommandsLikeRedis) {
  const auto cmds = ParseAll("get  key\r\n\r\n\n  \r\nEXISTS a b c\n'hget' \"h\" f\r\n");
  ASSERT_EQ(cmds.size(), 3u);  // blank lines are no command (redis sends no reply)
  EXPECT_EQ(cmds[0].name, "GET");
  EXPECT_EQ(cmds[0].argc, 2u);
  EXPECT_EQ(cmds[0].args[0], "KEY");
  EXPECT_TRUE(cmds[0].inline_command);
  EXPECT_EQ(cmds[1].argc, 4u);
  EXPECT_EQ(cmds[2].name, "HGET");
  EXPECT_EQ(cmds[2].args[0], "H");
}

TEST(RespRequestParserTest, EmptyAndNegativeMultibulkAreNoCommand) {
  bool ok = false;
  const auto cmds = ParseAll("*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n", &ok);
  EXPECT_TRUE(ok);
  ASSERT_EQ(cmds.size(), 1u);
  EXPECT_EQ(cmds[0].name, "PING");
}

TEST(RespRequestParserTest, SkipsLargeBulkWithoutKeepingIt) {
  const std::string value(1 << 20, 'x');
  const std::string bytes =
      "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$" + std::to_string(value.size()) + "\r\n" + value + "\r\n";
  const auto cmds = ParseAll(bytes);
  ASSERT_EQ(cmds.size(), 1u);
  EXPECT_EQ(cmds[0].args[1].size(), RespCommand::kMaxArgBytes);
}

TEST(RespRequestParserTest, TruncatesLongNames) {
  const std::string name(100, 'a');
  const auto cmds = ParseAll("*1\r\n$100\r\n" + name + "\r\n");
  ASSERT_EQ(cmds.size(), 1u);
  EXPECT_EQ(cmds[0].name.size(), RespCommand::kMaxNameBytes);
}

TEST(RespRequestParserTest, ProtocolErrorsFailAndStayFailed) {
  for (const std::string& bad : std::vector<std::string>{
           "*x\r\n", "*1\r\n+PING\r\n", "*1\r\n$-5\r\n", "*1\n", "*1\r\n$99999999999999999999\r\n",
           "*1\r\n$" + std::string(40, '1') + "\r\n"}) {
    RespRequestParser parser;
    std::vector<RespCommand> out;
    EXPECT_FALSE(parser.Feed(bad.data(), bad.size(), &out)) << bad;
    EXPECT_TRUE(parser.failed());
    EXPECT_FALSE(parser.error().empty());
    EXPECT_FALSE(parser.Feed("*1\r\n$4\r\nPING\r\n", 14, &out));
    EXPECT_TRUE(out.empty());
  }
}

TEST(RespRequestParserTest, EnforcesLimits) {
  RespRequestParser::Limits limits;
  limits.max_inline = 8;
  limits.max_bulk = 4;
  limits.max_multibulk = 2;
  {
    RespRequestParser parser(limits);
    std::vector<RespCommand> out;
    EXPECT_FALSE(parser.Feed("GET abcdefgh\r\n", 14, &out));
  }
  {
    RespRequestParser parser(limits);
    std::vector<RespCommand> out;
    EXPECT_FALSE(parser.Feed("*1\r\n$5\r\n", 8, &out));
  }
  {
    RespRequestParser parser(limits);
    std::vector<RespCommand> out;
    EXPECT_FALSE(parser.Feed("*3\r\n", 4, &out));
  }
}

}  // namespace
}  // namespace kpiscale::sidecar::observe
