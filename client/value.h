// Typed values of tshare shares, as a C++ program sees them: Value (one of the
// six kinds the wire API keeps), Bytes, Json, KeyValue, and ValueTraits, the
// table that maps C++ types to kinds for Client::Get<T>, Set, Update<T> and the
// rest.
//
// Thread-safety: Value, Bytes and KeyValue are plain value types with no shared
// state: const methods may be called from any number of threads at once;
// changing one object while another thread reads it needs the caller's own
// synchronization.
#ifndef TSHARE_CLIENT_VALUE_H_
#define TSHARE_CLIENT_VALUE_H_

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace tshare::client {

// JSON objects, arrays and the other JSON kinds (the wire's json_value).
// Numbers inside travel as doubles: integers beyond ±2^53 lose precision on the
// way.
using Json = nlohmann::json;

// Raw bytes (the wire's bytes_value). Its own type, so that std::string always
// means a string value and a Get<std::string> of bytes is a kind mismatch
// rather than a silent reinterpretation.
//
//   client->Set("blob", tshare::client::Bytes{std::string("\x00\x01", 2)});
struct Bytes {
  std::string data;

  friend bool operator==(const Bytes& a, const Bytes& b) = default;
};

// The kind of a stored value. A value keeps its kind: set as an int, it reads
// back as an int.
enum class ValueKind { kInt, kDouble, kString, kBool, kBytes, kJson };

// The kind as error messages name it: "an int", "a double", "a string", "a
// bool", "bytes", "a JSON value".
std::string_view KindName(ValueKind kind);

// FAILED_PRECONDITION `key "x" holds a string, not an int` (plus what to do
// about it): the error of every typed read whose type does not match the stored
// kind. An empty key reads "the value holds ...".
absl::Status KindMismatchError(std::string_view key, ValueKind held,
                               ValueKind wanted);

class Value;

// ValueTraits<T> maps the C++ type T to a kind. Specializations exist for every
// integral type but bool (int, the wire's int64; a value that does not fit T on
// reading, or a uint64_t above INT64_MAX on writing, is OUT_OF_RANGE), float
// and double (double), std::string (string; on writing also std::string_view,
// absl::string_view and C strings), bool, Bytes, Json and Value (any kind; no
// check). A type without a specialization does not compile.
//
// Each specialization has:
//   using Stored = ...;   the C++ type a value of this kind reads back as
//   (int64_t for ints) static absl::StatusOr<Value> Encode(const T&); static
//   absl::StatusOr<T> Decode(const Value&, std::string_view key);  // not for
//   views
template <typename T>
struct ValueTraits;

// The C++ type the kind of T reads back as: int64_t for every integral type,
// double for float, std::string for every string type, and T itself otherwise.
template <typename T>
using StoredType = typename ValueTraits<std::decay_t<T>>::Stored;

// One value of any kind. Default-constructed: the int 0.
//
//   Value v = Value::String("hello");
//   if (v.kind() == ValueKind::kString) Print(v.string_value());
//   absl::StatusOr<int64_t> n = v.As<int64_t>("greeting");  //
//   FAILED_PRECONDITION
class Value final {
 public:
  Value() = default;

  static Value Int(int64_t v) {
    return Value(Storage(std::in_place_index<0>, v));
  }
  static Value Double(double v) {
    return Value(Storage(std::in_place_index<1>, v));
  }
  static Value String(std::string v) {
    return Value(Storage(std::in_place_index<2>, std::move(v)));
  }
  static Value Bool(bool v) {
    return Value(Storage(std::in_place_index<3>, v));
  }
  static Value FromBytes(Bytes v) {
    return Value(Storage(std::in_place_index<4>, std::move(v)));
  }
  static Value FromJson(Json v) {
    return Value(Storage(std::in_place_index<5>, std::move(v)));
  }

  // The value of `v` with the kind ValueTraits gives its type: Value::Of(1) is
  // an int, Value::Of("x") a string. OUT_OF_RANGE for a uint64_t above
  // INT64_MAX.
  template <typename T>
  static absl::StatusOr<Value> Of(const T& v) {
    return ValueTraits<std::decay_t<const T&>>::Encode(v);
  }

  ValueKind kind() const { return static_cast<ValueKind>(v_.index()); }

  // REQUIRES: kind() is the accessor's kind.
  int64_t int_value() const { return std::get<0>(v_); }
  double double_value() const { return std::get<1>(v_); }
  const std::string& string_value() const { return std::get<2>(v_); }
  bool bool_value() const { return std::get<3>(v_); }
  const Bytes& bytes_value() const { return std::get<4>(v_); }
  const Json& json_value() const { return std::get<5>(v_); }

  // The value as T if its kind is T's kind (KindMismatchError otherwise, naming
  // `key`); never converts between kinds.
  template <typename T>
  absl::StatusOr<T> As(std::string_view key = {}) const {
    return ValueTraits<T>::Decode(*this, key);
  }

  // Any kind as JSON: numbers, strings, bools as themselves, bytes as a base64
  // string.
  Json ToJson() const;
  // For logs and messages: 42, 2.5, "text", true, bytes:AAE=, {"a":1}.
  std::string DebugString() const;

  friend bool operator==(const Value& a, const Value& b) {
    return a.v_ == b.v_;
  }

 private:
  using Storage = std::variant<int64_t, double, std::string, bool, Bytes, Json>;
  explicit Value(Storage v) : v_(std::move(v)) {}

  Storage v_;
};

// One key as the store holds it (List, watch events, snapshots).
struct KeyValue {
  std::string key;
  // Absent in DELETE events and in keys_only listings.
  std::optional<Value> value;
  // Changes since the key was (last) created: 1 after the first set; 0 in a
  // DELETE event.
  uint64_t version = 0;
  // Store revision of the change that created the key.
  uint64_t create_revision = 0;
  // Store revision of the key's latest change (of the deletion, in a DELETE
  // event).
  uint64_t mod_revision = 0;
};

// ---- ValueTraits specializations
// ------------------------------------------------------------

namespace value_internal {
absl::Status OutOfRangeError(std::string_view key, const Value& v,
                             std::string_view type);
absl::Status UnsignedTooLargeError(uint64_t v);
}  // namespace value_internal

template <typename T>
requires(std::is_integral_v<T> &&
         !std::is_same_v<T, bool>) struct ValueTraits<T> {
  using Stored = int64_t;
  static constexpr ValueKind kKind = ValueKind::kInt;
  static absl::StatusOr<Value> Encode(T v) {
    if constexpr (std::is_unsigned_v<T> && sizeof(T) >= sizeof(int64_t)) {
      if (v > static_cast<T>(std::numeric_limits<int64_t>::max())) {
        return value_internal::UnsignedTooLargeError(v);
      }
    }
    return Value::Int(static_cast<int64_t>(v));
  }
  static absl::StatusOr<T> Decode(const Value& v, std::string_view key) {
    if (v.kind() != kKind) return KindMismatchError(key, v.kind(), kKind);
    const int64_t i = v.int_value();
    if (!std::in_range<T>(i)) {
      return value_internal::OutOfRangeError(key, v,
                                             "the requested integer type");
    }
    return static_cast<T>(i);
  }
};

template <typename T>
requires std::is_floating_point_v<T>
struct ValueTraits<T> {
  using Stored = double;
  static constexpr ValueKind kKind = ValueKind::kDouble;
  static absl::StatusOr<Value> Encode(T v) {
    return Value::Double(static_cast<double>(v));
  }
  static absl::StatusOr<T> Decode(const Value& v, std::string_view key) {
    if (v.kind() != kKind) return KindMismatchError(key, v.kind(), kKind);
    return static_cast<T>(v.double_value());
  }
};

template <>
struct ValueTraits<bool> {
  using Stored = bool;
  static constexpr ValueKind kKind = ValueKind::kBool;
  static absl::StatusOr<Value> Encode(bool v) { return Value::Bool(v); }
  static absl::StatusOr<bool> Decode(const Value& v, std::string_view key) {
    if (v.kind() != kKind) return KindMismatchError(key, v.kind(), kKind);
    return v.bool_value();
  }
};

template <>
struct ValueTraits<std::string> {
  using Stored = std::string;
  static constexpr ValueKind kKind = ValueKind::kString;
  static absl::StatusOr<Value> Encode(const std::string& v) {
    return Value::String(v);
  }
  static absl::StatusOr<std::string> Decode(const Value& v,
                                            std::string_view key) {
    if (v.kind() != kKind) return KindMismatchError(key, v.kind(), kKind);
    return v.string_value();
  }
};

// Write-only string forms: they read back as std::string.
template <typename T>
requires(std::is_same_v<T, std::string_view> ||
         std::is_same_v<T, const char*> || std::is_same_v<T, char*> ||
         (std::is_same_v<T, absl::string_view> &&
          !std::is_same_v<T, std::string_view>)) struct ValueTraits<T> {
  using Stored = std::string;
  static constexpr ValueKind kKind = ValueKind::kString;
  static absl::StatusOr<Value> Encode(T v) {
    if constexpr (std::is_pointer_v<T>) {
      return Value::String(v == nullptr ? std::string() : std::string(v));
    } else {
      return Value::String(std::string(v.data(), v.size()));
    }
  }
};

template <>
struct ValueTraits<Bytes> {
  using Stored = Bytes;
  static constexpr ValueKind kKind = ValueKind::kBytes;
  static absl::StatusOr<Value> Encode(const Bytes& v) {
    return Value::FromBytes(v);
  }
  static absl::StatusOr<Bytes> Decode(const Value& v, std::string_view key) {
    if (v.kind() != kKind) return KindMismatchError(key, v.kind(), kKind);
    return v.bytes_value();
  }
};

template <>
struct ValueTraits<Json> {
  using Stored = Json;
  static constexpr ValueKind kKind = ValueKind::kJson;
  static absl::StatusOr<Value> Encode(const Json& v) {
    return Value::FromJson(v);
  }
  static absl::StatusOr<Json> Decode(const Value& v, std::string_view key) {
    if (v.kind() != kKind) return KindMismatchError(key, v.kind(), kKind);
    return v.json_value();
  }
};

// Value itself: any kind, no check.
template <>
struct ValueTraits<Value> {
  using Stored = Value;
  static absl::StatusOr<Value> Encode(const Value& v) { return v; }
  static absl::StatusOr<Value> Decode(const Value& v,
                                      std::string_view /*key*/) {
    return v;
  }
};

}  // namespace tshare::client

#endif  // TSHARE_CLIENT_VALUE_H_
