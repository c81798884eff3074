// The shared part of a Client: its channel, stubs and options, plus the helpers
// every call uses (deadlines, sync and async unary calls, jittered backoff).
//
// Thread-safety: Connection is immutable after Create and safe to use from any
// thread; gRPC stubs are thread-safe. Backoff is for one thread at a time.
#ifndef TSHARE_CLIENT_INTERNAL_CONNECTION_H_
#define TSHARE_CLIENT_INTERNAL_CONNECTION_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/options.h"
#include "core/future.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "tshare/v1/bus.grpc.pb.h"
#include "tshare/v1/shares.grpc.pb.h"
#include "tshare/v1/workers.grpc.pb.h"

namespace tshare::client::internal {

// Marks the current thread as running one of this library's gRPC callbacks
// for as long as it lives. gRPC joins its callback threads when the last
// channel that uses them goes away, so a channel must never be destroyed on
// one of them: ~Connection checks this and hands the channel to another thread.
class CallbackScope final {
 public:
  CallbackScope() { ++depth_; }
  ~CallbackScope() { --depth_; }
  CallbackScope(const CallbackScope&) = delete;
  CallbackScope& operator=(const CallbackScope&) = delete;

  static bool Active() { return depth_ > 0; }

 private:
  static thread_local int depth_;
};

class Connection final {
 public:
  static absl::StatusOr<std::shared_ptr<Connection>> Create(
      std::string target, ClientOptions options);
  // Inside a CallbackScope, destroys the channel and stubs on a thread of
  // their own.
  ~Connection();

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  const std::string& target() const { return target_; }
  const ClientOptions& options() const { return options_; }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  v1::Shares::Stub& shares() const { return *shares_; }
  v1::Bus::Stub& bus() const { return *bus_; }
  v1::Workers::Stub& workers() const { return *workers_; }

  // The absolute deadline of a call made with `call` now.
  absl::Time Deadline(const CallOptions& call) const;

  // The status a failed call reports: the server's status, with the target
  // named when the server could not be reached.
  absl::Status ToStatus(const grpc::Status& status) const;

 private:
  Connection(std::string target, ClientOptions options,
             std::shared_ptr<grpc::Channel> channel);

  const std::string target_;
  const ClientOptions options_;
  // Set once by the constructor; moved out only by the destructor.
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Shares::Stub> shares_;
  std::unique_ptr<v1::Bus::Stub> bus_;
  std::unique_ptr<v1::Workers::Stub> workers_;
};

void SetDeadline(grpc::ClientContext& ctx, absl::Time deadline);

// A blocking unary call: `invoke(&ctx, request, &response)` is the stub's
// method.
template <typename Resp, typename Req, typename Invoke>
absl::StatusOr<Resp> CallSync(const Connection& conn, absl::Time deadline,
                              const Req& request, Invoke&& invoke) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, deadline);
  Resp response;
  grpc::Status status = invoke(&ctx, request, &response);
  if (!status.ok()) return conn.ToStatus(status);
  return response;
}

// An asynchronous unary call through gRPC's callback API: `start(ctx, req,
// resp, done)` is the stub's async()->Method; convert(const Resp&) makes the
// future's value (or an error). The future completes on a gRPC thread, inside
// a CallbackScope. `conn` is kept alive until then.
template <typename Out, typename Resp, typename Req, typename Start,
          typename Convert>
core::Future<Out> CallAsync(std::shared_ptr<const Connection> conn,
                            absl::Time deadline, Req request, Start&& start,
                            Convert convert) {
  struct State {
    State(std::shared_ptr<const Connection> c, Req r, Convert f)
        : conn(std::move(c)), request(std::move(r)), convert(std::move(f)) {}
    std::shared_ptr<const Connection> conn;
    grpc::ClientContext ctx;
    Req request;
    Resp response;
    Convert convert;
    core::Promise<Out> promise;
  };
  auto state = std::make_shared<State>(std::move(conn), std::move(request),
                                       std::move(convert));
  core::Future<Out> future = state->promise.GetFuture();
  SetDeadline(state->ctx, deadline);
  start(&state->ctx, &state->request, &state->response,
        [state](grpc::Status status) mutable {
          CallbackScope scope;
          if (!status.ok()) {
            state->promise.SetStatus(state->conn->ToStatus(status));
          } else {
            state->promise.SetResult(state->convert(state->response));
          }
          // Inside the scope: this may be the last reference to the
          // connection (the caller dropped its Client meanwhile).
          state.reset();
        });
  return future;
}

// Jittered exponential backoff: each Next() is uniform in [d/2, d] where d
// doubles from `initial` up to `max` with every call since the last Reset().
class Backoff final {
 public:
  Backoff(absl::Duration initial, absl::Duration max)
      : initial_(initial), max_(max) {}
  absl::Duration Next();
  void Reset() { attempts_ = 0; }

 private:
  const absl::Duration initial_;
  const absl::Duration max_;
  int attempts_ = 0;
  absl::BitGen gen_;
};

// The Backoff delay of attempt `attempt` (0-based) with a thread-local
// generator.
absl::Duration JitteredDelay(int attempt, absl::Duration initial,
                             absl::Duration max);

}  // namespace tshare::client::internal

#endif  // TSHARE_CLIENT_INTERNAL_CONNECTION_H_
