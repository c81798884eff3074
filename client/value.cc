#include "client/value.h"

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace tshare::client {
namespace {

// absl::StrCat takes absl::string_view, which is not std::string_view here.
absl::string_view Sv(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

// How to read a value of each kind, for the hint in kind mismatch errors.
std::string_view ReadAs(ValueKind kind) {
  switch (kind) {
    case ValueKind::kInt:
      return "Get<int64_t>";
    case ValueKind::kDouble:
      return "Get<double>";
    case ValueKind::kString:
      return "Get<std::string>";
    case ValueKind::kBool:
      return "Get<bool>";
    case ValueKind::kBytes:
      return "Get<Bytes>";
    case ValueKind::kJson:
      return "Get<Json>";
  }
  return "Get<Value>";
}

std::string Subject(std::string_view key) {
  if (key.empty()) return "the value";
  return absl::StrCat("key \"", Sv(key), "\"");
}

}  // namespace

std::string_view KindName(ValueKind kind) {
  switch (kind) {
    case ValueKind::kInt:
      return "an int";
    case ValueKind::kDouble:
      return "a double";
    case ValueKind::kString:
      return "a string";
    case ValueKind::kBool:
      return "a bool";
    case ValueKind::kBytes:
      return "bytes";
    case ValueKind::kJson:
      return "a JSON value";
  }
  return "an unknown kind";
}

absl::Status KindMismatchError(std::string_view key, ValueKind held,
                               ValueKind wanted) {
  return absl::FailedPreconditionError(
      absl::StrCat(Subject(key), " holds ", Sv(KindName(held)), ", not ",
                   Sv(KindName(wanted)), ": read it with ", Sv(ReadAs(held)),
                   " (or Get<Value> for any kind), or set it to ",
                   Sv(KindName(wanted)), " first"));
}

namespace value_internal {

absl::Status OutOfRangeError(std::string_view key, const Value& v,
                             std::string_view type) {
  return absl::OutOfRangeError(
      absl::StrCat(Subject(key), " holds ", v.DebugString(),
                   ", which does not fit ", Sv(type), ": read it as int64_t"));
}

absl::Status UnsignedTooLargeError(uint64_t v) {
  return absl::OutOfRangeError(absl::StrCat(
      v, " does not fit an int value (int64, at most 9223372036854775807)"));
}

}  // namespace value_internal

Json Value::ToJson() const {
  switch (kind()) {
    case ValueKind::kInt:
      return Json(int_value());
    case ValueKind::kDouble:
      return Json(double_value());
    case ValueKind::kString:
      return Json(string_value());
    case ValueKind::kBool:
      return Json(bool_value());
    case ValueKind::kBytes:
      return Json(absl::Base64Escape(bytes_value().data));
    case ValueKind::kJson:
      return json_value();
  }
  return Json(nullptr);
}

std::string Value::DebugString() const {
  switch (kind()) {
    case ValueKind::kBytes:
      return absl::StrCat("bytes:", absl::Base64Escape(bytes_value().data));
    case ValueKind::kJson:
      return json_value().dump(-1, ' ', false, Json::error_handler_t::replace);
    default:
      return ToJson().dump(-1, ' ', false, Json::error_handler_t::replace);
  }
}

}  // namespace tshare::client
