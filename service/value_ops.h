// Typed operations on tshare.v1.Value: the meaning of Shares/Update and of Txn
// value compares.
//
// Every function is pure: it reads its arguments and returns a new value or a
// status, so the store can run it outside its lock and commit the result only
// if the key did not change meanwhile. Kinds are never converted: an op whose
// operand does not fit the key's value is INVALID_ARGUMENT naming both kinds.
//
// Thread-safety: pure functions; safe from any thread.
//
//   const tshare::v1::Value* current = ...;  // nullptr: the key does not exist
//   absl::StatusOr<OpResult> r = ApplyUpdate(request, current);
//   if (r.ok() && r->changed) { /* write r->value */ }
#ifndef TSHARE_SERVICE_VALUE_OPS_H_
#define TSHARE_SERVICE_VALUE_OPS_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tshare/v1/shares.pb.h"
#include "tshare/v1/types.pb.h"

namespace tshare::service {

// The kind as users read it in messages: "int", "double", "string", "bool",
// "bytes", "json object", "json array", "json string", "json number", "json
// bool", "json null"; "unset" for a Value with no kind.
absl::string_view KindName(const tshare::v1::Value& value);

// OK if `value` has a kind and, for json_value, every nested value has one and
// every number is finite. `field` names the request field in the message.
absl::Status ValidateValue(const tshare::v1::Value& value,
                           absl::string_view field);

// Serialized size in bytes (what --max_value_bytes limits).
size_t ValueBytes(const tshare::v1::Value& value);

// Same kind and same value; JSON compared structurally (object member order
// does not matter). Doubles compare with ==.
bool ValuesEqual(const tshare::v1::Value& a, const tshare::v1::Value& b);
bool JsonEqual(const google::protobuf::Value& a,
               const google::protobuf::Value& b);

// The result of an op: the value to store and whether it differs from the
// current one.
struct OpResult {
  tshare::v1::Value value;
  // False when the op left the value as it was; always true when the key did
  // not exist.
  bool changed = false;
};

// In all ops, `current` == nullptr means the key does not exist: add, append,
// merge and toggle then start from the operand kind's zero (0, 0.0, "", empty
// bytes, [], {}, false); min and max store the operand.

// int + int (overflow: OUT_OF_RANGE) or double + double.
absl::StatusOr<OpResult> Add(const tshare::v1::Value* current,
                             const tshare::v1::Value& operand);
// string onto string, bytes onto bytes, any json_value onto a JSON array (as
// one element).
absl::StatusOr<OpResult> Append(const tshare::v1::Value* current,
                                const tshare::v1::Value& operand);
// RFC 7386 merge patch of a JSON object operand into a JSON object (null
// removes a member).
absl::StatusOr<OpResult> Merge(const tshare::v1::Value* current,
                               const tshare::v1::Value& operand);
// new_value if current equals expected; FAILED_PRECONDITION otherwise,
// NOT_FOUND if absent. `key` only names the key in messages.
absl::StatusOr<OpResult> CompareAndSet(absl::string_view key,
                                       const tshare::v1::Value* current,
                                       const tshare::v1::Value& expected,
                                       const tshare::v1::Value& new_value);
// The smaller / larger of an int and an int, or a double and a double.
absl::StatusOr<OpResult> Min(const tshare::v1::Value* current,
                             const tshare::v1::Value& operand);
absl::StatusOr<OpResult> Max(const tshare::v1::Value* current,
                             const tshare::v1::Value& operand);
// Flips a bool.
absl::StatusOr<OpResult> Toggle(const tshare::v1::Value* current);

// RFC 7386: applies `patch` to `target` in place.
void MergePatch(google::protobuf::Value* target,
                const google::protobuf::Value& patch);

// Checks what can be checked without the current value: an op is set and its
// operands are set, valid and of a kind the op accepts.
absl::Status ValidateUpdate(const tshare::v1::UpdateRequest& request);

// Runs request's op on `current` (nullptr: absent). Does not look at key or
// if_version.
absl::StatusOr<OpResult> ApplyUpdate(const tshare::v1::UpdateRequest& request,
                                     const tshare::v1::Value* current);

// Orders two int or two double values: <0, 0, >0. INVALID_ARGUMENT naming both
// kinds if they differ or are not numbers. `op` names the comparison in
// messages.
absl::StatusOr<int> CompareNumbers(absl::string_view op,
                                   const tshare::v1::Value& value,
                                   const tshare::v1::Value& operand);

}  // namespace tshare::service

#endif  // TSHARE_SERVICE_VALUE_OPS_H_
