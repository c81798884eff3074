// CallDone: how a client reactor's OnDone hands the call's status to the
// thread that owns the reactor.
//
// gRPC runs reactions on its callback threads and joins those threads when the
// last channel that uses them goes away. A reactor's ClientContext holds a
// reference to its channel, so destroying a reactor inside OnDone can destroy
// the channel there, and gRPC then joins the very thread it runs on and
// aborts. So OnDone never owns its reactor: its last act is Set() on a CallDone
// it holds a reference to, and it touches the reactor no more. The owner waits
// in Wait() and may destroy the reactor as soon as it returns, on its own
// thread.
//
// Thread-safety: Set is called once, from OnDone; Wait from any thread.
#ifndef TSHARE_CLIENT_INTERNAL_CALL_DONE_H_
#define TSHARE_CLIENT_INTERNAL_CALL_DONE_H_

#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/support/status.h"

namespace tshare::client::internal {

class CallDone final {
 public:
  void Set(grpc::Status status) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    status_ = std::move(status);
  }

  // Blocks until Set; returns the call's status.
  grpc::Status Wait() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(this, &CallDone::SetLocked));
    return *status_;
  }

 private:
  bool SetLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return status_.has_value();
  }

  mutable absl::Mutex mu_;
  std::optional<grpc::Status> status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tshare::client::internal

#endif  // TSHARE_CLIENT_INTERNAL_CALL_DONE_H_
