#include "service/value_ops.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/status_matchers.h"

namespace tshare::service {
namespace {

using ::testing::HasSubstr;
using ::tshare::testing::StatusIs;
using tshare::v1::Value;

Value Int(int64_t v) {
  Value value;
  value.set_int_value(v);
  return value;
}
Value Double(double v) {
  Value value;
  value.set_double_value(v);
  return value;
}
Value String(const std::string& v) {
  Value value;
  value.set_string_value(v);
  return value;
}
Value Bytes(const std::string& v) {
  Value value;
  value.set_bytes_value(v);
  return value;
}
Value Bool(bool v) {
  Value value;
  value.set_bool_value(v);
  return value;
}
Value Json(const std::string& json) {
  Value value;
  const auto status = google::protobuf::util::JsonStringToMessage(
      json, value.mutable_json_value());
  EXPECT_TRUE(status.ok()) << json;
  return value;
}
std::string ToJson(const Value& value) {
  std::string out;
  EXPECT_TRUE(
      google::protobuf::util::MessageToJsonString(value.json_value(), &out)
          .ok());
  return out;
}

TEST(KindNameTest, NamesEveryKind) {
  EXPECT_EQ(KindName(Int(1)), "int");
  EXPECT_EQ(KindName(Double(1)), "double");
  EXPECT_EQ(KindName(String("")), "string");
  EXPECT_EQ(KindName(Bool(false)), "bool");
  EXPECT_EQ(KindName(Bytes("")), "bytes");
  EXPECT_EQ(KindName(Json("{}")), "json object");
  EXPECT_EQ(KindName(Json("[]")), "json array");
  EXPECT_EQ(KindName(Json("1")), "json number");
  EXPECT_EQ(KindName(Value()), "unset");
}

TEST(ValidateValueTest, RefusesUnsetKindAndBadJson) {
  EXPECT_OK(ValidateValue(Int(1), "value"));
  EXPECT_OK(ValidateValue(Json(R"({"a":[1,{"b":null}]})"), "value"));
  EXPECT_THAT(ValidateValue(Value(), "value"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("set one of int_value")));
  Value nested_unset;
  nested_unset.mutable_json_value()->mutable_list_value()->add_values();
  EXPECT_THAT(
      ValidateValue(nested_unset, "value"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no kind")));
  Value nan;
  nan.mutable_json_value()->set_number_value(std::nan(""));
  EXPECT_THAT(ValidateValue(nan, "value"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ValuesEqualTest, ComparesKindAndValueAndJsonStructurally) {
  EXPECT_TRUE(ValuesEqual(Int(3), Int(3)));
  EXPECT_FALSE(ValuesEqual(Int(3), Double(3)));
  EXPECT_FALSE(ValuesEqual(String("a"), Bytes("a")));
  EXPECT_TRUE(ValuesEqual(Json(R"({"a":1,"b":[true,null]})"),
                          Json(R"({"b":[true,null],"a":1})")));
  EXPECT_FALSE(ValuesEqual(Json(R"({"a":1})"), Json(R"({"a":1,"b":2})")));
  EXPECT_FALSE(ValuesEqual(Json("[1,2]"), Json("[2,1]")));
}

TEST(AddTest, AddsIntsAndDoubles) {
  const Value forty = Int(40);
  ASSERT_OK_AND_ASSIGN(OpResult r, Add(&forty, Int(2)));
  EXPECT_EQ(r.value.int_value(), 42);
  EXPECT_TRUE(r.changed);
  const Value d = Double(1.5);
  ASSERT_OK_AND_ASSIGN(r, Add(&d, Double(2.25)));
  EXPECT_DOUBLE_EQ(r.value.double_value(), 3.75);
}

TEST(AddTest, AbsentKeyStartsFromZeroOfOperandKind) {
  ASSERT_OK_AND_ASSIGN(OpResult r, Add(nullptr, Int(5)));
  EXPECT_EQ(r.value.int_value(), 5);
  EXPECT_TRUE(r.changed);
  ASSERT_OK_AND_ASSIGN(r, Add(nullptr, Double(-0.5)));
  EXPECT_DOUBLE_EQ(r.value.double_value(), -0.5);
}

TEST(AddTest, ZeroLeavesValueUnchanged) {
  const Value v = Int(7);
  ASSERT_OK_AND_ASSIGN(OpResult r, Add(&v, Int(0)));
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(r.value.int_value(), 7);
}

TEST(AddTest, IntOverflowIsOutOfRange) {
  const Value max = Int(std::numeric_limits<int64_t>::max());
  EXPECT_THAT(Add(&max, Int(1)),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("overflow")));
  const Value min = Int(std::numeric_limits<int64_t>::min());
  EXPECT_THAT(Add(&min, Int(-1)), StatusIs(absl::StatusCode::kOutOfRange));
}

TEST(AddTest, KindMismatchNamesBothKinds) {
  const Value s = String("x");
  EXPECT_THAT(Add(&s, Int(1)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("holds a string value and the operand is an "
                                 "int value")));
  const Value i = Int(1);
  EXPECT_THAT(Add(&i, Double(1)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("int")));
  EXPECT_THAT(Add(&i, String("1")), StatusIs(absl::StatusCode::kInvalidArgument,
                                             HasSubstr("add takes int_value")));
  EXPECT_THAT(Add(&i, Value()), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(AppendTest, AppendsStringsBytesAndJsonElements) {
  const Value s = String("ab");
  ASSERT_OK_AND_ASSIGN(OpResult r, Append(&s, String("cd")));
  EXPECT_EQ(r.value.string_value(), "abcd");
  const Value b = Bytes(std::string("\0\1", 2));
  ASSERT_OK_AND_ASSIGN(r, Append(&b, Bytes("\2")));
  EXPECT_EQ(r.value.bytes_value(), std::string("\0\1\2", 3));
  const Value a = Json("[1]");
  ASSERT_OK_AND_ASSIGN(r, Append(&a, Json(R"({"x":2})")));
  EXPECT_EQ(ToJson(r.value), R"([1,{"x":2}])");
}

TEST(AppendTest, AbsentKeyStartsEmpty) {
  ASSERT_OK_AND_ASSIGN(OpResult r, Append(nullptr, String("x")));
  EXPECT_EQ(r.value.string_value(), "x");
  ASSERT_OK_AND_ASSIGN(r, Append(nullptr, Json("3")));
  EXPECT_EQ(ToJson(r.value), "[3]");
  ASSERT_OK_AND_ASSIGN(r, Append(nullptr, Bytes("")));
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(r.value.kind_case(), Value::kBytesValue);
}

TEST(AppendTest, KindMismatches) {
  const Value s = String("x");
  EXPECT_THAT(Append(&s, Bytes("y")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("holds a string value")));
  const Value o = Json("{}");
  EXPECT_THAT(
      Append(&o, Json("1")),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("json object")));
  const Value i = Int(1);
  EXPECT_THAT(Append(&i, Int(1)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("append takes string_value")));
}

TEST(MergeTest, MergesRfc7386WithNullRemoval) {
  const Value doc = Json(R"({"a":"b","c":{"d":"e","f":"g"},"keep":1})");
  ASSERT_OK_AND_ASSIGN(
      OpResult r, Merge(&doc, Json(R"({"a":"z","c":{"f":null},"n":[1]})")));
  EXPECT_TRUE(r.changed);
  EXPECT_TRUE(
      ValuesEqual(r.value, Json(R"({"a":"z","c":{"d":"e"},"keep":1,"n":[1]})")))
      << ToJson(r.value);
}

TEST(MergeTest, NonObjectMemberReplacesAndNullOfMissingMemberIsNoChange) {
  const Value doc = Json(R"({"a":{"x":1}})");
  ASSERT_OK_AND_ASSIGN(OpResult r, Merge(&doc, Json(R"({"a":[1]})")));
  EXPECT_TRUE(ValuesEqual(r.value, Json(R"({"a":[1]})")));
  ASSERT_OK_AND_ASSIGN(r, Merge(&doc, Json(R"({"missing":null})")));
  EXPECT_FALSE(r.changed);
  ASSERT_OK_AND_ASSIGN(r, Merge(&doc, Json(R"({"a":{"x":1}})")));
  EXPECT_FALSE(r.changed);
}

TEST(MergeTest, AbsentKeyStartsFromEmptyObject) {
  ASSERT_OK_AND_ASSIGN(OpResult r, Merge(nullptr, Json(R"({"a":1,"b":null})")));
  EXPECT_TRUE(ValuesEqual(r.value, Json(R"({"a":1})")));
}

TEST(MergeTest, KindMismatches) {
  const Value arr = Json("[]");
  EXPECT_THAT(
      Merge(&arr, Json("{}")),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("json array")));
  const Value obj = Json("{}");
  EXPECT_THAT(Merge(&obj, Json("[1]")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("merge takes a json_value object")));
  EXPECT_THAT(Merge(&obj, String("x")),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CompareAndSetTest, WritesOnlyWhenEqual) {
  const Value cur = Json(R"({"a":1,"b":2})");
  ASSERT_OK_AND_ASSIGN(
      OpResult r, CompareAndSet("k", &cur, Json(R"({"b":2,"a":1})"), Int(9)));
  EXPECT_EQ(r.value.int_value(), 9);
  EXPECT_TRUE(r.changed);
  EXPECT_THAT(CompareAndSet("k", &cur, Json(R"({"a":1})"), Int(9)),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  const Value i = Int(1);
  EXPECT_THAT(CompareAndSet("k", &i, Double(1), Int(2)),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(CompareAndSet("k", nullptr, Int(1), Int(2)),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(CompareAndSet("k", &i, Value(), Int(2)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_OK_AND_ASSIGN(r, CompareAndSet("k", &i, Int(1), Int(1)));
  EXPECT_FALSE(r.changed);
}

TEST(MinMaxTest, KeepsSmallerAndLarger) {
  const Value five = Int(5);
  ASSERT_OK_AND_ASSIGN(OpResult r, Min(&five, Int(3)));
  EXPECT_EQ(r.value.int_value(), 3);
  EXPECT_TRUE(r.changed);
  ASSERT_OK_AND_ASSIGN(r, Min(&five, Int(7)));
  EXPECT_EQ(r.value.int_value(), 5);
  EXPECT_FALSE(r.changed);
  ASSERT_OK_AND_ASSIGN(r, Max(&five, Int(7)));
  EXPECT_EQ(r.value.int_value(), 7);
  const Value d = Double(1.5);
  ASSERT_OK_AND_ASSIGN(r, Max(&d, Double(-1)));
  EXPECT_FALSE(r.changed);
}

TEST(MinMaxTest, AbsentKeyStoresTheOperand) {
  ASSERT_OK_AND_ASSIGN(OpResult r, Min(nullptr, Int(42)));
  EXPECT_EQ(r.value.int_value(), 42);
  EXPECT_TRUE(r.changed);
  ASSERT_OK_AND_ASSIGN(r, Max(nullptr, Double(-3)));
  EXPECT_DOUBLE_EQ(r.value.double_value(), -3);
}

TEST(MinMaxTest, KindMismatches) {
  const Value i = Int(1);
  EXPECT_THAT(Min(&i, Double(0)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("holds an int value and the operand is a "
                                 "double value")));
  const Value s = String("x");
  EXPECT_THAT(Max(&s, Int(0)), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Max(&i, Bool(true)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("max takes int_value or double_value")));
}

TEST(ToggleTest, FlipsBoolAndStartsFromFalse) {
  const Value t = Bool(true);
  ASSERT_OK_AND_ASSIGN(OpResult r, Toggle(&t));
  EXPECT_FALSE(r.value.bool_value());
  EXPECT_TRUE(r.changed);
  ASSERT_OK_AND_ASSIGN(r, Toggle(nullptr));
  EXPECT_TRUE(r.value.bool_value());
  const Value i = Int(0);
  EXPECT_THAT(
      Toggle(&i),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("holds an int value and the operand is a bool")));
}

TEST(ApplyUpdateTest, DispatchesOnTheOpAndRefusesAMissingOp) {
  tshare::v1::UpdateRequest request;
  request.set_key("k");
  EXPECT_THAT(ApplyUpdate(request, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("set one of add, append")));
  EXPECT_THAT(ValidateUpdate(request),
              StatusIs(absl::StatusCode::kInvalidArgument));
  *request.mutable_add() = Int(2);
  const Value v = Int(1);
  ASSERT_OK_AND_ASSIGN(OpResult r, ApplyUpdate(request, &v));
  EXPECT_EQ(r.value.int_value(), 3);
  request.mutable_toggle();
  EXPECT_THAT(ApplyUpdate(request, &v),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_OK(ValidateUpdate(request));
  *request.mutable_merge() = Int(1);
  EXPECT_THAT(ValidateUpdate(request),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CompareNumbersTest, OrdersSameKindNumbersOnly) {
  ASSERT_OK_AND_ASSIGN(int order, CompareNumbers("GREATER", Int(3), Int(2)));
  EXPECT_EQ(order, 1);
  ASSERT_OK_AND_ASSIGN(order, CompareNumbers("LESS", Double(1), Double(2)));
  EXPECT_EQ(order, -1);
  EXPECT_THAT(CompareNumbers("GREATER", Int(3), Double(2)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CompareNumbers("GREATER", String("a"), String("b")),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace tshare::service
