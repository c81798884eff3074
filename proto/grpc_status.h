// Conversion between absl::Status and grpc::Status: the one place where the two
// meet. absl::StatusCode values are gRPC's codes, so the conversion keeps code
// and message. Thread-safety: pure functions.
#ifndef TSHARE_PROTO_GRPC_STATUS_H_
#define TSHARE_PROTO_GRPC_STATUS_H_

#include <string_view>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace tshare {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

// The spelling Prometheus and the gRPC ecosystem use for a code in labels:
// "OK", "Canceled", "InvalidArgument", "DeadlineExceeded", ... (Go's
// codes.Code.String()).
std::string_view GrpcCodeLabel(grpc::StatusCode code);

}  // namespace tshare

#endif  // TSHARE_PROTO_GRPC_STATUS_H_
