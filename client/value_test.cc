// Typed values and their wire form, without a server.
#include "client/value.h"

#include <cstdint>
#include <limits>
#include <string>

#include "client/internal/convert.h"
#include "client/ops.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/status_matchers.h"

namespace tshare::client {
namespace {

using ::testing::HasSubstr;
using ::tshare::testing::StatusIs;

TEST(ValueTest, CppTypesPickTheirKinds) {
  ASSERT_OK_AND_ASSIGN(Value one, Value::Of(1));
  EXPECT_EQ(one.kind(), ValueKind::kInt);
  EXPECT_EQ(one.int_value(), 1);
  ASSERT_OK_AND_ASSIGN(Value small, Value::Of(static_cast<uint8_t>(7)));
  EXPECT_EQ(small.kind(), ValueKind::kInt);
  ASSERT_OK_AND_ASSIGN(Value half, Value::Of(0.5));
  EXPECT_EQ(half.kind(), ValueKind::kDouble);
  ASSERT_OK_AND_ASSIGN(Value text, Value::Of("abc"));
  EXPECT_EQ(text.kind(), ValueKind::kString);
  EXPECT_EQ(text.string_value(), "abc");
  ASSERT_OK_AND_ASSIGN(Value view, Value::Of(std::string_view("xy")));
  EXPECT_EQ(view.string_value(), "xy");
  ASSERT_OK_AND_ASSIGN(Value flag, Value::Of(true));
  EXPECT_EQ(flag.kind(), ValueKind::kBool);
  ASSERT_OK_AND_ASSIGN(Value blob, Value::Of(Bytes{std::string("\0\1", 2)}));
  EXPECT_EQ(blob.kind(), ValueKind::kBytes);
  EXPECT_EQ(blob.bytes_value().data.size(), 2u);
  ASSERT_OK_AND_ASSIGN(Value json, Value::Of(Json{{"a", 1}}));
  EXPECT_EQ(json.kind(), ValueKind::kJson);
  static_assert(std::is_same_v<StoredType<int>, int64_t>);
  static_assert(std::is_same_v<StoredType<const char*>, std::string>);
  static_assert(std::is_same_v<StoredType<decltype("x")>, std::string>);
  static_assert(std::is_same_v<StoredType<float>, double>);
}

TEST(ValueTest, ReadingAnotherKindIsFailedPreconditionNamingBothKinds) {
  const Value text = Value::String("hello");
  EXPECT_THAT(text.As<int64_t>("x"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("key \"x\" holds a string, not an int")));
  EXPECT_THAT(Value::Int(3).As<double>("n"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("key \"n\" holds an int, not a double")));
  EXPECT_THAT(Value::FromBytes(Bytes{"a"}).As<std::string>("b"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("holds bytes, not a string")));
  EXPECT_THAT(Value::FromJson(Json(5)).As<int64_t>("j"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("holds a JSON value, not an int")));
  EXPECT_THAT(Value::Bool(true).As<int64_t>(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("the value holds a bool, not an int")));
  ASSERT_OK_AND_ASSIGN(Value any, text.As<Value>("x"));
  EXPECT_EQ(any, text);
}

TEST(ValueTest, IntegersOutsideTheRequestedTypeAreOutOfRange) {
  EXPECT_THAT(Value::Int(300).As<uint8_t>("k"),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("300")));
  EXPECT_THAT(Value::Int(-1).As<uint32_t>("k"),
              StatusIs(absl::StatusCode::kOutOfRange));
  ASSERT_OK_AND_ASSIGN(int32_t fits, Value::Int(-5).As<int32_t>("k"));
  EXPECT_EQ(fits, -5);
  EXPECT_THAT(Value::Of(std::numeric_limits<uint64_t>::max()),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("int64")));
  ASSERT_OK_AND_ASSIGN(Value max, Value::Of(uint64_t{9223372036854775807u}));
  EXPECT_EQ(max.int_value(), std::numeric_limits<int64_t>::max());
}

TEST(ValueTest, DebugStringAndJsonShowEveryKind) {
  EXPECT_EQ(Value::Int(42).DebugString(), "42");
  EXPECT_EQ(Value::String("a").DebugString(), "\"a\"");
  EXPECT_EQ(Value::Bool(false).DebugString(), "false");
  EXPECT_EQ(Value::FromBytes(Bytes{std::string("\0\1", 2)}).DebugString(),
            "bytes:AAE=");
  EXPECT_EQ(Value::FromJson(Json{{"a", 1}}).DebugString(), "{\"a\":1}");
  EXPECT_EQ(Value::FromBytes(Bytes{std::string("\0\1", 2)}).ToJson(),
            Json("AAE="));
}

TEST(ConvertTest, EveryKindRoundTripsThroughTheWire) {
  const Value values[] = {
      Value::Int(std::numeric_limits<int64_t>::min()),
      Value::Double(2.5),
      Value::String("text"),
      Value::Bool(true),
      Value::FromBytes(Bytes{std::string("\0\xff", 2)}),
      Value::FromJson(
          Json::parse(R"({"a":[1,2.5,"x",null,true,{"b":{}}],"c":-3})")),
      Value::FromJson(Json(nullptr)),
      Value::FromJson(Json::array()),
  };
  for (const Value& v : values) {
    v1::Value wire;
    ASSERT_OK(internal::ValueToProto(v, &wire));
    ASSERT_OK_AND_ASSIGN(Value back, internal::ValueFromProto(wire));
    EXPECT_EQ(back, v) << v.DebugString() << " came back as "
                       << back.DebugString();
  }
}

TEST(ConvertTest, JsonNumbersTravelAsDoublesAndWholeOnesComeBackAsIntegers) {
  google::protobuf::Value wire;
  ASSERT_OK(internal::JsonToProto(Json(7), &wire));
  EXPECT_EQ(wire.kind_case(), google::protobuf::Value::kNumberValue);
  const Json back = internal::JsonFromProto(wire);
  EXPECT_TRUE(back.is_number_integer());
  EXPECT_EQ(back.get<int64_t>(), 7);
  ASSERT_OK(internal::JsonToProto(Json(7.25), &wire));
  EXPECT_TRUE(internal::JsonFromProto(wire).is_number_float());
}

TEST(ConvertTest, ValueWithoutKindIsInternal) {
  EXPECT_THAT(internal::ValueFromProto(v1::Value()),
              StatusIs(absl::StatusCode::kInternal));
}

TEST(ConvertTest, OpsBecomeTheirWireOperations) {
  v1::UpdateRequest add;
  ASSERT_OK(internal::OpToUpdateRequest(Op::Add("n", 5), &add));
  EXPECT_EQ(add.key(), "n");
  EXPECT_EQ(add.add().int_value(), 5);
  EXPECT_FALSE(add.has_if_version());

  v1::UpdateRequest cas;
  ASSERT_OK(internal::OpToUpdateRequest(
      Op::CompareAndSet("s", "old", std::string("new")).IfVersion(3), &cas));
  EXPECT_EQ(cas.compare_and_set().expected().string_value(), "old");
  EXPECT_EQ(cas.compare_and_set().new_value().string_value(), "new");
  EXPECT_EQ(cas.if_version(), 3u);

  v1::UpdateRequest toggle;
  ASSERT_OK(internal::OpToUpdateRequest(Op::Toggle("b"), &toggle));
  EXPECT_TRUE(toggle.has_toggle());

  v1::UpdateRequest not_atomic;
  EXPECT_THAT(
      internal::OpToUpdateRequest(Op::Get("k"), &not_atomic),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("atomic ops")));

  v1::TxnOp get_if_version;
  EXPECT_THAT(
      internal::OpToTxnOp(Op::Get("k").IfVersion(1), &get_if_version),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not to Get")));
  v1::TxnOp too_big;
  EXPECT_THAT(internal::OpToTxnOp(
                  Op::Set("k", std::numeric_limits<uint64_t>::max()), &too_big),
              StatusIs(absl::StatusCode::kOutOfRange));
}

TEST(ConvertTest, ComparesBecomeTheirWireForm) {
  v1::Compare version;
  ASSERT_OK(internal::CompareToProto(Compare::Version("k") == 3, &version));
  EXPECT_EQ(version.key(), "k");
  EXPECT_EQ(version.operator_(), v1::Compare::EQUAL);
  EXPECT_EQ(version.version(), 3u);

  v1::Compare value;
  ASSERT_OK(internal::CompareToProto(Compare::Value("n") > 5, &value));
  EXPECT_EQ(value.operator_(), v1::Compare::GREATER);
  EXPECT_EQ(value.value().int_value(), 5);

  v1::Compare missing;
  ASSERT_OK(internal::CompareToProto(Compare::Missing("m"), &missing));
  EXPECT_EQ(missing.target_case(), v1::Compare::kExists);
  EXPECT_FALSE(missing.exists());

  v1::Compare mod;
  ASSERT_OK(internal::CompareToProto(Compare::ModRevision("k") < 10, &mod));
  EXPECT_EQ(mod.operator_(), v1::Compare::LESS);
  EXPECT_EQ(mod.mod_revision(), 10u);
}

}  // namespace
}  // namespace tshare::client
