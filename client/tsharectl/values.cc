#include "client/tsharectl/values.h"

#include <cctype>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/reflection.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/util/json_util.h"

namespace tshare::tsharectl {
namespace {

bool AllDigits(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

absl::string_view WithoutSign(absl::string_view s) {
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) s.remove_prefix(1);
  return s;
}

// [+-]digits
bool IsIntegerSyntax(absl::string_view s) { return AllDigits(WithoutSign(s)); }

// [+-](digits[.digits*] | .digits)([eE][+-]digits)?  — a decimal number, not
// "inf" or "nan".
bool IsNumberSyntax(absl::string_view s) {
  s = WithoutSign(s);
  const size_t e = s.find_first_of("eE");
  absl::string_view mantissa = s.substr(0, e);
  if (e != absl::string_view::npos && !IsIntegerSyntax(s.substr(e + 1)))
    return false;
  const size_t dot = mantissa.find('.');
  if (dot == absl::string_view::npos) return AllDigits(mantissa);
  absl::string_view whole = mantissa.substr(0, dot);
  absl::string_view fraction = mantissa.substr(dot + 1);
  if (whole.empty()) return AllDigits(fraction);
  return AllDigits(whole) && (fraction.empty() || AllDigits(fraction));
}

absl::Status NotA(absl::string_view text, absl::string_view what,
                  absl::string_view flag) {
  return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is not ", what,
                                                 "; give one, or drop ", flag));
}

Json FromProtoJson(const google::protobuf::Message& message) {
  std::string text;
  if (!google::protobuf::util::MessageToJsonString(message, &text).ok())
    return Json();
  return Json::parse(text, nullptr, /*allow_exceptions=*/false);
}

OutJson FieldValue(const google::protobuf::Message& message,
                   const google::protobuf::FieldDescriptor* field, int index);

OutJson MessageValue(const google::protobuf::Message& message) {
  const std::string& type = message.GetDescriptor()->full_name();
  if (type == "google.protobuf.Timestamp") {
    const auto* reflection = message.GetReflection();
    const auto* d = message.GetDescriptor();
    const int64_t seconds =
        reflection->GetInt64(message, d->FindFieldByName("seconds"));
    const int32_t nanos =
        reflection->GetInt32(message, d->FindFieldByName("nanos"));
    if (seconds == 0 && nanos == 0) return OutJson();
    const absl::Time t =
        absl::FromUnixSeconds(seconds) + absl::Nanoseconds(nanos);
    return absl::FormatTime(absl::RFC3339_full, t, absl::UTCTimeZone());
  }
  if (type == "google.protobuf.Duration" || type == "google.protobuf.Value" ||
      type == "google.protobuf.Struct" || type == "google.protobuf.ListValue") {
    return OutJson(FromProtoJson(message));
  }
  if (type == "tshare.v1.Value") {
    v1::Value value;
    value.CopyFrom(message);
    absl::StatusOr<Value> v = FromProto(value);
    if (!v.ok()) return OutJson();
    return OutJson(v->ToJson());
  }
  OutJson out = OutJson::object();
  const auto* descriptor = message.GetDescriptor();
  const auto* reflection = message.GetReflection();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* field = descriptor->field(i);
    if (field->is_repeated()) {
      OutJson array = OutJson::array();
      const int n = reflection->FieldSize(message, field);
      for (int j = 0; j < n; ++j)
        array.push_back(FieldValue(message, field, j));
      out[field->name()] = std::move(array);
      continue;
    }
    // Message fields and members of a oneof only when set; other scalars
    // always.
    const bool explicit_presence =
        field->cpp_type() ==
            google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE ||
        field->containing_oneof() != nullptr;
    if (explicit_presence && !reflection->HasField(message, field)) continue;
    out[field->name()] = FieldValue(message, field, -1);
  }
  return out;
}

// One field's value; `index` < 0 for a singular field.
OutJson FieldValue(const google::protobuf::Message& message,
                   const google::protobuf::FieldDescriptor* field, int index) {
  using FD = google::protobuf::FieldDescriptor;
  const auto* r = message.GetReflection();
  const bool rep = index >= 0;
  switch (field->cpp_type()) {
    case FD::CPPTYPE_INT32:
      return rep ? r->GetRepeatedInt32(message, field, index)
                 : r->GetInt32(message, field);
    case FD::CPPTYPE_INT64:
      return rep ? r->GetRepeatedInt64(message, field, index)
                 : r->GetInt64(message, field);
    case FD::CPPTYPE_UINT32:
      return rep ? r->GetRepeatedUInt32(message, field, index)
                 : r->GetUInt32(message, field);
    case FD::CPPTYPE_UINT64:
      return rep ? r->GetRepeatedUInt64(message, field, index)
                 : r->GetUInt64(message, field);
    case FD::CPPTYPE_DOUBLE:
      return rep ? r->GetRepeatedDouble(message, field, index)
                 : r->GetDouble(message, field);
    case FD::CPPTYPE_FLOAT:
      return rep ? r->GetRepeatedFloat(message, field, index)
                 : r->GetFloat(message, field);
    case FD::CPPTYPE_BOOL:
      return rep ? r->GetRepeatedBool(message, field, index)
                 : r->GetBool(message, field);
    case FD::CPPTYPE_ENUM: {
      const int number = rep ? r->GetRepeatedEnumValue(message, field, index)
                             : r->GetEnumValue(message, field);
      const google::protobuf::EnumValueDescriptor* value =
          field->enum_type()->FindValueByNumber(number);
      if (value == nullptr) return number;
      return value->name();
    }
    case FD::CPPTYPE_STRING: {
      std::string s = rep ? r->GetRepeatedString(message, field, index)
                          : r->GetString(message, field);
      if (field->type() == FD::TYPE_BYTES) return absl::Base64Escape(s);
      return s;
    }
    case FD::CPPTYPE_MESSAGE:
      return MessageValue(rep ? r->GetRepeatedMessage(message, field, index)
                              : r->GetMessage(message, field));
  }
  return OutJson();
}

}  // namespace

absl::StatusOr<Value> ParseValue(absl::string_view text, ValueType type) {
  const absl::string_view t = text;
  switch (type) {
    case ValueType::kAuto: {
      if (IsIntegerSyntax(text)) {
        int64_t i = 0;
        if (!absl::SimpleAtoi(t, &i)) {
          return absl::InvalidArgumentError(
              absl::StrCat(text,
                           " does not fit an int (int64); give --double or "
                           "--string to store it"));
        }
        return Value::Int(i);
      }
      if (IsNumberSyntax(text)) {
        double d = 0;
        if (absl::SimpleAtod(t, &d)) return Value::Double(d);
      }
      if (text == "true") return Value::Bool(true);
      if (text == "false") return Value::Bool(false);
      return Value::String(std::string(text));
    }
    case ValueType::kInt: {
      int64_t i = 0;
      if (!IsIntegerSyntax(text) || !absl::SimpleAtoi(t, &i)) {
        return NotA(text, "an int (a whole number within int64)", "--int");
      }
      return Value::Int(i);
    }
    case ValueType::kDouble: {
      double d = 0;
      if (!absl::SimpleAtod(t, &d)) return NotA(text, "a number", "--double");
      return Value::Double(d);
    }
    case ValueType::kBool: {
      bool b = false;
      if (!absl::SimpleAtob(t, &b)) {
        return NotA(text, "a bool (true, false, yes, no, 1, 0)", "--bool");
      }
      return Value::Bool(b);
    }
    case ValueType::kString:
      return Value::String(std::string(text));
    case ValueType::kJson: {
      Json json = Json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (json.is_discarded()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "\"", text,
            "\" is not JSON; quote the value for the shell, e.g. '{\"a\":1}', "
            "or drop --json to store it as a string"));
      }
      return Value::FromJson(std::move(json));
    }
    case ValueType::kBytesBase64: {
      std::string bytes;
      if (!absl::Base64Unescape(t, &bytes)) {
        return NotA(text, "base64 text (e.g. AAE=)", "--bytes-base64");
      }
      return Value::FromBytes(client::Bytes{std::move(bytes)});
    }
  }
  return absl::InvalidArgumentError("unknown value type");
}

absl::StatusOr<absl::Duration> ParseDurationFlag(absl::string_view text) {
  const absl::string_view t = text;
  absl::Duration d;
  double seconds = 0;
  if (IsNumberSyntax(text) && absl::SimpleAtod(t, &seconds)) {
    d = absl::Seconds(seconds);
  } else if (!absl::ParseDuration(t, &d)) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text,
                     "\" is not a duration; write it like 10s, 250ms, 1m30s, "
                     "or 2 (seconds)"));
  }
  if (d < absl::ZeroDuration() || d == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the duration \"", text, "\" must be positive and finite"));
  }
  return d;
}

const char* KindLabel(ValueKind kind) {
  switch (kind) {
    case ValueKind::kInt:
      return "int";
    case ValueKind::kDouble:
      return "double";
    case ValueKind::kString:
      return "string";
    case ValueKind::kBool:
      return "bool";
    case ValueKind::kBytes:
      return "bytes";
    case ValueKind::kJson:
      return "json";
  }
  return "unknown";
}

std::string DumpJson(const Json& json) {
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string DumpJson(const OutJson& json) {
  return json.dump(-1, ' ', false, OutJson::error_handler_t::replace);
}

std::string FormatPlain(const Value& value) {
  switch (value.kind()) {
    case ValueKind::kInt:
      return absl::StrCat(value.int_value());
    case ValueKind::kString:
      return value.string_value();
    case ValueKind::kBool:
      return value.bool_value() ? "true" : "false";
    case ValueKind::kBytes:
      return value.bytes_value().data;
    case ValueKind::kDouble:
    case ValueKind::kJson:
      return DumpJson(value.ToJson());
  }
  return "";
}

std::string FormatInline(const Value& value) {
  return DumpJson(value.ToJson());
}

absl::StatusOr<Value> FromProto(const v1::Value& value) {
  switch (value.kind_case()) {
    case v1::Value::kIntValue:
      return Value::Int(value.int_value());
    case v1::Value::kDoubleValue:
      return Value::Double(value.double_value());
    case v1::Value::kStringValue:
      return Value::String(value.string_value());
    case v1::Value::kBoolValue:
      return Value::Bool(value.bool_value());
    case v1::Value::kBytesValue:
      return Value::FromBytes(client::Bytes{value.bytes_value()});
    case v1::Value::kJsonValue:
      return Value::FromJson(FromProtoJson(value.json_value()));
    case v1::Value::KIND_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("the server sent a value without a kind");
}

OutJson ProtoToJson(const google::protobuf::Message& message) {
  return MessageValue(message);
}

}  // namespace tshare::tsharectl
