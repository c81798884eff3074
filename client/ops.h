// Operations and comparisons on keys: Op (what Client::Apply runs and a
// transaction's branches hold) and Compare (a transaction's conditions).
//
// Thread-safety: Op and Compare are immutable value types once built; copies
// are independent and may be used from any thread.
#ifndef TSHARE_CLIENT_OPS_H_
#define TSHARE_CLIENT_OPS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/value.h"

namespace tshare::client {

// One operation on one key. Built by the static functions below; a value that
// cannot be encoded (a uint64_t above INT64_MAX) makes an Op whose status() is
// that error, reported when the Op is used.
//
//   client->Txn()
//       .If(Compare::Version("stock") == 4)
//       .Then(Op::Add("stock", -1))
//       .Then(Op::Append("log", "sold one"))
//       .Commit();
class Op final {
 public:
  enum class Kind {
    kGet,
    kSet,
    kDelete,
    kDeletePrefix,
    // The atomic operations (the wire's UpdateRequest ops).
    kAdd,
    kAppend,
    kMerge,
    kCompareAndSet,
    kMin,
    kMax,
    kToggle,
  };

  static Op Get(std::string_view key) { return Op(Kind::kGet, key); }
  // With if_version: only if the key's version equals it (0: only if absent).
  template <typename T>
  static Op Set(std::string_view key, const T& value,
                std::optional<uint64_t> if_version = std::nullopt) {
    Op op(Kind::kSet, key, Value::Of(value));
    op.if_version_ = if_version;
    return op;
  }
  static Op Delete(std::string_view key,
                   std::optional<uint64_t> if_version = std::nullopt) {
    Op op(Kind::kDelete, key);
    op.if_version_ = if_version;
    return op;
  }
  // Deletes every key that starts with `prefix`.
  static Op DeletePrefix(std::string_view prefix) {
    return Op(Kind::kDeletePrefix, prefix);
  }

  // Adds an integral delta to an int, a floating-point one to a double. An
  // absent key starts from 0; an int overflow is OUT_OF_RANGE.
  template <typename T>
  requires(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) static Op
      Add(std::string_view key, T delta) {
    return Op(Kind::kAdd, key, Value::Of(delta));
  }
  // A string onto a string, Bytes onto bytes, or a Json element onto a JSON
  // array.
  template <typename T>
  static Op Append(std::string_view key, const T& value) {
    return Op(Kind::kAppend, key, Value::Of(value));
  }
  // A JSON object merged into a JSON object (RFC 7386: a null member removes
  // that member).
  static Op Merge(std::string_view key, Json patch) {
    return Op(Kind::kMerge, key, Value::FromJson(std::move(patch)));
  }
  // Writes new_value if the key holds exactly `expected` (same kind and value);
  // FAILED_PRECONDITION otherwise, NOT_FOUND for an absent key.
  template <typename E, typename N>
  static Op CompareAndSet(std::string_view key, const E& expected,
                          const N& new_value) {
    Op op(Kind::kCompareAndSet, key, Value::Of(expected));
    absl::StatusOr<Value> n = Value::Of(new_value);
    if (n.ok()) {
      op.new_value_ = *std::move(n);
    } else if (op.status_.ok()) {
      op.status_ = n.status();
    }
    return op;
  }
  // Keeps the smaller (Min) or larger (Max) of the current int or double and
  // this.
  template <typename T>
  requires(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) static Op
      Min(std::string_view key, T v) {
    return Op(Kind::kMin, key, Value::Of(v));
  }
  template <typename T>
  requires(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) static Op
      Max(std::string_view key, T v) {
    return Op(Kind::kMax, key, Value::Of(v));
  }
  // Flips a bool (an absent key starts from false, so it becomes true).
  static Op Toggle(std::string_view key) { return Op(Kind::kToggle, key); }

  // The same op, applied only if the key's version equals `version` (0: only if
  // absent). Not for kGet and kDeletePrefix (INVALID_ARGUMENT when used).
  Op IfVersion(uint64_t version) const {
    Op op = *this;
    op.if_version_ = version;
    return op;
  }

  Kind kind() const { return kind_; }
  const std::string& key() const { return key_; }
  // The operand (Set's value, Add's delta, CompareAndSet's expected value,
  // ...).
  const Value& operand() const { return operand_; }
  // CompareAndSet's new value.
  const Value& new_value() const { return new_value_; }
  const std::optional<uint64_t>& if_version() const { return if_version_; }
  // OK unless an operand could not be encoded.
  const absl::Status& status() const { return status_; }
  // True for the kinds the wire's Update call runs (kAdd ... kToggle).
  bool is_atomic_update() const { return kind_ >= Kind::kAdd; }

 private:
  Op(Kind kind, std::string_view key) : kind_(kind), key_(key) {}
  Op(Kind kind, std::string_view key, absl::StatusOr<Value> operand)
      : kind_(kind), key_(key) {
    if (operand.ok()) {
      operand_ = *std::move(operand);
    } else {
      status_ = operand.status();
    }
  }

  Kind kind_;
  std::string key_;
  Value operand_;
  Value new_value_;
  std::optional<uint64_t> if_version_;
  absl::Status status_;
};

// One condition of a transaction.
//
//   Compare::Version("k") == 3          the key's version (0 if absent)
//   Compare::ModRevision("k") < 100     the key's latest change (0 if absent)
//   Compare::Value("n") > 5             the key's value (> and < for ints and
//   doubles) Compare::Exists("k"), Compare::Missing("k")
class Compare final {
 public:
  enum class Operator { kEqual, kNotEqual, kGreater, kLess };
  enum class Target { kValue, kVersion, kExists, kModRevision };

  // A key's version or mod_revision, waiting for an operator.
  class NumberOf final {
   public:
    Compare operator==(uint64_t n) const { return Make(Operator::kEqual, n); }
    Compare operator!=(uint64_t n) const {
      return Make(Operator::kNotEqual, n);
    }
    Compare operator>(uint64_t n) const { return Make(Operator::kGreater, n); }
    Compare operator<(uint64_t n) const { return Make(Operator::kLess, n); }

   private:
    friend class Compare;
    NumberOf(Target target, std::string_view key)
        : target_(target), key_(key) {}
    Compare Make(Operator op, uint64_t n) const {
      Compare c(target_, op, key_);
      c.number_ = n;
      return c;
    }
    Target target_;
    std::string key_;
  };

  // A key's value, waiting for an operator and an operand of any type
  // ValueTraits maps.
  class ValueOf final {
   public:
    template <typename T>
    Compare operator==(const T& v) const {
      return Make(Operator::kEqual, ::tshare::client::Value::Of(v));
    }
    template <typename T>
    Compare operator!=(const T& v) const {
      return Make(Operator::kNotEqual, ::tshare::client::Value::Of(v));
    }
    template <typename T>
    Compare operator>(const T& v) const {
      return Make(Operator::kGreater, ::tshare::client::Value::Of(v));
    }
    template <typename T>
    Compare operator<(const T& v) const {
      return Make(Operator::kLess, ::tshare::client::Value::Of(v));
    }

   private:
    friend class Compare;
    explicit ValueOf(std::string_view key) : key_(key) {}
    Compare Make(Operator op, absl::StatusOr<::tshare::client::Value> v) const {
      Compare c(Target::kValue, op, key_);
      if (v.ok()) {
        c.value_ = *std::move(v);
      } else {
        c.status_ = v.status();
      }
      return c;
    }
    std::string key_;
  };

  static NumberOf Version(std::string_view key) {
    return NumberOf(Target::kVersion, key);
  }
  static NumberOf ModRevision(std::string_view key) {
    return NumberOf(Target::kModRevision, key);
  }
  static ValueOf Value(std::string_view key) { return ValueOf(key); }
  static Compare Exists(std::string_view key) {
    Compare c(Target::kExists, Operator::kEqual, key);
    c.exists_ = true;
    return c;
  }
  static Compare Missing(std::string_view key) {
    Compare c(Target::kExists, Operator::kEqual, key);
    c.exists_ = false;
    return c;
  }

  Target target() const { return target_; }
  Operator op() const { return op_; }
  const std::string& key() const { return key_; }
  // kValue: the operand. kVersion / kModRevision: number(). kExists: exists().
  const ::tshare::client::Value& value() const { return value_; }
  uint64_t number() const { return number_; }
  bool exists() const { return exists_; }
  // OK unless the operand could not be encoded.
  const absl::Status& status() const { return status_; }

 private:
  Compare(Target target, Operator op, std::string_view key)
      : target_(target), op_(op), key_(key) {}

  Target target_;
  Operator op_;
  std::string key_;
  ::tshare::client::Value value_;
  uint64_t number_ = 0;
  bool exists_ = false;
  absl::Status status_;
};

}  // namespace tshare::client

#endif  // TSHARE_CLIENT_OPS_H_
