#include "kpiscale/sidecar/http_parser.h"

#include <string>

#include "gtest/gtest.h"

namespace kpiscale::sidecar::http {
namespace {

TEST(HeadParserTest, ParsesRequestWithContentLength) {
  HeadParser parser(8192);
  const std::string buf =
      "POST /orders?id=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET";
  Head head;
  ASSERT_EQ(parser.ParseRequest(buf, &head), ParseStatus::kDone);
  EXPECT_EQ(head.method, "POST");
  EXPECT_EQ(head.target, "/orders?id=1");
  EXPECT_EQ(head.version_minor, 1);
  EXPECT_EQ(head.body, BodyKind::kLength);
  EXPECT_EQ(head.content_length, 5u);
  EXPECT_TRUE(head.keep_alive);
  EXPECT_EQ(buf.substr(head.head_bytes, 5), "hello");
  EXPECT_EQ(FindHeader(head, "HOST"), "x");
}

TEST(HeadParserTest, IncrementalBytesGiveTheSameResult) {
  const std::string full = "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
  HeadParser parser(8192);
  Head head;
  for (std::size_t n = 1; n < full.size(); ++n) {
    ASSERT_EQ(parser.ParseRequest(std::string_view(full).substr(0, n), &head),
              ParseStatus::kIncomplete)
        << n;
  }
  ASSERT_EQ(parser.ParseRequest(full, &head), ParseStatus::kDone);
  EXPECT_FALSE(head.keep_alive);
  EXPECT_EQ(head.body, BodyKind::kNone);
}

TEST(HeadParserTest, TooLargeHead) {
  HeadParser parser(64);
  const std::string buf = "GET / HTTP/1.1\r\nX-Big: " + std::string(100, 'a');
  Head head;
  EXPECT_EQ(parser.ParseRequest(buf, &head), ParseStatus::kTooLarge);
}

TEST(HeadParserTest, RejectsSmugglingShapes) {
  const char* bad[] = {
      "GET / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
      "GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
      "GET / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n",
      "GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
      "GET / HTTP/1.1\nHost: x\n\n",
      "GET  / HTTP/1.1\r\n\r\n",
      "GET / HTTP/2.0\r\n\r\n",
      "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
      "GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
  };
  for (const char* b : bad) {
    HeadParser parser(8192);
    Head head;
    EXPECT_EQ(parser.ParseRequest(b, &head), ParseStatus::kInvalid) << b;
    EXPECT_FALSE(parser.error().empty());
  }
}

TEST(HeadParserTest, DuplicateEqualContentLengthIsAccepted) {
  HeadParser parser(8192);
  Head head;
  ASSERT_EQ(parser.ParseRequest("PUT / HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\n",
                                &head),
            ParseStatus::kDone);
  EXPECT_EQ(head.content_length, 3u);
}

TEST(HeadParserTest, Http10KeepAliveAndChunkedRequest) {
  HeadParser parser(8192);
  Head head;
  ASSERT_EQ(parser.ParseRequest("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &head),
            ParseStatus::kDone);
  EXPECT_TRUE(head.keep_alive);
  EXPECT_EQ(head.version_minor, 0);
  ASSERT_EQ(parser.ParseRequest("GET / HTTP/1.0\r\n\r\n", &head), ParseStatus::kDone);
  EXPECT_FALSE(head.keep_alive);
  ASSERT_EQ(parser.ParseRequest("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                                "Expect: 100-continue\r\n\r\n",
                                &head),
            ParseStatus::kDone);
  EXPECT_EQ(head.body, BodyKind::kChunked);
  EXPECT_TRUE(head.expect_continue);
}

TEST(HeadParserTest, UpgradeNeedsBothHeaders) {
  HeadParser parser(8192);
  Head head;
  ASSERT_EQ(parser.ParseRequest(
                "GET /ws HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n",
                &head),
            ParseStatus::kDone);
  EXPECT_TRUE(head.upgrade);
  ASSERT_EQ(parser.ParseRequest("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", &head),
            ParseStatus::kDone);
  EXPECT_FALSE(head.upgrade);
}

TEST(HeadParserTest, ResponseFraming) {
  struct Case {
    const char* head;
    bool method_head;
    BodyKind body;
  };
  const Case cases[] = {
      {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", false, BodyKind::kLength},
      {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", true, BodyKind::kNone},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, BodyKind::kChunked},
      {"HTTP/1.1 200 OK\r\n\r\n", false, BodyKind::kUntilClose},
      {"HTTP/1.1 204 No Content\r\n\r\n", false, BodyKind::kNone},
      {"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", false, BodyKind::kNone},
      {"HTTP/1.1 100 Continue\r\n\r\n", false, BodyKind::kNone},
      {"HTTP/1.0 200\r\nContent-Length: 0\r\n\r\n", false, BodyKind::kNone},
  };
  for (const Case& c : cases) {
    HeadParser parser(8192);
    Head head;
    ASSERT_EQ(parser.ParseResponse(c.head, c.method_head, &head), ParseStatus::kDone) << c.head;
    EXPECT_EQ(head.body, c.body) << c.head;
  }
  HeadParser parser(8192);
  Head head;
  EXPECT_EQ(parser.ParseResponse("HTTP/1.1 2x0 OK\r\n\r\n", false, &head), ParseStatus::kInvalid);
  EXPECT_EQ(parser.ParseResponse("HTTP/1.1 200 OK\r\n\r\n", false, &head), ParseStatus::kDone);
  EXPECT_FALSE(head.keep_alive);  // close-delimited
  EXPECT_EQ(head.reason, "OK");
}

TEST(BodyFramerTest, LengthStopsAtTheBoundary) {
  BodyFramer f;
  f.Reset(BodyKind::kLength, 5);
  EXPECT_EQ(f.Consume("hel", 3), 3u);
  EXPECT_FALSE(f.done());
  EXPECT_EQ(f.Consume("loGET", 5), 2u);
  EXPECT_TRUE(f.done());
}

TEST(BodyFramerTest, ChunkedWithExtensionsAndTrailersByteByByte) {
  const std::string body =
      "5;name=val\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: 1\r\n\r\n";
  const std::string next = "GET / HTTP/1.1\r\n";
  const std::string all = body + next;
  BodyFramer f;
  f.Reset(BodyKind::kChunked, 0);
  std::size_t consumed = 0;
  for (std::size_t i = 0; i < all.size() && !f.done(); ++i) {
    consumed += f.Consume(all.data() + i, 1);
    ASSERT_FALSE(f.error()) << i;
  }
  EXPECT_TRUE(f.done());
  EXPECT_EQ(consumed, body.size());
  BodyFramer g;
  g.Reset(BodyKind::kChunked, 0);
  EXPECT_EQ(g.Consume(all.data(), all.size()), body.size());
  EXPECT_TRUE(g.done());
}

TEST(BodyFramerTest, ChunkedErrors) {
  const char* bad[] = {"x\r\n",   "5\r\nhelloXX", "5\nhello\r\n", "fffffffffffffffff\r\n",
                       "0\r\n\n", "\r\n"};
  for (const char* b : bad) {
    BodyFramer f;
    f.Reset(BodyKind::kChunked, 0);
    f.Consume(b, std::string_view(b).size());
    EXPECT_TRUE(f.error()) << b;
  }
}

TEST(RewriteTest, UpstreamHeadDropsHopByHopAndAppendsForwardedFor) {
  HeadParser parser(8192);
  Head head;
  ASSERT_EQ(parser.ParseRequest("GET /a HTTP/1.1\r\nHost: h\r\nConnection: close, X-Secret\r\n"
                                "Keep-Alive: 5\r\nX-Secret: s\r\nTE: trailers\r\n"
                                "X-Forwarded-For: 10.0.0.1\r\nAccept: */*\r\n\r\n",
                                &head),
            ParseStatus::kDone);
  std::string out;
  WriteUpstreamRequestHead(head, "127.0.0.1", &out);
  EXPECT_EQ(out,
            "GET /a HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n"
            "X-Forwarded-For: 10.0.0.1, 127.0.0.1\r\n\r\n");
}

TEST(RewriteTest, UpgradeKeepsUpgradeHeaders) {
  HeadParser parser(8192);
  Head head;
  ASSERT_EQ(parser.ParseRequest(
                "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
                &head),
            ParseStatus::kDone);
  std::string out;
  WriteUpstreamRequestHead(head, "1.2.3.4", &out);
  EXPECT_EQ(out,
            "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nX-Forwarded-For: 1.2.3.4\r\n"
            "Connection: upgrade\r\n\r\n");
}

TEST(RewriteTest, ClientResponseHead) {
  HeadParser parser(8192);
  Head head;
  ASSERT_EQ(parser.ParseResponse("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                                 "Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n",
                                 false, &head),
            ParseStatus::kDone);
  std::string out;
  WriteClientResponseHead(head, /*close=*/true, 1, &out);
  EXPECT_EQ(out, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  WriteClientResponseHead(head, /*close=*/false, 0, &out);
  EXPECT_EQ(out, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n");
}

TEST(RewriteTest, ForwardedForMergesEveryEarlierHopInOrder) {
  HeadParser parser(8192);
  Head head;
  ASSERT_EQ(parser.ParseRequest("GET / HTTP/1.1\r\nX-Forwarded-For: 10.0.0.1, 10.0.0.2\r\n"
                                "x-forwarded-for:\r\nHost: h\r\nX-Forwarded-For: 10.0.0.3\r\n\r\n",
                                &head),
            ParseStatus::kDone);
  std::string out;
  WriteUpstreamRequestHead(head, "127.0.0.1", &out);
  EXPECT_EQ(out,
            "GET / HTTP/1.1\r\nHost: h\r\n"
            "X-Forwarded-For: 10.0.0.1, 10.0.0.2, 10.0.0.3, 127.0.0.1\r\n\r\n");
}

TEST(RewriteTest, EveryNameInConnectionStaysBehindEvenClose) {
  HeadParser parser(8192);
  Head head;
  // "close" names a header too (RFC 9110 7.6.1); keep-alive and upgrade are hop-by-hop anyway.
  ASSERT_EQ(parser.ParseResponse("HTTP/1.1 200 OK\r\nConnection: close\r\nClose: x\r\n"
                                 "X-Debug: d\r\nConnection: x-debug\r\nContent-Length: 0\r\n\r\n",
                                 false, &head),
            ParseStatus::kDone);
  std::string out;
  WriteClientResponseHead(head, /*close=*/true, 1, &out);
  EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
}

TEST(RewriteTest, ReusedHeadForgetsThePreviousMessage) {
  HeadParser parser(8192);
  Head head;
  ASSERT_EQ(parser.ParseResponse("HTTP/1.1 200 OK\r\nConnection: x-a\r\nX-A: 1\r\nX-B: 2\r\n"
                                 "Transfer-Encoding: chunked\r\n\r\n",
                                 false, &head),
            ParseStatus::kDone);
  parser.Reset();
  ASSERT_EQ(parser.ParseResponse("HTTP/1.0 204 No Content\r\nX-A: 3\r\n\r\n", false, &head),
            ParseStatus::kDone);
  EXPECT_EQ(head.headers.size(), 1u);
  EXPECT_EQ(head.body, BodyKind::kNone);
  EXPECT_EQ(head.version_minor, 0);
  EXPECT_FALSE(head.keep_alive);
  std::string out;
  WriteClientResponseHead(head, /*close=*/false, 1, &out);
  EXPECT_EQ(out, "HTTP/1.1 204 No Content\r\nX-A: 3\r\n\r\n");
}

TEST(RewriteTest, SimpleResponse) {
  EXPECT_EQ(SimpleResponse(502, "Bad Gateway", "x"),
            "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n"
            "Connection: close\r\n\r\nx");
}

}  // namespace
}  // namespace kpiscale::sidecar::http

namespace kpiscale::sidecar::http {
namespace {

TEST(RewriteTest, ConnectionCannotRemoveFramingHeaders) {
  HeadParser parser(8192);
  Head head;
  ASSERT_EQ(parser.ParseRequest("POST / HTTP/1.1\r\nHost: h\r\nConnection: Content-Length, Host\r\n"
                                "Content-Length: 3\r\n\r\n",
                                &head),
            ParseStatus::kDone);
  std::string out;
  WriteUpstreamRequestHead(head, "1.1.1.1", &out);
  EXPECT_NE(out.find("Content-Length: 3\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("Host: h\r\n"), std::string::npos) << out;
}

}  // namespace
}  // namespace kpiscale::sidecar::http
