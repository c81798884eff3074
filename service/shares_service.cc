#include "service/shares_service.h"

#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/arena.h"
#include "grpcpp/alarm.h"
#include "proto/grpc_status.h"
#include "service/errors.h"

namespace tshare::service {
namespace {

using tshare::v1::SessionRequest;
using tshare::v1::SessionResponse;
using tshare::v1::SessionResult;

// A Session response stops growing at about this many bytes (clients accept 4
// MiB messages by default), and the stream stops reading while this much is
// waiting to be written.
constexpr size_t kMaxResponseBytes = 1 << 20;
constexpr size_t kMaxUnsentBytes = 8 << 20;
constexpr size_t kMaxUnsentResults = 1 << 16;

// Sends the status's "tshare-*" payloads as trailing metadata, then the status.
grpc::Status ToGrpcWithMetadata(const absl::Status& status,
                                grpc::CallbackServerContext* context) {
  for (const auto& [key, value] : StatusMetadata(status)) {
    context->AddTrailingMetadata(key, value);
  }
  return ToGrpcStatus(status);
}

template <typename Request, typename Response, typename Op>
grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* context,
                                bool shutting_down, const Request* request,
                                Response* response, Op op) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(
      ToGrpcStatus(shutting_down ? ShuttingDown() : op(*request, response)));
  return reactor;
}

}  // namespace

// --- Watch ---

// Streams the frames of one Watcher. Exactly one of these runs at a time: the
// constructor, OnWatchReady (only after Next said kIdle) and OnWriteDone (only
// after a StartWrite), so Pump needs no lock.
class SharesService::WatchReactor final
    : public grpc::ServerWriteReactor<tshare::v1::WatchEvent>,
      public WatchSink {
 public:
  WatchReactor(SharesService* service, grpc::CallbackServerContext* context,
               const tshare::v1::WatchRequest* request)
      : context_(context) {
    if (service->shutting_down()) {
      Finish(ToGrpcStatus(ShuttingDown()));
      return;
    }
    absl::StatusOr<std::shared_ptr<Watcher>> watcher =
        service->hub_->Start(*request, context->peer(), this);
    if (!watcher.ok()) {
      Finish(ToGrpcWithMetadata(watcher.status(), context_));
      return;
    }
    watcher_ = *std::move(watcher);
    // Headers go out now, so a client can tell the watch is registered
    // (ClientReader::WaitForInitialMetadata) before the first frame.
    StartSendInitialMetadata();
    Pump();
  }

  void OnWatchReady() override { Pump(); }

  void OnWriteDone(bool ok) override {
    if (!ok) watcher_->Close(CallCancelled());
    Pump();
  }

  void OnCancel() override {
    if (watcher_ != nullptr) watcher_->Close(CallCancelled());
  }

  void OnDone() override {
    if (watcher_ != nullptr) watcher_->Detach();
    delete this;
  }

 private:
  void Pump() {
    absl::Status end;
    switch (watcher_->Next(&frame_, &end)) {
      case Watcher::NextResult::kFrame:
        StartWrite(&frame_);
        return;
      case Watcher::NextResult::kIdle:
        return;
      case Watcher::NextResult::kDone:
        Finish(ToGrpcWithMetadata(end, context_));
        return;
    }
  }

  grpc::CallbackServerContext* const context_;
  std::shared_ptr<Watcher> watcher_;
  tshare::v1::WatchEvent frame_;
};

// --- WaitFor ---

// Finished by the first of: the store's waiter callback, the deadline alarm,
// the client's cancellation, shutdown. The waiter callback and the alarm hold
// the shared State, not the reactor: a path that loses the race touches nothing
// else, so it may run after OnDone.
class SharesService::WaitForReactor final : public grpc::ServerUnaryReactor,
                                            public SharesService::Stoppable {
 public:
  WaitForReactor(SharesService* service, grpc::CallbackServerContext* context,
                 const tshare::v1::WaitForRequest* request,
                 tshare::v1::GetResponse* response)
      : service_(service),
        key_(request->key()),
        after_version_(request->after_version()),
        response_(response),
        state_(std::make_shared<State>()) {
    if (!service_->Track(this)) {
      TryFinish(ShuttingDown());
      return;
    }
    // A call without a deadline reports the largest time_point.
    absl::Time deadline =
        context->deadline() == std::chrono::system_clock::time_point::max()
            ? absl::InfiniteFuture()
            : absl::FromChrono(context->deadline());
    if (request->has_timeout()) {
      const google::protobuf::Duration& t = request->timeout();
      const bool valid =
          t.seconds() >= 0 && t.nanos() >= 0 && t.nanos() < 1000000000;
      if (!valid) {
        TryFinish(DurationInvalid("timeout"));
        return;
      }
      deadline = std::min(deadline, absl::Now() + absl::Seconds(t.seconds()) +
                                        absl::Nanoseconds(t.nanos()));
    }

    std::shared_ptr<State> state = state_;
    absl::StatusOr<uint64_t> id = service_->store_->WaitFor(
        key_, after_version_,
        [state, this](const tshare::v1::GetResponse& ready) {
          if (!state->Win()) return;
          *response_ = ready;
          Finish(grpc::Status::OK);
        },
        response_);
    if (!id.ok()) {
      TryFinish(id.status());
      return;
    }
    if (*id == 0) {  // already past after_version: *response_ is filled in
      TryFinish(absl::OkStatus());
      return;
    }
    if (!state_->SetWaiter(*id)) {
      // Finished (cancelled, stopped) before the id was known: unregister here.
      service_->store_->CancelWait(key_, *id);
      return;
    }
    if (deadline != absl::InfiniteFuture()) {
      alarm_.Set(absl::ToChronoTime(deadline), [state, this](bool fired) {
        if (!fired || !state->Win()) return;
        CancelWaiter();
        Finish(ToGrpcStatus(WaitTimedOut(key_, after_version_)));
      });
    }
  }

  void OnCancel() override { TryFinish(CallCancelled()); }

  void Stop() override { TryFinish(ShuttingDown()); }

  void OnDone() override {
    service_->Untrack(this);
    delete this;
  }

 private:
  struct State {
    absl::Mutex mu;
    bool finished ABSL_GUARDED_BY(mu) = false;
    uint64_t waiter ABSL_GUARDED_BY(mu) = 0;

    // True for the one path that finishes the call.
    bool Win() ABSL_LOCKS_EXCLUDED(mu) {
      absl::MutexLock l(&mu);
      if (finished) return false;
      finished = true;
      return true;
    }
    // False if the call finished already.
    bool SetWaiter(uint64_t id) ABSL_LOCKS_EXCLUDED(mu) {
      absl::MutexLock l(&mu);
      waiter = id;
      return !finished;
    }
    uint64_t Waiter() ABSL_LOCKS_EXCLUDED(mu) {
      absl::MutexLock l(&mu);
      return waiter;
    }
  };

  void CancelWaiter() {
    const uint64_t id = state_->Waiter();
    if (id != 0) service_->store_->CancelWait(key_, id);
  }

  void TryFinish(const absl::Status& status) {
    if (!state_->Win()) return;
    CancelWaiter();
    Finish(ToGrpcStatus(status));
  }

  SharesService* const service_;
  const std::string key_;
  const uint64_t after_version_;
  tshare::v1::GetResponse* const response_;
  const std::shared_ptr<State> state_;
  // Destroyed in OnDone, which cancels it if it has not fired.
  grpc::Alarm alarm_;
};

// --- Session ---

// Reads requests one at a time, runs their ops in order on the reading
// reaction, and writes the results in order: the results of one request leave
// in one response (split at about kMaxResponseBytes), queued behind those
// still being written. Requests and results are built on protobuf arenas that
// keep their first block from one frame to the next, so a steady stream of
// small frames allocates almost nothing. Reading pauses while too much is
// unsent.
class SharesService::SessionReactor final
    : public grpc::ServerBidiReactor<SessionRequest, SessionResponse>,
      public SharesService::Stoppable {
 public:
  SessionReactor(SharesService* service,
                 grpc::CallbackServerContext* /*context*/)
      : service_(service) {
    if (!service_->Track(this)) {
      absl::MutexLock l(&mu_);
      finished_ = true;
      Finish(ToGrpcStatus(ShuttingDown()));
      return;
    }
    NextRead();
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client is done sending (or gone)
      absl::MutexLock l(&mu_);
      read_done_ = true;
      MaybeFinishLocked();
      return;
    }
    std::unique_ptr<Batch> batch = TakeBatch();
    Run(*request_, batch.get());
    absl::MutexLock l(&mu_);
    if (finished_) return;
    unsent_bytes_ += batch->bytes;
    unsent_results_ += batch->results;
    queued_.push_back(std::move(batch));
    MaybeWriteLocked();
    if (unsent_bytes_ > kMaxUnsentBytes ||
        unsent_results_ > kMaxUnsentResults) {
      read_paused_ = true;  // resumed by OnWriteDone
    } else {
      NextRead();
    }
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock l(&mu_);
    writing_ = false;
    if (!ok) {
      broken_ = true;
      MaybeFinishLocked();
      return;
    }
    MaybeWriteLocked();
    if (read_paused_ && !finished_ && unsent_bytes_ <= kMaxUnsentBytes / 2 &&
        unsent_results_ <= kMaxUnsentResults / 2) {
      read_paused_ = false;
      NextRead();
    }
    MaybeFinishLocked();
  }

  void OnCancel() override {
    absl::MutexLock l(&mu_);
    broken_ = true;
    MaybeFinishLocked();
  }

  void Stop() override {
    absl::MutexLock l(&mu_);
    stopping_ = true;
    MaybeFinishLocked();
  }

  void OnDone() override {
    service_->Untrack(this);
    delete this;
  }

 private:
  // A protobuf arena whose first block is part of the object: Reset keeps
  // that block, so what fits in it is never allocated.
  template <size_t kBlockBytes>
  class FrameArena {
   public:
    FrameArena() : arena_(Options(block_)) {}
    FrameArena(const FrameArena&) = delete;
    FrameArena& operator=(const FrameArena&) = delete;
    google::protobuf::Arena* get() { return &arena_; }
    void Reset() { arena_.Reset(); }

   private:
    static google::protobuf::ArenaOptions Options(char* block) {
      google::protobuf::ArenaOptions options;
      options.initial_block = block;
      options.initial_block_size = kBlockBytes;
      return options;
    }
    alignas(std::max_align_t) char block_[kBlockBytes];
    google::protobuf::Arena arena_;
  };

  // The responses that answer one request, on one arena.
  // 16 gets of 64-byte values take about 5 KiB.
  struct Batch {
    FrameArena<8 << 10> arena;
    std::vector<SessionResponse*> frames;
    size_t written = 0;  // frames written so far
    size_t bytes = 0;    // serialized results, for flow control
    size_t results = 0;
  };

  // Reads the next request into a new message on the cleared request arena
  // (the previous request's ops have all run).
  void NextRead() {
    request_arena_.Reset();
    request_ = google::protobuf::Arena::CreateMessage<SessionRequest>(
        request_arena_.get());
    StartRead(request_);
  }

  std::unique_ptr<Batch> TakeBatch() ABSL_LOCKS_EXCLUDED(mu_) {
    {
      absl::MutexLock l(&mu_);
      if (!spare_.empty()) {
        std::unique_ptr<Batch> batch = std::move(spare_.back());
        spare_.pop_back();
        return batch;
      }
    }
    return std::make_unique<Batch>();
  }

  // Clears a written batch and keeps it for the next request (one at most).
  void RecycleLocked(std::unique_ptr<Batch> batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!spare_.empty()) return;
    batch->frames.clear();
    batch->written = 0;
    batch->bytes = 0;
    batch->results = 0;
    batch->arena.Reset();
    spare_.push_back(std::move(batch));
  }

  // Runs the request's ops in order; their results go into batch's frames.
  void Run(const SessionRequest& request, Batch* batch) {
    SessionResponse* frame = nullptr;
    size_t frame_bytes = 0;
    const size_t limit = service_->options_.max_session_ops;
    const absl::Status refused =
        static_cast<size_t>(request.ops_size()) > limit
            ? TooManySessionOps(request.ops_size(), limit)
            : absl::OkStatus();
    Store* store = service_->store_;
    for (const tshare::v1::SessionOp& op : request.ops()) {
      if (frame == nullptr || frame_bytes >= kMaxResponseBytes) {
        frame = google::protobuf::Arena::CreateMessage<SessionResponse>(
            batch->arena.get());
        batch->frames.push_back(frame);
        frame_bytes = 0;
      }
      SessionResult& r = *frame->add_results();
      r.set_id(op.id());
      absl::Status s = refused;
      if (s.ok()) {
        switch (op.op_case()) {
          case tshare::v1::SessionOp::kGet:
            s = store->Get(op.get(), r.mutable_get());
            break;
          case tshare::v1::SessionOp::kSet:
            s = store->Set(op.set(), r.mutable_set());
            break;
          case tshare::v1::SessionOp::kUpdate:
            s = store->Update(op.update(), r.mutable_update());
            break;
          case tshare::v1::SessionOp::kDelete:
            s = store->Delete(op.delete_(), r.mutable_delete_());
            break;
          case tshare::v1::SessionOp::kTxn:
            s = store->Txn(op.txn(), r.mutable_txn());
            break;
          case tshare::v1::SessionOp::kList:
            s = store->List(op.list(), r.mutable_list());
            break;
          case tshare::v1::SessionOp::kPublish:
            s = service_->bus_->PublishMessage(op.publish(),
                                               r.mutable_publish());
            break;
          case tshare::v1::SessionOp::OP_NOT_SET:
            s = SessionOpMissing(op.id());
            break;
        }
      }
      if (!s.ok()) {
        r.clear_result();
        r.set_code(static_cast<int>(s.code()));
        r.set_message(std::string(s.message()));
      }
      const size_t bytes = r.ByteSizeLong();
      frame_bytes += bytes;
      batch->bytes += bytes;
      ++batch->results;
    }
  }

  // Starts writing the next unsent frame if no write is running.
  void MaybeWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_ || stopping_ || broken_) return;
    while (!queued_.empty()) {
      Batch& front = *queued_.front();
      if (front.written < front.frames.size()) break;
      // Written through (gRPC serialized each frame in StartWrite).
      unsent_bytes_ -= front.bytes;
      unsent_results_ -= front.results;
      std::unique_ptr<Batch> done = std::move(queued_.front());
      queued_.pop_front();
      RecycleLocked(std::move(done));
    }
    if (queued_.empty()) return;
    Batch& front = *queued_.front();
    writing_ = true;
    StartWrite(front.frames[front.written++]);
  }

  // Finishes once nothing is being written and there is a reason to.
  void MaybeFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || writing_) return;
    grpc::Status status;
    if (stopping_) {
      status = ToGrpcStatus(ShuttingDown());
    } else if (broken_) {
      status = ToGrpcStatus(CallCancelled());
    } else if (read_done_ && queued_.empty()) {
      status = grpc::Status::OK;
    } else {
      return;
    }
    finished_ = true;
    Finish(status);
  }

  SharesService* const service_;
  // Used by the reading reaction only (one read at a time).
  FrameArena<4 << 10> request_arena_;
  SessionRequest* request_ = nullptr;

  // Held while deciding and starting gRPC operations, never while running store
  // ops. gRPC runs this reactor's reactions on other threads, never inside
  // StartWrite/StartRead/Finish.
  absl::Mutex mu_;
  // Answered requests not yet written through, oldest first; the front one's
  // frames before `written` have been handed to gRPC.
  std::deque<std::unique_ptr<Batch>> queued_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Batch>> spare_ ABSL_GUARDED_BY(mu_);
  size_t unsent_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  size_t unsent_results_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool read_done_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

// --- SharesService ---

SharesService::SharesService(Store* store, WatchHub* hub, BusService* bus,
                             const ServerOptions& options)
    : store_(store), hub_(hub), bus_(bus), options_(options) {}

SharesService::~SharesService() = default;

bool SharesService::Track(Stoppable* call) {
  absl::MutexLock l(&mu_);
  if (shutting_down()) return false;
  calls_.insert(call);
  return true;
}

void SharesService::Untrack(Stoppable* call) {
  absl::MutexLock l(&mu_);
  calls_.erase(call);
}

void SharesService::BeginShutdown() {
  absl::MutexLock l(&mu_);
  if (shutting_down_.exchange(true, std::memory_order_acq_rel)) return;
  hub_->Shutdown();
  // Under mu_: a call leaves calls_ (in OnDone) only after Stop returned.
  for (Stoppable* call : calls_) call->Stop();
}

grpc::ServerUnaryReactor* SharesService::Get(
    grpc::CallbackServerContext* context, const tshare::v1::GetRequest* request,
    tshare::v1::GetResponse* response) {
  return Unary(
      context, shutting_down(), request, response,
      [this](const auto& req, auto* resp) { return store_->Get(req, resp); });
}

grpc::ServerUnaryReactor* SharesService::Set(
    grpc::CallbackServerContext* context, const tshare::v1::SetRequest* request,
    tshare::v1::SetResponse* response) {
  return Unary(
      context, shutting_down(), request, response,
      [this](const auto& req, auto* resp) { return store_->Set(req, resp); });
}

grpc::ServerUnaryReactor* SharesService::Update(
    grpc::CallbackServerContext* context,
    const tshare::v1::UpdateRequest* request,
    tshare::v1::UpdateResponse* response) {
  return Unary(context, shutting_down(), request, response,
               [this](const auto& req, auto* resp) {
                 return store_->Update(req, resp);
               });
}

grpc::ServerUnaryReactor* SharesService::Delete(
    grpc::CallbackServerContext* context,
    const tshare::v1::DeleteRequest* request,
    tshare::v1::DeleteResponse* response) {
  return Unary(context, shutting_down(), request, response,
               [this](const auto& req, auto* resp) {
                 return store_->Delete(req, resp);
               });
}

grpc::ServerUnaryReactor* SharesService::List(
    grpc::CallbackServerContext* context,
    const tshare::v1::ListRequest* request,
    tshare::v1::ListResponse* response) {
  return Unary(
      context, shutting_down(), request, response,
      [this](const auto& req, auto* resp) { return store_->List(req, resp); });
}

grpc::ServerUnaryReactor* SharesService::Txn(
    grpc::CallbackServerContext* context, const tshare::v1::TxnRequest* request,
    tshare::v1::TxnResponse* response) {
  return Unary(
      context, shutting_down(), request, response,
      [this](const auto& req, auto* resp) { return store_->Txn(req, resp); });
}

grpc::ServerWriteReactor<tshare::v1::WatchEvent>* SharesService::Watch(
    grpc::CallbackServerContext* context,
    const tshare::v1::WatchRequest* request) {
  return new WatchReactor(this, context, request);
}

grpc::ServerUnaryReactor* SharesService::WaitFor(
    grpc::CallbackServerContext* context,
    const tshare::v1::WaitForRequest* request,
    tshare::v1::GetResponse* response) {
  return new WaitForReactor(this, context, request, response);
}

grpc::ServerBidiReactor<SessionRequest, SessionResponse>*
SharesService::Session(grpc::CallbackServerContext* context) {
  return new SessionReactor(this, context);
}

}  // namespace tshare::service
