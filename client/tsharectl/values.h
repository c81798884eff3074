// How tsharectl reads values from the command line and prints them back: the
// typing rules of `set visits 1` (an int), `set ratio 1.5` (a double),
// `set on true` (a bool), the forced types (--int, --double, --bool, --string,
// --json, --bytes-base64), durations ("10s", "250ms"), and the plain and JSON
// forms of values and protobuf messages.
//
// Thread-safety: pure functions; safe from any thread.
#ifndef TSHARE_CLIENT_TSHARECTL_VALUES_H_
#define TSHARE_CLIENT_TSHARECTL_VALUES_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/value.h"
#include "google/protobuf/message.h"
#include "nlohmann/json.hpp"
#include "tshare/v1/types.pb.h"

namespace tshare::tsharectl {

using client::Json;
using client::Value;
// What tsharectl prints: members in the order they are added (or declared, for
// protobuf).
using OutJson = nlohmann::ordered_json;
using client::ValueKind;

// The type a value given on the command line gets.
enum class ValueType {
  // An integer is an int, another number a double, true/false a bool, anything
  // else a string.
  kAuto,
  kInt,
  kDouble,
  kBool,
  kString,
  // JSON text: objects, arrays, or any other JSON value.
  kJson,
  // Base64 text, stored as raw bytes.
  kBytesBase64,
};

// `text` as a value of `type`. INVALID_ARGUMENT, saying what to change, when
// the text does not fit the type (or, for kAuto, an integer that does not fit
// an int64).
//
//   ParseValue("1", ValueType::kAuto)      → Value::Int(1)
//   ParseValue("1.5", ValueType::kAuto)    → Value::Double(1.5)
//   ParseValue("1", ValueType::kString)    → Value::String("1")
//   ParseValue("{\"a\":1}", ValueType::kJson) → Value::FromJson({"a": 1})
absl::StatusOr<Value> ParseValue(absl::string_view text, ValueType type);

// A duration flag: "10s", "250ms", "1m30s" (absl::ParseDuration), or a plain
// number of seconds ("2", "0.5"). INVALID_ARGUMENT for anything else or a
// negative duration.
absl::StatusOr<absl::Duration> ParseDurationFlag(absl::string_view text);

// "int", "double", "string", "bool", "bytes" or "json": the `kind` field of
// --json output.
const char* KindLabel(ValueKind kind);

// The value as `get` prints it: a string raw, bytes raw, JSON compact, numbers
// and bools as themselves (a double keeps a decimal point: 2.0).
std::string FormatPlain(const Value& value);

// The value on one line, unambiguously, as ls, watch and sub print it: its JSON
// form (strings quoted, bytes as a base64 string).
std::string FormatInline(const Value& value);

// Compact JSON text of `json` on one line; invalid UTF-8 in strings becomes
// U+FFFD.
std::string DumpJson(const Json& json);
std::string DumpJson(const OutJson& json);

// A tshare.v1.Value as a client Value; INVALID_ARGUMENT for one without a kind.
absl::StatusOr<Value> FromProto(const v1::Value& value);

// A protobuf message as JSON for tsharectl's --json output: proto field names,
// every scalar field (zeros included), 64-bit integers as JSON numbers, enums
// by name, Timestamps as RFC 3339 text, Durations as "1.5s", tshare.v1.Value as
// its JSON form, bytes as base64.
OutJson ProtoToJson(const google::protobuf::Message& message);

}  // namespace tshare::tsharectl

#endif  // TSHARE_CLIENT_TSHARECTL_VALUES_H_
