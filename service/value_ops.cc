#include "service/value_ops.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "service/errors.h"

namespace tshare::service {
namespace {

using google::protobuf::ListValue;
using google::protobuf::Struct;
using tshare::v1::Value;

constexpr absl::string_view kNumbers = "int_value or double_value";

// Nesting deeper than this is refused (protobuf's own parser stops at 100
// levels).
constexpr int kMaxJsonDepth = 100;

absl::string_view JsonKindName(const google::protobuf::Value& v) {
  switch (v.kind_case()) {
    case google::protobuf::Value::kNullValue:
      return "json null";
    case google::protobuf::Value::kNumberValue:
      return "json number";
    case google::protobuf::Value::kStringValue:
      return "json string";
    case google::protobuf::Value::kBoolValue:
      return "json bool";
    case google::protobuf::Value::kStructValue:
      return "json object";
    case google::protobuf::Value::kListValue:
      return "json array";
    case google::protobuf::Value::KIND_NOT_SET:
      break;
  }
  return "unset";
}

absl::Status ValidateJson(const google::protobuf::Value& v,
                          absl::string_view field, int depth) {
  if (depth > kMaxJsonDepth) {
    return JsonValueInvalid(field,
                            absl::StrCat("nested deeper than ", kMaxJsonDepth));
  }
  switch (v.kind_case()) {
    case google::protobuf::Value::KIND_NOT_SET:
      return JsonValueInvalid(field, "a nested value has no kind");
    case google::protobuf::Value::kNumberValue:
      if (!std::isfinite(v.number_value())) {
        return JsonValueInvalid(field, "a number is NaN or infinite");
      }
      return absl::OkStatus();
    case google::protobuf::Value::kStructValue:
      for (const auto& [name, member] : v.struct_value().fields()) {
        absl::Status s = ValidateJson(member, field, depth + 1);
        if (!s.ok()) return s;
      }
      return absl::OkStatus();
    case google::protobuf::Value::kListValue:
      for (const auto& element : v.list_value().values()) {
        absl::Status s = ValidateJson(element, field, depth + 1);
        if (!s.ok()) return s;
      }
      return absl::OkStatus();
    default:
      return absl::OkStatus();
  }
}

bool IsNumber(const Value& v) {
  return v.kind_case() == Value::kIntValue ||
         v.kind_case() == Value::kDoubleValue;
}

bool IsJsonObject(const Value& v) {
  return v.kind_case() == Value::kJsonValue &&
         v.json_value().has_struct_value();
}

bool IsJsonArray(const Value& v) {
  return v.kind_case() == Value::kJsonValue && v.json_value().has_list_value();
}

OpResult Changed(Value value) { return OpResult{std::move(value), true}; }

OpResult Result(const Value& current, Value value) {
  const bool changed = !ValuesEqual(current, value);
  return OpResult{std::move(value), changed};
}

// The zero of `operand`'s kind (0, 0.0, "", empty bytes, [] for a JSON element,
// false).
Value ZeroOf(const Value& operand) {
  Value zero;
  switch (operand.kind_case()) {
    case Value::kIntValue:
      zero.set_int_value(0);
      break;
    case Value::kDoubleValue:
      zero.set_double_value(0);
      break;
    case Value::kStringValue:
      zero.set_string_value("");
      break;
    case Value::kBytesValue:
      zero.set_bytes_value("");
      break;
    case Value::kBoolValue:
      zero.set_bool_value(false);
      break;
    case Value::kJsonValue:
      zero.mutable_json_value()->mutable_list_value();
      break;
    case Value::KIND_NOT_SET:
      break;
  }
  return zero;
}

absl::Status CheckNumberOperand(absl::string_view op, const Value& operand) {
  if (operand.kind_case() == Value::KIND_NOT_SET) return ValueMissing(op);
  if (!IsNumber(operand))
    return OperandKindInvalid(op, KindName(operand), kNumbers);
  return absl::OkStatus();
}

absl::Status CheckAppendOperand(const Value& operand) {
  switch (operand.kind_case()) {
    case Value::KIND_NOT_SET:
      return ValueMissing("append");
    case Value::kStringValue:
    case Value::kBytesValue:
      return absl::OkStatus();
    case Value::kJsonValue:
      return ValidateJson(operand.json_value(), "append", 0);
    default:
      return OperandKindInvalid("append", KindName(operand),
                                "string_value, bytes_value or json_value");
  }
}

absl::Status CheckMergeOperand(const Value& operand) {
  if (operand.kind_case() == Value::KIND_NOT_SET) return ValueMissing("merge");
  if (!IsJsonObject(operand)) {
    return OperandKindInvalid("merge", KindName(operand),
                              "a json_value object");
  }
  return ValidateJson(operand.json_value(), "merge", 0);
}

// Same-kind check of the key's value against a number operand.
absl::Status CheckSameKind(absl::string_view op, const Value& current,
                           const Value& operand) {
  if (current.kind_case() != operand.kind_case()) {
    return KindMismatch(op, KindName(current), KindName(operand));
  }
  return absl::OkStatus();
}

template <typename Pick>
absl::StatusOr<OpResult> MinMax(absl::string_view op, const Value* current,
                                const Value& operand, Pick pick_operand) {
  absl::Status s = CheckNumberOperand(op, operand);
  if (!s.ok()) return s;
  if (current == nullptr) return Changed(operand);
  s = CheckSameKind(op, *current, operand);
  if (!s.ok()) return s;
  bool take = false;
  if (operand.kind_case() == Value::kIntValue) {
    take = pick_operand(operand.int_value(), current->int_value());
  } else {
    take = pick_operand(operand.double_value(), current->double_value());
  }
  if (!take) return OpResult{*current, false};
  return Result(*current, operand);
}

}  // namespace

absl::string_view KindName(const Value& value) {
  switch (value.kind_case()) {
    case Value::kIntValue:
      return "int";
    case Value::kDoubleValue:
      return "double";
    case Value::kStringValue:
      return "string";
    case Value::kBoolValue:
      return "bool";
    case Value::kBytesValue:
      return "bytes";
    case Value::kJsonValue:
      return JsonKindName(value.json_value());
    case Value::KIND_NOT_SET:
      break;
  }
  return "unset";
}

absl::Status ValidateValue(const Value& value, absl::string_view field) {
  switch (value.kind_case()) {
    case Value::KIND_NOT_SET:
      return ValueMissing(field);
    case Value::kJsonValue:
      return ValidateJson(value.json_value(), field, 0);
    default:
      return absl::OkStatus();
  }
}

size_t ValueBytes(const Value& value) { return value.ByteSizeLong(); }

bool JsonEqual(const google::protobuf::Value& a,
               const google::protobuf::Value& b) {
  if (a.kind_case() != b.kind_case()) return false;
  switch (a.kind_case()) {
    case google::protobuf::Value::kNullValue:
    case google::protobuf::Value::KIND_NOT_SET:
      return true;
    case google::protobuf::Value::kNumberValue:
      return a.number_value() == b.number_value();
    case google::protobuf::Value::kStringValue:
      return a.string_value() == b.string_value();
    case google::protobuf::Value::kBoolValue:
      return a.bool_value() == b.bool_value();
    case google::protobuf::Value::kStructValue: {
      const auto& fa = a.struct_value().fields();
      const auto& fb = b.struct_value().fields();
      if (fa.size() != fb.size()) return false;
      for (const auto& [name, member] : fa) {
        auto it = fb.find(name);
        if (it == fb.end() || !JsonEqual(member, it->second)) return false;
      }
      return true;
    }
    case google::protobuf::Value::kListValue: {
      const auto& la = a.list_value().values();
      const auto& lb = b.list_value().values();
      if (la.size() != lb.size()) return false;
      for (int i = 0; i < la.size(); ++i) {
        if (!JsonEqual(la[i], lb[i])) return false;
      }
      return true;
    }
  }
  return false;
}

bool ValuesEqual(const Value& a, const Value& b) {
  if (a.kind_case() != b.kind_case()) return false;
  switch (a.kind_case()) {
    case Value::kIntValue:
      return a.int_value() == b.int_value();
    case Value::kDoubleValue:
      return a.double_value() == b.double_value();
    case Value::kStringValue:
      return a.string_value() == b.string_value();
    case Value::kBoolValue:
      return a.bool_value() == b.bool_value();
    case Value::kBytesValue:
      return a.bytes_value() == b.bytes_value();
    case Value::kJsonValue:
      return JsonEqual(a.json_value(), b.json_value());
    case Value::KIND_NOT_SET:
      return true;
  }
  return false;
}

absl::StatusOr<OpResult> Add(const Value* current, const Value& operand) {
  absl::Status s = CheckNumberOperand("add", operand);
  if (!s.ok()) return s;
  const Value zero = ZeroOf(operand);
  const Value& base = current != nullptr ? *current : zero;
  s = CheckSameKind("add", base, operand);
  if (!s.ok()) return s;
  Value sum;
  if (operand.kind_case() == Value::kIntValue) {
    int64_t result = 0;
    if (__builtin_add_overflow(base.int_value(), operand.int_value(),
                               &result)) {
      return IntOverflow("add", base.int_value(), operand.int_value());
    }
    sum.set_int_value(result);
  } else {
    sum.set_double_value(base.double_value() + operand.double_value());
  }
  if (current == nullptr) return Changed(std::move(sum));
  return Result(*current, std::move(sum));
}

absl::StatusOr<OpResult> Append(const Value* current, const Value& operand) {
  absl::Status s = CheckAppendOperand(operand);
  if (!s.ok()) return s;
  Value result = current != nullptr ? *current : ZeroOf(operand);
  switch (operand.kind_case()) {
    case Value::kStringValue:
      if (result.kind_case() != Value::kStringValue) {
        return KindMismatch("append", KindName(result), KindName(operand));
      }
      result.mutable_string_value()->append(operand.string_value());
      break;
    case Value::kBytesValue:
      if (result.kind_case() != Value::kBytesValue) {
        return KindMismatch("append", KindName(result), KindName(operand));
      }
      result.mutable_bytes_value()->append(operand.bytes_value());
      break;
    default:  // json_value: appended as one element of a JSON array
      if (!IsJsonArray(result)) {
        return KindMismatch("append", KindName(result),
                            "json element (onto a json array)");
      }
      *result.mutable_json_value()->mutable_list_value()->add_values() =
          operand.json_value();
      break;
  }
  if (current == nullptr) return Changed(std::move(result));
  return Result(*current, std::move(result));
}

void MergePatch(google::protobuf::Value* target,
                const google::protobuf::Value& patch) {
  if (!patch.has_struct_value()) {
    *target = patch;
    return;
  }
  if (!target->has_struct_value()) target->mutable_struct_value();
  auto* fields = target->mutable_struct_value()->mutable_fields();
  for (const auto& [name, value] : patch.struct_value().fields()) {
    if (value.has_null_value()) {
      fields->erase(name);
    } else {
      MergePatch(&(*fields)[name], value);
    }
  }
}

absl::StatusOr<OpResult> Merge(const Value* current, const Value& operand) {
  absl::Status s = CheckMergeOperand(operand);
  if (!s.ok()) return s;
  Value result;
  if (current != nullptr) {
    if (!IsJsonObject(*current)) {
      return KindMismatch("merge", KindName(*current), KindName(operand));
    }
    result = *current;
  } else {
    result.mutable_json_value()->mutable_struct_value();
  }
  MergePatch(result.mutable_json_value(), operand.json_value());
  if (current == nullptr) return Changed(std::move(result));
  return Result(*current, std::move(result));
}

absl::StatusOr<OpResult> CompareAndSet(absl::string_view key,
                                       const Value* current,
                                       const Value& expected,
                                       const Value& new_value) {
  absl::Status s = ValidateValue(expected, "compare_and_set.expected");
  if (!s.ok()) return s;
  s = ValidateValue(new_value, "compare_and_set.new_value");
  if (!s.ok()) return s;
  if (current == nullptr) return KeyNotFound(key);
  if (!ValuesEqual(*current, expected))
    return CompareAndSetFailed(key, KindName(*current));
  return Result(*current, new_value);
}

absl::StatusOr<OpResult> Min(const Value* current, const Value& operand) {
  return MinMax("min", current, operand,
                [](auto op, auto cur) { return op < cur; });
}

absl::StatusOr<OpResult> Max(const Value* current, const Value& operand) {
  return MinMax("max", current, operand,
                [](auto op, auto cur) { return op > cur; });
}

absl::StatusOr<OpResult> Toggle(const Value* current) {
  Value result;
  if (current == nullptr) {
    result.set_bool_value(true);
    return Changed(std::move(result));
  }
  if (current->kind_case() != Value::kBoolValue) {
    return KindMismatch("toggle", KindName(*current), "bool");
  }
  result.set_bool_value(!current->bool_value());
  return Changed(std::move(result));
}

absl::Status ValidateUpdate(const tshare::v1::UpdateRequest& request) {
  using R = tshare::v1::UpdateRequest;
  switch (request.op_case()) {
    case R::kAdd:
      return CheckNumberOperand("add", request.add());
    case R::kAppend:
      return CheckAppendOperand(request.append());
    case R::kMerge:
      return CheckMergeOperand(request.merge());
    case R::kCompareAndSet: {
      absl::Status s = ValidateValue(request.compare_and_set().expected(),
                                     "compare_and_set.expected");
      if (!s.ok()) return s;
      return ValidateValue(request.compare_and_set().new_value(),
                           "compare_and_set.new_value");
    }
    case R::kMin:
      return CheckNumberOperand("min", request.min());
    case R::kMax:
      return CheckNumberOperand("max", request.max());
    case R::kToggle:
      return absl::OkStatus();
    case R::OP_NOT_SET:
      break;
  }
  return UpdateOpMissing();
}

absl::StatusOr<OpResult> ApplyUpdate(const tshare::v1::UpdateRequest& request,
                                     const Value* current) {
  using R = tshare::v1::UpdateRequest;
  switch (request.op_case()) {
    case R::kAdd:
      return Add(current, request.add());
    case R::kAppend:
      return Append(current, request.append());
    case R::kMerge:
      return Merge(current, request.merge());
    case R::kCompareAndSet:
      return CompareAndSet(request.key(), current,
                           request.compare_and_set().expected(),
                           request.compare_and_set().new_value());
    case R::kMin:
      return Min(current, request.min());
    case R::kMax:
      return Max(current, request.max());
    case R::kToggle:
      return Toggle(current);
    case R::OP_NOT_SET:
      break;
  }
  return UpdateOpMissing();
}

absl::StatusOr<int> CompareNumbers(absl::string_view op, const Value& value,
                                   const Value& operand) {
  absl::Status s = CheckNumberOperand(op, operand);
  if (!s.ok()) return s;
  if (value.kind_case() != operand.kind_case()) {
    return KindMismatch(op, KindName(value), KindName(operand));
  }
  if (value.kind_case() == Value::kIntValue) {
    return value.int_value() < operand.int_value()   ? -1
           : value.int_value() > operand.int_value() ? 1
                                                     : 0;
  }
  const double a = value.double_value();
  const double b = operand.double_value();
  return a < b ? -1 : a > b ? 1 : 0;
}

}  // namespace tshare::service
