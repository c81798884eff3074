#include "client/tsharectl/values.h"

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/status_matchers.h"
#include "tshare/v1/admin.pb.h"
#include "tshare/v1/workers.pb.h"

namespace tshare::tsharectl {
namespace {

using ::testing::HasSubstr;
using ::tshare::testing::StatusIs;

TEST(ParseValueTest, AutoTypesIntegersDoublesBoolsAndStrings) {
  EXPECT_EQ(*ParseValue("1", ValueType::kAuto), Value::Int(1));
  EXPECT_EQ(*ParseValue("-42", ValueType::kAuto), Value::Int(-42));
  EXPECT_EQ(*ParseValue("+7", ValueType::kAuto), Value::Int(7));
  EXPECT_EQ(*ParseValue("1.5", ValueType::kAuto), Value::Double(1.5));
  EXPECT_EQ(*ParseValue("-.25", ValueType::kAuto), Value::Double(-0.25));
  EXPECT_EQ(*ParseValue("2.", ValueType::kAuto), Value::Double(2.0));
  EXPECT_EQ(*ParseValue("1e3", ValueType::kAuto), Value::Double(1000.0));
  EXPECT_EQ(*ParseValue("true", ValueType::kAuto), Value::Bool(true));
  EXPECT_EQ(*ParseValue("false", ValueType::kAuto), Value::Bool(false));
  EXPECT_EQ(*ParseValue("hello world", ValueType::kAuto),
            Value::String("hello world"));
  EXPECT_EQ(*ParseValue("", ValueType::kAuto), Value::String(""));
  // Words that a number parser would take stay strings.
  EXPECT_EQ(*ParseValue("inf", ValueType::kAuto), Value::String("inf"));
  EXPECT_EQ(*ParseValue("nan", ValueType::kAuto), Value::String("nan"));
  EXPECT_EQ(*ParseValue("0x10", ValueType::kAuto), Value::String("0x10"));
  EXPECT_EQ(*ParseValue("1.2.3", ValueType::kAuto), Value::String("1.2.3"));
  EXPECT_EQ(*ParseValue("True", ValueType::kAuto), Value::String("True"));
  EXPECT_EQ(*ParseValue("{\"a\":1}", ValueType::kAuto),
            Value::String("{\"a\":1}"));
}

TEST(ParseValueTest, AutoRefusesAnIntegerBeyondInt64) {
  EXPECT_THAT(
      ParseValue("99999999999999999999", ValueType::kAuto),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--double")));
}

TEST(ParseValueTest, ForcedTypes) {
  EXPECT_EQ(*ParseValue("1", ValueType::kString), Value::String("1"));
  EXPECT_EQ(*ParseValue("1", ValueType::kDouble), Value::Double(1.0));
  EXPECT_EQ(*ParseValue("yes", ValueType::kBool), Value::Bool(true));
  EXPECT_EQ(*ParseValue("0", ValueType::kBool), Value::Bool(false));
  EXPECT_EQ(*ParseValue("-3", ValueType::kInt), Value::Int(-3));
  EXPECT_EQ(*ParseValue("{\"a\":[1,2]}", ValueType::kJson),
            Value::FromJson(Json{{"a", {1, 2}}}));
  EXPECT_EQ(*ParseValue("1", ValueType::kJson), Value::FromJson(Json(1)));
  EXPECT_EQ(*ParseValue("AAE=", ValueType::kBytesBase64),
            Value::FromBytes(client::Bytes{std::string("\x00\x01", 2)}));
}

TEST(ParseValueTest, ForcedTypesRefuseTextThatDoesNotFit) {
  EXPECT_THAT(ParseValue("1.5", ValueType::kInt),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--int")));
  EXPECT_THAT(
      ParseValue("abc", ValueType::kDouble),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--double")));
  EXPECT_THAT(
      ParseValue("maybe", ValueType::kBool),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--bool")));
  EXPECT_THAT(
      ParseValue("{a:1}", ValueType::kJson),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not JSON")));
  EXPECT_THAT(
      ParseValue("***", ValueType::kBytesBase64),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("base64")));
}

TEST(ParseDurationFlagTest, AcceptsAbslDurationsAndPlainSeconds) {
  EXPECT_EQ(*ParseDurationFlag("10s"), absl::Seconds(10));
  EXPECT_EQ(*ParseDurationFlag("250ms"), absl::Milliseconds(250));
  EXPECT_EQ(*ParseDurationFlag("1m30s"), absl::Seconds(90));
  EXPECT_EQ(*ParseDurationFlag("2"), absl::Seconds(2));
  EXPECT_EQ(*ParseDurationFlag("0.5"), absl::Milliseconds(500));
  EXPECT_THAT(ParseDurationFlag("soon"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseDurationFlag("-1s"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseDurationFlag("inf"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(FormatTest, PlainPrintsStringsRawAndJsonCompact) {
  EXPECT_EQ(FormatPlain(Value::Int(42)), "42");
  EXPECT_EQ(FormatPlain(Value::Double(1.5)), "1.5");
  EXPECT_EQ(FormatPlain(Value::Double(2.0)), "2.0");
  EXPECT_EQ(FormatPlain(Value::Bool(true)), "true");
  EXPECT_EQ(FormatPlain(Value::String("hi there")), "hi there");
  EXPECT_EQ(FormatPlain(Value::FromJson(Json{{"a", 1}})), "{\"a\":1}");
  EXPECT_EQ(FormatPlain(Value::FromBytes(client::Bytes{"raw"})), "raw");
}

TEST(FormatTest, InlineIsUnambiguousJson) {
  EXPECT_EQ(FormatInline(Value::String("hi there")), "\"hi there\"");
  EXPECT_EQ(FormatInline(Value::Int(3)), "3");
  EXPECT_EQ(
      FormatInline(Value::FromBytes(client::Bytes{std::string("\x00\x01", 2)})),
      "\"AAE=\"");
  // Invalid UTF-8 does not make the output fail.
  EXPECT_EQ(FormatInline(Value::String("\xff")), "\"\xEF\xBF\xBD\"");
}

TEST(FromProtoTest, EveryKind) {
  v1::Value v;
  v.set_int_value(5);
  EXPECT_EQ(*FromProto(v), Value::Int(5));
  v.set_double_value(0.5);
  EXPECT_EQ(*FromProto(v), Value::Double(0.5));
  v.set_string_value("s");
  EXPECT_EQ(*FromProto(v), Value::String("s"));
  v.set_bool_value(true);
  EXPECT_EQ(*FromProto(v), Value::Bool(true));
  v.set_bytes_value("b");
  EXPECT_EQ(*FromProto(v), Value::FromBytes(client::Bytes{"b"}));
  (*v.mutable_json_value()->mutable_struct_value()->mutable_fields())["n"]
      .set_number_value(3);
  EXPECT_EQ(*FromProto(v), Value::FromJson(Json{{"n", 3}}));
  EXPECT_THAT(FromProto(v1::Value()),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ProtoToJsonTest, NumbersEnumsTimestampsAndNestedMessages) {
  v1::StatsResponse stats;
  stats.mutable_store()->set_keys(3);
  stats.mutable_store()->set_revision(uint64_t{1} << 60);
  stats.mutable_pool()->add_queued(1);
  stats.mutable_pool()->add_queued(0);
  stats.set_store_id("abc");
  const OutJson j = ProtoToJson(stats);
  EXPECT_EQ(j["store"]["keys"], 3);
  EXPECT_EQ(j["store"]["revision"].get<uint64_t>(), uint64_t{1} << 60);
  EXPECT_EQ(j["store"]["sets"], 0);  // Zeros are printed.
  EXPECT_EQ(j["pool"]["queued"], OutJson::array({1, 0}));
  EXPECT_EQ(j["store_id"], "abc");
  EXPECT_FALSE(j.contains("bus"));  // An unset message is left out.

  v1::WorkerInfo w;
  w.set_name("indexer");
  w.set_state(v1::WorkerInfo::PAUSED);
  w.set_kind(v1::WorkerInfo::CLIENT);
  w.mutable_started_at()->set_seconds(0);
  w.mutable_updated_at()->set_seconds(1700000000);
  const OutJson wj = ProtoToJson(w);
  EXPECT_EQ(wj["state"], "PAUSED");
  EXPECT_EQ(wj["kind"], "CLIENT");
  EXPECT_EQ(wj["started_at"], nullptr);
  EXPECT_EQ(wj["updated_at"], "2023-11-14T22:13:20+00:00");
}

}  // namespace
}  // namespace tshare::tsharectl
