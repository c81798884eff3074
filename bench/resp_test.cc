#include "bench/resp.h"

#include <string>

#include "gtest/gtest.h"

namespace tshare::bench {
namespace {

using std::string_literals::operator""s;

TEST(RespTest, CommandIsAnArrayOfBulkStrings) {
  EXPECT_EQ(RespCommand({"PUBLISH", "t", "a\0b"s}),
            "*3\r\n$7\r\nPUBLISH\r\n$1\r\nt\r\n$3\r\na\0b\r\n"s);
}

TEST(RespTest, ParsesEveryKind) {
  RespParser p;
  p.Feed("+OK\r\n-ERR no\r\n:42\r\n$5\r\nhello\r\n$-1\r\n");
  RespValue v;
  ASSERT_TRUE(p.Next(&v));
  EXPECT_EQ(v.type, RespValue::Type::kSimpleString);
  EXPECT_EQ(v.str, "OK");
  ASSERT_TRUE(p.Next(&v));
  EXPECT_EQ(v.type, RespValue::Type::kError);
  EXPECT_EQ(v.str, "ERR no");
  ASSERT_TRUE(p.Next(&v));
  EXPECT_EQ(v.type, RespValue::Type::kInteger);
  EXPECT_EQ(v.integer, 42);
  ASSERT_TRUE(p.Next(&v));
  EXPECT_EQ(v.type, RespValue::Type::kBulkString);
  EXPECT_EQ(v.str, "hello");
  ASSERT_TRUE(p.Next(&v));
  EXPECT_EQ(v.type, RespValue::Type::kNull);
  EXPECT_FALSE(p.Next(&v));
  EXPECT_TRUE(p.error().empty());
}

TEST(RespTest, AMessagePushArrivingByteByByteIsParsedOnceComplete) {
  const std::string wire =
      "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$4\r\n\r\n\0x\r\n"s;
  RespParser p;
  RespValue v;
  for (size_t i = 0; i + 1 < wire.size(); ++i) {
    p.Feed(wire.substr(i, 1));
    ASSERT_FALSE(p.Next(&v)) << "complete after " << i + 1 << " bytes";
  }
  p.Feed(wire.substr(wire.size() - 1));
  ASSERT_TRUE(p.Next(&v));
  ASSERT_EQ(v.type, RespValue::Type::kArray);
  ASSERT_EQ(v.elements.size(), 3u);
  EXPECT_EQ(v.elements[0].str, "message");
  EXPECT_EQ(v.elements[1].str, "ch");
  EXPECT_EQ(v.elements[2].str, "\r\n\0x"s);
}

TEST(RespTest, ManyValuesAcrossFeedsKeepTheirOrder) {
  RespParser p;
  RespValue v;
  int seen = 0;
  for (int i = 0; i < 1000; ++i) {
    p.Feed(":" + std::to_string(i) + "\r\n");
    while (p.Next(&v)) {
      ASSERT_EQ(v.integer, seen);
      ++seen;
    }
  }
  EXPECT_EQ(seen, 1000);
}

TEST(RespTest, MalformedInputIsAnErrorThatSticks) {
  RespParser p;
  p.Feed("?what\r\n:1\r\n");
  RespValue v;
  EXPECT_FALSE(p.Next(&v));
  EXPECT_NE(p.error().find("unknown RESP type"), std::string::npos);
  EXPECT_FALSE(p.Next(&v));
}

TEST(RespTest, ConnectToAClosedPortIsUnavailable) {
  // Port 1 on loopback: nothing listens there on a test machine.
  absl::StatusOr<int> fd = TcpConnect("127.0.0.1", 1);
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace tshare::bench
