// Conversions between the client's types and the tshare.v1 wire messages.
//
// Thread-safety: pure functions.
#ifndef TSHARE_CLIENT_INTERNAL_CONVERT_H_
#define TSHARE_CLIENT_INTERNAL_CONVERT_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/client.h"
#include "client/ops.h"
#include "client/options.h"
#include "client/value.h"
#include "google/protobuf/struct.pb.h"
#include "tshare/v1/shares.pb.h"
#include "tshare/v1/types.pb.h"

namespace tshare::client::internal {

// JSON ↔ google.protobuf.Value. Numbers become doubles; on the way back a whole
// number within ±2^53 becomes a JSON integer. JSON binary values have no
// mapping (INVALID_ARGUMENT).
absl::Status JsonToProto(const Json& json, google::protobuf::Value* out);
Json JsonFromProto(const google::protobuf::Value& value);

absl::Status ValueToProto(const Value& value, v1::Value* out);
// INTERNAL for a value without a kind.
absl::StatusOr<Value> ValueFromProto(const v1::Value& value);

absl::StatusOr<KeyValue> KeyValueFromProto(const v1::KeyValue& kv);
Loss LossFromProto(const v1::Loss& loss);
v1::OverflowPolicy PolicyToProto(OverflowPolicy policy);

absl::StatusOr<Versioned<Value>> FromProto(const v1::GetResponse& r);
WriteResult FromProto(const v1::SetResponse& r);
absl::StatusOr<OpResult<Value>> FromProto(const v1::UpdateResponse& r);
DeleteResult FromProto(const v1::DeleteResponse& r);
absl::StatusOr<ListResult> FromProto(const v1::ListResponse& r);
absl::StatusOr<TxnResult> FromProto(const v1::TxnResponse& r);

// An atomic op (Op::Add ... Op::Toggle) as an UpdateRequest; INVALID_ARGUMENT
// for other kinds.
absl::Status OpToUpdateRequest(const Op& op, v1::UpdateRequest* out);
absl::Status OpToTxnOp(const Op& op, v1::TxnOp* out);
absl::Status CompareToProto(const Compare& compare, v1::Compare* out);

}  // namespace tshare::client::internal

#endif  // TSHARE_CLIENT_INTERNAL_CONVERT_H_
