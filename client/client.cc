#include "client/client.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/internal/connection.h"
#include "client/internal/convert.h"
#include "client/internal/subscription_core.h"
#include "client/internal/watch_core.h"
#include "client/internal/worker_core.h"
#include "core/status_macros.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"

namespace tshare::client {
namespace internal {
namespace {

// absl::StrCat takes absl::string_view, which is not std::string_view here.
absl::string_view Sv(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

}  // namespace

bool SleepBeforeRetry(int conflicts, absl::Duration initial, absl::Duration max,
                      absl::Time deadline) {
  const absl::Duration delay = JitteredDelay(conflicts, initial, max);
  if (absl::Now() + delay >= deadline) return false;
  absl::SleepFor(delay);
  return true;
}

absl::Status UpdateGaveUpError(std::string_view key, int conflicts,
                               const absl::Status& last) {
  return absl::DeadlineExceededError(absl::StrCat(
      "Update of key \"", Sv(key), "\" reached its deadline after ", conflicts,
      " conflicting writes by others (last: ", last.message(),
      "); give it a longer deadline (UpdateOptions::call) or write the key "
      "less often"));
}

}  // namespace internal

namespace {

using internal::CallAsync;
using internal::CallSync;
using internal::Connection;

// Adapts a FromProto that returns T or absl::StatusOr<T> to one that returns
// StatusOr.
template <typename Out, typename Resp>
absl::StatusOr<Out> Convert(const Resp& response) {
  return internal::FromProto(response);
}

template <typename Out, typename Resp>
absl::StatusOr<Out> ConvertOr(absl::StatusOr<Resp> response) {
  if (!response.ok()) return response.status();
  return internal::FromProto(*response);
}

absl::StatusOr<v1::SetRequest> MakeSetRequest(std::string_view key,
                                              const Value& value,
                                              const SetOptions& options) {
  v1::SetRequest request;
  request.set_key(std::string(key));
  TSHARE_RETURN_IF_ERROR(
      internal::ValueToProto(value, request.mutable_value()));
  if (options.if_version.has_value())
    request.set_if_version(*options.if_version);
  return request;
}

absl::StatusOr<v1::UpdateRequest> MakeUpdateRequest(const Op& op,
                                                    const OpOptions& options) {
  v1::UpdateRequest request;
  TSHARE_RETURN_IF_ERROR(internal::OpToUpdateRequest(op, &request));
  if (options.if_version.has_value())
    request.set_if_version(*options.if_version);
  return request;
}

v1::DeleteRequest MakeDeleteRequest(std::string_view key,
                                    const DeleteOptions& options) {
  v1::DeleteRequest request;
  request.set_key(std::string(key));
  if (options.if_version.has_value())
    request.set_if_version(*options.if_version);
  return request;
}

v1::ListRequest MakeListRequest(std::string_view prefix,
                                const ListOptions& options) {
  v1::ListRequest request;
  request.set_prefix(std::string(prefix));
  request.set_page_size(options.page_size);
  request.set_page_token(options.page_token);
  request.set_keys_only(options.keys_only);
  return request;
}

v1::WaitForRequest MakeWaitForRequest(std::string_view key,
                                      uint64_t after_version,
                                      absl::Time deadline) {
  v1::WaitForRequest request;
  request.set_key(std::string(key));
  request.set_after_version(after_version);
  if (deadline != absl::InfiniteFuture()) {
    // The server's own timer answers DEADLINE_EXCEEDED just before the call's
    // deadline.
    const int64_t nanos =
        std::max<int64_t>(0, absl::ToInt64Nanoseconds(deadline - absl::Now()));
    request.mutable_timeout()->set_seconds(nanos / 1000000000);
    request.mutable_timeout()->set_nanos(
        static_cast<int32_t>(nanos % 1000000000));
  }
  return request;
}

absl::StatusOr<v1::TxnRequest> MakeTxnRequest(
    const std::vector<Compare>& compares, const std::vector<Op>& success,
    const std::vector<Op>& failure) {
  v1::TxnRequest request;
  for (const Compare& compare : compares) {
    TSHARE_RETURN_IF_ERROR(
        internal::CompareToProto(compare, request.add_compares()));
  }
  for (const Op& op : success) {
    TSHARE_RETURN_IF_ERROR(internal::OpToTxnOp(op, request.add_success()));
  }
  for (const Op& op : failure) {
    TSHARE_RETURN_IF_ERROR(internal::OpToTxnOp(op, request.add_failure()));
  }
  return request;
}

}  // namespace

// ---- Client
// ----------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(std::string_view target,
                                                        ClientOptions options) {
  TSHARE_ASSIGN_OR_RETURN(
      std::shared_ptr<Connection> conn,
      Connection::Create(std::string(target), std::move(options)));
  return std::unique_ptr<Client>(new Client(std::move(conn)));
}

Client::Client(std::shared_ptr<Connection> conn) : conn_(std::move(conn)) {}
Client::~Client() = default;

const std::string& Client::target() const { return conn_->target(); }
const ClientOptions& Client::options() const { return conn_->options(); }
std::shared_ptr<grpc::Channel> Client::channel() const {
  return conn_->channel();
}
absl::Time Client::Deadline(const CallOptions& call) const {
  return conn_->Deadline(call);
}

absl::StatusOr<Versioned<Value>> Client::GetValue(std::string_view key,
                                                  CallOptions call) const {
  v1::GetRequest request;
  request.set_key(std::string(key));
  return ConvertOr<Versioned<Value>>(CallSync<v1::GetResponse>(
      *conn_, conn_->Deadline(call), request,
      [this](grpc::ClientContext* ctx, const v1::GetRequest& req,
             v1::GetResponse* resp) {
        return conn_->shares().Get(ctx, req, resp);
      }));
}

core::Future<Versioned<Value>> Client::GetValueAsync(std::string_view key,
                                                     CallOptions call) const {
  v1::GetRequest request;
  request.set_key(std::string(key));
  const std::shared_ptr<const Connection> conn = conn_;
  return CallAsync<Versioned<Value>, v1::GetResponse>(
      conn, conn->Deadline(call), std::move(request),
      [conn](grpc::ClientContext* ctx, const v1::GetRequest* req,
             v1::GetResponse* resp, std::function<void(grpc::Status)> done) {
        conn->shares().async()->Get(ctx, req, resp, std::move(done));
      },
      [](const v1::GetResponse& r) { return Convert<Versioned<Value>>(r); });
}

absl::StatusOr<ListResult> Client::ListPage(std::string_view prefix,
                                            ListOptions options) const {
  return ConvertOr<ListResult>(CallSync<v1::ListResponse>(
      *conn_, conn_->Deadline(options.call), MakeListRequest(prefix, options),
      [this](grpc::ClientContext* ctx, const v1::ListRequest& req,
             v1::ListResponse* resp) {
        return conn_->shares().List(ctx, req, resp);
      }));
}

core::Future<ListResult> Client::ListPageAsync(std::string_view prefix,
                                               ListOptions options) const {
  const std::shared_ptr<const Connection> conn = conn_;
  return CallAsync<ListResult, v1::ListResponse>(
      conn, conn->Deadline(options.call), MakeListRequest(prefix, options),
      [conn](grpc::ClientContext* ctx, const v1::ListRequest* req,
             v1::ListResponse* resp, std::function<void(grpc::Status)> done) {
        conn->shares().async()->List(ctx, req, resp, std::move(done));
      },
      [](const v1::ListResponse& r) { return Convert<ListResult>(r); });
}

absl::StatusOr<std::vector<KeyValue>> Client::List(std::string_view prefix,
                                                   ListOptions options) const {
  // One deadline for every page.
  options.call = CallOptions{.deadline = conn_->Deadline(options.call)};
  std::vector<KeyValue> all;
  while (true) {
    TSHARE_ASSIGN_OR_RETURN(ListResult page, ListPage(prefix, options));
    for (KeyValue& kv : page.kvs) all.push_back(std::move(kv));
    if (page.next_page_token.empty()) return all;
    options.page_token = std::move(page.next_page_token);
  }
}

absl::StatusOr<Versioned<Value>> Client::WaitForValue(
    std::string_view key, uint64_t after_version, absl::Time deadline) const {
  return ConvertOr<Versioned<Value>>(CallSync<v1::GetResponse>(
      *conn_, deadline, MakeWaitForRequest(key, after_version, deadline),
      [this](grpc::ClientContext* ctx, const v1::WaitForRequest& req,
             v1::GetResponse* resp) {
        return conn_->shares().WaitFor(ctx, req, resp);
      }));
}

core::Future<Versioned<Value>> Client::WaitForAsync(std::string_view key,
                                                    uint64_t after_version,
                                                    absl::Time deadline) const {
  const std::shared_ptr<const Connection> conn = conn_;
  return CallAsync<Versioned<Value>, v1::GetResponse>(
      conn, deadline, MakeWaitForRequest(key, after_version, deadline),
      [conn](grpc::ClientContext* ctx, const v1::WaitForRequest* req,
             v1::GetResponse* resp, std::function<void(grpc::Status)> done) {
        conn->shares().async()->WaitFor(ctx, req, resp, std::move(done));
      },
      [](const v1::GetResponse& r) { return Convert<Versioned<Value>>(r); });
}

absl::StatusOr<WriteResult> Client::SetValue(std::string_view key, Value value,
                                             SetOptions options) const {
  TSHARE_ASSIGN_OR_RETURN(v1::SetRequest request,
                          MakeSetRequest(key, value, options));
  return ConvertOr<WriteResult>(CallSync<v1::SetResponse>(
      *conn_, conn_->Deadline(options.call), request,
      [this](grpc::ClientContext* ctx, const v1::SetRequest& req,
             v1::SetResponse* resp) {
        return conn_->shares().Set(ctx, req, resp);
      }));
}

core::Future<WriteResult> Client::SetValueAsync(std::string_view key,
                                                Value value,
                                                SetOptions options) const {
  absl::StatusOr<v1::SetRequest> request = MakeSetRequest(key, value, options);
  if (!request.ok())
    return core::MakeReadyFuture<WriteResult>(request.status());
  const std::shared_ptr<const Connection> conn = conn_;
  return CallAsync<WriteResult, v1::SetResponse>(
      conn, conn->Deadline(options.call), *std::move(request),
      [conn](grpc::ClientContext* ctx, const v1::SetRequest* req,
             v1::SetResponse* resp, std::function<void(grpc::Status)> done) {
        conn->shares().async()->Set(ctx, req, resp, std::move(done));
      },
      [](const v1::SetResponse& r) { return Convert<WriteResult>(r); });
}

absl::StatusOr<DeleteResult> Client::Delete(std::string_view key,
                                            DeleteOptions options) const {
  return ConvertOr<DeleteResult>(CallSync<v1::DeleteResponse>(
      *conn_, conn_->Deadline(options.call), MakeDeleteRequest(key, options),
      [this](grpc::ClientContext* ctx, const v1::DeleteRequest& req,
             v1::DeleteResponse* resp) {
        return conn_->shares().Delete(ctx, req, resp);
      }));
}

core::Future<DeleteResult> Client::DeleteAsync(std::string_view key,
                                               DeleteOptions options) const {
  const std::shared_ptr<const Connection> conn = conn_;
  return CallAsync<DeleteResult, v1::DeleteResponse>(
      conn, conn->Deadline(options.call), MakeDeleteRequest(key, options),
      [conn](grpc::ClientContext* ctx, const v1::DeleteRequest* req,
             v1::DeleteResponse* resp, std::function<void(grpc::Status)> done) {
        conn->shares().async()->Delete(ctx, req, resp, std::move(done));
      },
      [](const v1::DeleteResponse& r) { return Convert<DeleteResult>(r); });
}

absl::StatusOr<DeleteResult> Client::DeletePrefix(std::string_view prefix,
                                                  CallOptions call) const {
  if (prefix.empty()) {
    return absl::InvalidArgumentError(
        "DeletePrefix: the prefix is empty; name the prefix of the keys to "
        "delete");
  }
  v1::DeleteRequest request;
  request.set_prefix(std::string(prefix));
  return ConvertOr<DeleteResult>(CallSync<v1::DeleteResponse>(
      *conn_, conn_->Deadline(call), request,
      [this](grpc::ClientContext* ctx, const v1::DeleteRequest& req,
             v1::DeleteResponse* resp) {
        return conn_->shares().Delete(ctx, req, resp);
      }));
}

absl::StatusOr<OpResult<Value>> Client::Apply(const Op& op,
                                              OpOptions options) const {
  TSHARE_ASSIGN_OR_RETURN(v1::UpdateRequest request,
                          MakeUpdateRequest(op, options));
  return ConvertOr<OpResult<Value>>(CallSync<v1::UpdateResponse>(
      *conn_, conn_->Deadline(options.call), request,
      [this](grpc::ClientContext* ctx, const v1::UpdateRequest& req,
             v1::UpdateResponse* resp) {
        return conn_->shares().Update(ctx, req, resp);
      }));
}

core::Future<OpResult<Value>> Client::ApplyAsync(const Op& op,
                                                 OpOptions options) const {
  absl::StatusOr<v1::UpdateRequest> request = MakeUpdateRequest(op, options);
  if (!request.ok())
    return core::MakeReadyFuture<OpResult<Value>>(request.status());
  const std::shared_ptr<const Connection> conn = conn_;
  return CallAsync<OpResult<Value>, v1::UpdateResponse>(
      conn, conn->Deadline(options.call), *std::move(request),
      [conn](grpc::ClientContext* ctx, const v1::UpdateRequest* req,
             v1::UpdateResponse* resp, std::function<void(grpc::Status)> done) {
        conn->shares().async()->Update(ctx, req, resp, std::move(done));
      },
      [](const v1::UpdateResponse& r) { return Convert<OpResult<Value>>(r); });
}

Transaction Client::Txn() const { return Transaction(conn_); }

absl::StatusOr<WatchHandle> Client::Watch(std::string_view key_or_prefix,
                                          WatchCallback callback,
                                          WatchOptions options,
                                          CallOptions call) const {
  TSHARE_RETURN_IF_ERROR(
      internal::WatchCore::Validate(options, callback != nullptr));
  auto core = std::make_shared<internal::WatchCore>(
      conn_, std::string(key_or_prefix), std::move(options),
      std::move(callback));
  TSHARE_RETURN_IF_ERROR(core->Init(conn_->Deadline(call)));
  core->Start();
  return WatchHandle(std::move(core));
}

absl::StatusOr<PublishResult> Client::PublishValue(std::string_view topic,
                                                   Value value,
                                                   CallOptions call) const {
  v1::PublishRequest request;
  request.set_topic(std::string(topic));
  TSHARE_RETURN_IF_ERROR(
      internal::ValueToProto(value, request.mutable_value()));
  TSHARE_ASSIGN_OR_RETURN(
      v1::PublishResponse response,
      CallSync<v1::PublishResponse>(
          *conn_, conn_->Deadline(call), request,
          [this](grpc::ClientContext* ctx, const v1::PublishRequest& req,
                 v1::PublishResponse* resp) {
            return conn_->bus().Publish(ctx, req, resp);
          }));
  return PublishResult{.sequence = response.sequence(),
                       .receivers = response.receivers()};
}

core::Future<PublishResult> Client::PublishValueAsync(std::string_view topic,
                                                      Value value,
                                                      CallOptions call) const {
  v1::PublishRequest request;
  request.set_topic(std::string(topic));
  if (absl::Status s = internal::ValueToProto(value, request.mutable_value());
      !s.ok()) {
    return core::MakeReadyFuture<PublishResult>(s);
  }
  const std::shared_ptr<const Connection> conn = conn_;
  return CallAsync<PublishResult, v1::PublishResponse>(
      conn, conn->Deadline(call), std::move(request),
      [conn](grpc::ClientContext* ctx, const v1::PublishRequest* req,
             v1::PublishResponse* resp,
             std::function<void(grpc::Status)> done) {
        conn->bus().async()->Publish(ctx, req, resp, std::move(done));
      },
      [](const v1::PublishResponse& r) -> absl::StatusOr<PublishResult> {
        return PublishResult{.sequence = r.sequence(),
                             .receivers = r.receivers()};
      });
}

absl::StatusOr<SubscriptionHandle> Client::Subscribe(
    std::vector<std::string> patterns, MessageCallback callback,
    SubscribeOptions options) const {
  TSHARE_RETURN_IF_ERROR(internal::SubscriptionCore::Validate(
      patterns, options, callback != nullptr));
  auto core = std::make_shared<internal::SubscriptionCore>(
      conn_, std::move(patterns), std::move(options), std::move(callback));
  core->Start();
  return SubscriptionHandle(std::move(core));
}

absl::StatusOr<WorkerHandle> Client::RunWorkerFn(std::string_view name,
                                                 WorkerFn fn,
                                                 WorkerOptions options) const {
  if (fn == nullptr)
    return absl::InvalidArgumentError("RunWorker: the function is empty");
  if (name.empty()) {
    return absl::InvalidArgumentError(
        "RunWorker: the worker's name is empty; name it (e.g. \"indexer\") so "
        "that Workers "
        "calls can find it");
  }
  auto core = std::make_shared<internal::WorkerCore>(
      conn_, std::string(name), std::move(fn), std::move(options));
  TSHARE_RETURN_IF_ERROR(core->Start());
  return WorkerHandle(std::move(core));
}

namespace {

WorkerState WorkerStateFromProto(v1::WorkerInfo::State state) {
  switch (state) {
    case v1::WorkerInfo::RUNNING:
      return WorkerState::kRunning;
    case v1::WorkerInfo::PAUSED:
      return WorkerState::kPaused;
    case v1::WorkerInfo::STOPPING:
      return WorkerState::kStopping;
    case v1::WorkerInfo::STOPPED:
      return WorkerState::kStopped;
    case v1::WorkerInfo::FAILED:
      return WorkerState::kFailed;
    default:
      return WorkerState::kStarting;
  }
}

absl::Time TimeFromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

WorkerInfo WorkerInfoFromProto(const v1::WorkerInfo& w) {
  WorkerInfo info;
  info.name = w.name();
  info.kind = w.kind() == v1::WorkerInfo::SERVER ? WorkerInfo::Kind::kServer
                                                 : WorkerInfo::Kind::kClient;
  info.state = WorkerStateFromProto(w.state());
  info.progress = w.progress();
  info.error = w.error();
  info.peer = w.peer();
  if (w.has_started_at()) info.started_at = TimeFromProto(w.started_at());
  if (w.has_updated_at()) info.updated_at = TimeFromProto(w.updated_at());
  info.pause_requested = w.pause_requested();
  info.stop_requested = w.stop_requested();
  return info;
}

}  // namespace

absl::StatusOr<std::vector<WorkerInfo>> Client::ListWorkers(
    CallOptions call) const {
  TSHARE_ASSIGN_OR_RETURN(
      v1::ListWorkersResponse response,
      CallSync<v1::ListWorkersResponse>(
          *conn_, conn_->Deadline(call), v1::ListWorkersRequest(),
          [this](grpc::ClientContext* ctx, const v1::ListWorkersRequest& req,
                 v1::ListWorkersResponse* resp) {
            return conn_->workers().List(ctx, req, resp);
          }));
  std::vector<WorkerInfo> workers;
  workers.reserve(response.workers_size());
  for (const v1::WorkerInfo& w : response.workers()) {
    workers.push_back(WorkerInfoFromProto(w));
  }
  return workers;
}

absl::StatusOr<WorkerInfo> Client::PauseWorker(std::string_view name,
                                               CallOptions call) const {
  return ControlWorker(name, WorkerControl::kPause, call);
}
absl::StatusOr<WorkerInfo> Client::ResumeWorker(std::string_view name,
                                                CallOptions call) const {
  return ControlWorker(name, WorkerControl::kResume, call);
}
absl::StatusOr<WorkerInfo> Client::StopWorker(std::string_view name,
                                              CallOptions call) const {
  return ControlWorker(name, WorkerControl::kStop, call);
}

absl::StatusOr<WorkerInfo> Client::ControlWorker(std::string_view name,
                                                 WorkerControl control,
                                                 CallOptions call) const {
  if (name.empty()) {
    return absl::InvalidArgumentError(
        "the worker's name is empty; ListWorkers() shows the names");
  }
  v1::WorkerRef request;
  request.set_name(std::string(name));
  TSHARE_ASSIGN_OR_RETURN(
      v1::WorkerInfo response,
      CallSync<v1::WorkerInfo>(
          *conn_, conn_->Deadline(call), request,
          [this, control](grpc::ClientContext* ctx, const v1::WorkerRef& req,
                          v1::WorkerInfo* resp) {
            switch (control) {
              case WorkerControl::kPause:
                return conn_->workers().Pause(ctx, req, resp);
              case WorkerControl::kResume:
                return conn_->workers().Resume(ctx, req, resp);
              case WorkerControl::kStop:
                break;
            }
            return conn_->workers().Stop(ctx, req, resp);
          }));
  return WorkerInfoFromProto(response);
}

// ---- Transaction
// -----------------------------------------------------------------------------

Transaction& Transaction::If(Compare compare) {
  compares_.push_back(std::move(compare));
  return *this;
}
Transaction& Transaction::Then(Op op) {
  success_.push_back(std::move(op));
  return *this;
}
Transaction& Transaction::Else(Op op) {
  failure_.push_back(std::move(op));
  return *this;
}

absl::StatusOr<TxnResult> Transaction::Commit(CallOptions call) const {
  TSHARE_ASSIGN_OR_RETURN(v1::TxnRequest request,
                          MakeTxnRequest(compares_, success_, failure_));
  return ConvertOr<TxnResult>(CallSync<v1::TxnResponse>(
      *conn_, conn_->Deadline(call), request,
      [this](grpc::ClientContext* ctx, const v1::TxnRequest& req,
             v1::TxnResponse* resp) {
        return conn_->shares().Txn(ctx, req, resp);
      }));
}

core::Future<TxnResult> Transaction::CommitAsync(CallOptions call) const {
  absl::StatusOr<v1::TxnRequest> request =
      MakeTxnRequest(compares_, success_, failure_);
  if (!request.ok()) return core::MakeReadyFuture<TxnResult>(request.status());
  const std::shared_ptr<const Connection> conn = conn_;
  return CallAsync<TxnResult, v1::TxnResponse>(
      conn, conn->Deadline(call), *std::move(request),
      [conn](grpc::ClientContext* ctx, const v1::TxnRequest* req,
             v1::TxnResponse* resp, std::function<void(grpc::Status)> done) {
        conn->shares().async()->Txn(ctx, req, resp, std::move(done));
      },
      [](const v1::TxnResponse& r) { return Convert<TxnResult>(r); });
}

}  // namespace tshare::client
