#include "service/workers_service.h"

#include <atomic>
#include <deque>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "proto/grpc_status.h"
#include "service/errors.h"
#include "service/internal/stream_pump.h"

namespace tshare::service {
namespace {

// Events a Watch stream may have waiting; past this, a new event of a worker
// replaces that worker's newest waiting one (a watcher still ends up with every
// worker's latest state).
constexpr size_t kWatchQueue = 1024;

grpc::Status Unavailable() { return ToGrpcStatus(ShuttingDown()); }

void ToTimestamp(absl::Time t, google::protobuf::Timestamp* out) {
  const int64_t seconds = absl::ToUnixSeconds(t);
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(
      absl::ToInt64Nanoseconds(t - absl::FromUnixSeconds(seconds))));
}

v1::WorkerInfo::State ToProtoState(core::WorkerState state) {
  switch (state) {
    case core::WorkerState::kStarting:
      return v1::WorkerInfo::STARTING;
    case core::WorkerState::kRunning:
      return v1::WorkerInfo::RUNNING;
    case core::WorkerState::kPaused:
      return v1::WorkerInfo::PAUSED;
    case core::WorkerState::kStopping:
      return v1::WorkerInfo::STOPPING;
    case core::WorkerState::kStopped:
      return v1::WorkerInfo::STOPPED;
    case core::WorkerState::kFailed:
      return v1::WorkerInfo::FAILED;
  }
  return v1::WorkerInfo::STATE_UNSPECIFIED;
}

absl::Status NameMissing() {
  return absl::InvalidArgumentError(
      "name is empty; give a worker's name (Workers/List shows them), e.g. "
      "{\"name\":\"history-compactor\"}");
}

}  // namespace

namespace workers_internal {

class WatchReactor;
class AttachReactor;

// The write side of one Workers.Watch stream.
class WatchStream final : public internal::StreamPump<v1::WorkerEvent> {
 public:
  WatchStream(WatchReactor* reactor, std::string name)
      : reactor_(reactor), name_(std::move(name)) {}

  // Whether this watch follows worker `worker`.
  bool Wants(absl::string_view worker) const {
    return name_.empty() || name_ == worker;
  }

  void Queue(v1::WorkerEvent::Kind kind, const v1::WorkerInfo& info)
      ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (finish_requested_locked()) return;
    if (queue_.size() >= kWatchQueue) {
      for (auto it = queue_.rbegin(); it != queue_.rend(); ++it) {
        if (it->worker().name() == info.name() &&
            it->kind() != v1::WorkerEvent::REMOVED) {
          *it->mutable_worker() = info;
          if (kind == v1::WorkerEvent::REMOVED) it->set_kind(kind);
          return;
        }
      }
    }
    v1::WorkerEvent& event = queue_.emplace_back();
    event.set_kind(kind);
    *event.mutable_worker() = info;
  }

 protected:
  const v1::WorkerEvent* NextFrameLocked() override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (queue_.empty()) return nullptr;
    current_ = std::move(queue_.front());
    queue_.pop_front();
    return &current_;
  }
  void DiscardLocked() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    queue_.clear();
  }
  void StartWriteFrame(const v1::WorkerEvent* frame,
                       grpc::WriteOptions options) override;
  void FinishStream(const grpc::Status& status) override;

 private:
  WatchReactor* const reactor_;  // alive until FinishStream (see StreamPump)
  const std::string name_;
  std::deque<v1::WorkerEvent> queue_ ABSL_GUARDED_BY(mu_);
  v1::WorkerEvent current_ ABSL_GUARDED_BY(mu_);
};

class WatchReactor final : public grpc::ServerWriteReactor<v1::WorkerEvent> {
 public:
  explicit WatchReactor(WorkersService* service) : service_(service) {}

  void Start(uint64_t id, std::shared_ptr<WatchStream> stream) {
    id_ = id;
    stream_ = std::move(stream);
  }

  void OnWriteDone(bool ok) override { stream_->OnWritten(ok); }
  void OnCancel() override {
    if (stream_ != nullptr)
      stream_->RequestFinish(ToGrpcStatus(CallCancelled()));
  }
  void OnDone() override {
    if (stream_ != nullptr) service_->UnregisterWatch(id_);
    delete this;
  }

 private:
  WorkersService* const service_;
  uint64_t id_ = 0;
  std::shared_ptr<WatchStream> stream_;
};

void WatchStream::StartWriteFrame(const v1::WorkerEvent* frame,
                                  grpc::WriteOptions options) {
  reactor_->StartWrite(frame, options);
}
void WatchStream::FinishStream(const grpc::Status& status) {
  reactor_->Finish(status);
}

// The state of one Attach stream: the commands to send and the worker it
// drives.
class AttachStream final : public internal::StreamPump<v1::WorkerCommand> {
 public:
  AttachStream(AttachReactor* reactor, std::string peer)
      : reactor_(reactor), peer_(std::move(peer)) {}

  const std::string& peer() const { return peer_; }

  // Queues a command. Commands wait until ATTACHED has been queued (it goes
  // first).
  void QueueCommand(v1::WorkerCommand::Command command,
                    const v1::WorkerInfo& info) ABSL_LOCKS_EXCLUDED(mu_) {
    {
      absl::MutexLock lock(&mu_);
      if (finish_requested_locked()) return;
      v1::WorkerCommand& c = queue_.emplace_back();
      c.set_command(command);
      *c.mutable_info() = info;
    }
    Pump();
  }

  void SendAttached(const v1::WorkerInfo& info) ABSL_LOCKS_EXCLUDED(mu_) {
    {
      absl::MutexLock lock(&mu_);
      v1::WorkerCommand c;
      c.set_command(v1::WorkerCommand::ATTACHED);
      *c.mutable_info() = info;
      queue_.push_front(std::move(c));
      attached_sent_ = true;
    }
    Pump();
  }

  void SetWorker(std::string name, std::shared_ptr<core::WorkerControl> control)
      ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    name_ = std::move(name);
    control_ = std::move(control);
  }

  // The attached worker's name; empty before the hello was accepted.
  std::string name() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return name_;
  }
  std::shared_ptr<core::WorkerControl> control() const
      ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return control_;
  }

  // Ends the attached worker with `status` (OK → STOPPED, error → FAILED)
  // unless it has ended already. Nothing happens before the hello was accepted.
  void EndWorker(absl::Status status) ABSL_LOCKS_EXCLUDED(mu_) {
    std::shared_ptr<core::WorkerControl> control = this->control();
    if (control != nullptr) control->Finish(std::move(status));
  }

 protected:
  const v1::WorkerCommand* NextFrameLocked() override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!attached_sent_ || queue_.empty()) return nullptr;
    current_ = std::move(queue_.front());
    queue_.pop_front();
    return &current_;
  }
  void DiscardLocked() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    queue_.clear();
  }
  void StartWriteFrame(const v1::WorkerCommand* frame,
                       grpc::WriteOptions options) override;
  void FinishStream(const grpc::Status& status) override;

 private:
  AttachReactor* const reactor_;  // alive until FinishStream (see StreamPump)
  const std::string peer_;
  std::deque<v1::WorkerCommand> queue_ ABSL_GUARDED_BY(mu_);
  v1::WorkerCommand current_ ABSL_GUARDED_BY(mu_);
  bool attached_sent_ ABSL_GUARDED_BY(mu_) = false;
  std::string name_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<core::WorkerControl> control_ ABSL_GUARDED_BY(mu_);
};

// The gRPC side of one Attach call: reads the reports (one read at a time,
// chained from OnReadDone), while AttachStream writes the commands. Deletes
// itself in OnDone.
class AttachReactor final
    : public grpc::ServerBidiReactor<v1::WorkerReport, v1::WorkerCommand> {
 public:
  AttachReactor(WorkersService* service, grpc::CallbackServerContext* context)
      : service_(service),
        stream_(std::make_shared<AttachStream>(this, context->peer())) {
    service_->RegisterAttach(stream_);
    if (!stream_->closing()) StartRead(&report_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // Half-closed, cancelled or broken before a goodbye.
      Disconnected(grpc::Status(
          grpc::StatusCode::ABORTED,
          "the stream ended without a goodbye; the worker is marked FAILED "
          "(client disconnected)"));
      return;
    }
    if (HandleReport()) StartRead(&report_);
  }
  void OnWriteDone(bool ok) override { stream_->OnWritten(ok); }
  void OnCancel() override { Disconnected(ToGrpcStatus(CallCancelled())); }
  void OnDone() override {
    stream_->EndWorker(absl::UnavailableError("client disconnected"));
    const std::string name = stream_->name();
    if (!name.empty()) service_->DetachWorker(name, stream_.get());
    service_->UnregisterAttach(stream_.get());
    delete this;
  }

 private:
  void Disconnected(const grpc::Status& status) {
    if (!goodbye_.load(std::memory_order_acquire)) {
      stream_->EndWorker(absl::UnavailableError("client disconnected"));
    }
    stream_->RequestFinish(status);
  }

  // Handles report_; returns whether to read the next one.
  bool HandleReport() {
    const std::string name = stream_->name();
    switch (report_.report_case()) {
      case v1::WorkerReport::kHello:
        return HandleHello(name);
      case v1::WorkerReport::kState:
        if (name.empty()) return RefuseBeforeHello();
        return HandleState(name, report_.state());
      case v1::WorkerReport::kGoodbye: {
        if (name.empty()) return RefuseBeforeHello();
        goodbye_.store(true, std::memory_order_release);
        const std::string& error = report_.goodbye().error();
        stream_->EndWorker(error.empty() ? absl::OkStatus()
                                         : absl::UnknownError(error));
        stream_->RequestFinish(grpc::Status::OK);
        return false;
      }
      case v1::WorkerReport::REPORT_NOT_SET:
        break;
    }
    stream_->RequestFinish(ToGrpcStatus(
        absl::InvalidArgumentError("the report is empty; send a hello first "
                                   "({\"hello\":{\"name\":\"indexer\"}}), then "
                                   "state reports and a goodbye")));
    return false;
  }

  bool RefuseBeforeHello() {
    stream_->RequestFinish(ToGrpcStatus(absl::FailedPreconditionError(
        "the first report must be a hello naming the worker, e.g. "
        "{\"hello\":{\"name\":\"indexer\"}}")));
    return false;
  }

  bool HandleHello(const std::string& current) {
    if (!current.empty()) {
      stream_->RequestFinish(ToGrpcStatus(absl::FailedPreconditionError(
          absl::StrCat("this stream already attached worker \"", current,
                       "\"; send a hello once per stream"))));
      return false;
    }
    const std::string& name = report_.hello().name();
    absl::Status valid;
    if (name.empty()) {
      valid = KeyEmpty("hello.name");
    } else if (name.size() > service_->options_.max_key_bytes) {
      valid = KeyTooLong(name.size(), service_->options_.max_key_bytes);
    }
    if (!valid.ok()) {
      stream_->RequestFinish(ToGrpcStatus(valid));
      return false;
    }
    absl::StatusOr<std::shared_ptr<core::WorkerControl>> control =
        service_->AttachWorker(name, stream_->peer(), stream_);
    if (!control.ok()) {
      stream_->RequestFinish(ToGrpcStatus(control.status()));
      return false;
    }
    stream_->SetWorker(name, *control);
    // The worker may end at once (a Stop, a shutdown): ATTACHED still goes
    // first.
    absl::StatusOr<v1::WorkerInfo> info = service_->GetWorker(name);
    v1::WorkerInfo attached;
    if (info.ok()) attached = *std::move(info);
    stream_->SendAttached(attached);
    return true;
  }

  bool HandleState(const std::string& name,
                   const v1::WorkerReport::State& state) {
    std::shared_ptr<core::WorkerControl> control = stream_->control();
    bool announce = false;
    if (state.progress() != last_progress_) {
      last_progress_ = state.progress();
      control->ReportProgress(last_progress_);
      announce = true;
    }
    switch (state.state()) {
      case v1::WorkerInfo::PAUSED:
        service_->SetClientParked(name, true);
        break;
      case v1::WorkerInfo::RUNNING:
        control->MarkRunning();
        service_->SetClientParked(name, false);
        break;
      case v1::WorkerInfo::STOPPED:
        control->Finish(absl::OkStatus());
        break;
      case v1::WorkerInfo::FAILED:
        control->Finish(absl::UnknownError("the worker reported state FAILED"));
        break;
      default:
        break;
    }
    if (announce) service_->AnnounceChange(name);
    return true;
  }

  WorkersService* const service_;
  const std::shared_ptr<AttachStream> stream_;
  // Only the read chain (constructor, OnReadDone) touches these.
  v1::WorkerReport report_;
  std::string last_progress_;
  // Read by OnCancel on another thread.
  std::atomic<bool> goodbye_{false};
};

void AttachStream::StartWriteFrame(const v1::WorkerCommand* frame,
                                   grpc::WriteOptions options) {
  reactor_->StartWrite(frame, options);
}
void AttachStream::FinishStream(const grpc::Status& status) {
  reactor_->Finish(status);
}

}  // namespace workers_internal

using workers_internal::AttachReactor;
using workers_internal::AttachStream;
using workers_internal::WatchReactor;
using workers_internal::WatchStream;

WorkersService::WorkersService(core::WorkerManager* workers,
                               const ServerOptions& options)
    : workers_(workers), options_(options) {
  listener_id_ = workers_->AddListener(
      [this](const core::WorkerInfo& info) { OnWorkerChange(info); });
}

WorkersService::~WorkersService() {
  BeginShutdown();
  workers_->RemoveListener(listener_id_);
}

bool WorkersService::shutting_down() const {
  absl::MutexLock lock(&mu_);
  return shutting_down_;
}

v1::WorkerInfo WorkersService::ToProtoLocked(
    const core::WorkerInfo& info) const {
  v1::WorkerInfo out;
  auto it = tracked_.find(info.name);
  const Tracked* tracked = it == tracked_.end() ? nullptr : &it->second;
  const bool client =
      tracked != nullptr && tracked->kind == v1::WorkerInfo::CLIENT;
  out.set_name(info.name);
  out.set_kind(client ? v1::WorkerInfo::CLIENT : v1::WorkerInfo::SERVER);
  out.set_state(ToProtoState(info.state));
  out.set_progress(info.progress);
  if (info.state == core::WorkerState::kFailed) {
    out.set_error(std::string(info.status.message()));
  }
  if (client) out.set_peer(tracked->peer);
  if (info.started_at != absl::InfinitePast()) {
    ToTimestamp(info.started_at, out.mutable_started_at());
  }
  absl::Time updated = info.stopped_at != absl::InfinitePast()
                           ? info.stopped_at
                           : info.started_at;
  if (tracked != nullptr && tracked->updated_at > updated) {
    updated = tracked->updated_at;
  }
  if (updated != absl::InfinitePast()) {
    ToTimestamp(updated, out.mutable_updated_at());
  }
  const bool paused = info.state == core::WorkerState::kPaused;
  out.set_pause_requested(paused &&
                          (client ? !tracked->client_parked : !info.parked));
  out.set_stop_requested(info.state == core::WorkerState::kStopping);
  return out;
}

std::vector<std::shared_ptr<WatchStream>> WorkersService::QueueEventLocked(
    v1::WorkerEvent::Kind kind, const v1::WorkerInfo& info) {
  std::vector<std::shared_ptr<WatchStream>> streams;
  for (const auto& [id, stream] : watches_) {
    if (!stream->Wants(info.name())) continue;
    stream->Queue(kind, info);
    streams.push_back(stream);
  }
  return streams;
}

void WorkersService::OnWorkerChange(const core::WorkerInfo& info) {
  std::shared_ptr<AttachStream> attach;
  std::optional<v1::WorkerCommand::Command> command;
  v1::WorkerInfo proto;
  std::vector<std::shared_ptr<WatchStream>> to_pump;
  {
    absl::MutexLock lock(&mu_);
    Tracked& tracked = tracked_[info.name];
    const core::WorkerState previous =
        tracked.seen ? tracked.last_state : core::WorkerState::kStarting;
    tracked.seen = true;
    tracked.last_state = info.state;
    tracked.updated_at = absl::Now();
    if (tracked.kind == v1::WorkerInfo::CLIENT) {
      if (info.state == core::WorkerState::kPaused &&
          previous != core::WorkerState::kPaused) {
        command = v1::WorkerCommand::PAUSE;
        tracked.client_parked = false;
      } else if (previous == core::WorkerState::kPaused &&
                 (info.state == core::WorkerState::kRunning ||
                  info.state == core::WorkerState::kStarting)) {
        command = v1::WorkerCommand::RESUME;
        tracked.client_parked = false;
      } else if (info.state == core::WorkerState::kStopping &&
                 previous != core::WorkerState::kStopping) {
        command = v1::WorkerCommand::STOP;
      }
      attach = tracked.attach.lock();
    }
    proto = ToProtoLocked(info);
    to_pump = QueueEventLocked(v1::WorkerEvent::CHANGED, proto);
  }
  if (attach != nullptr && command.has_value()) {
    attach->QueueCommand(*command, proto);
  }
  for (const auto& stream : to_pump) stream->Pump();
}

void WorkersService::AnnounceChange(const std::string& name) {
  absl::StatusOr<core::WorkerInfo> info = workers_->Info(name);
  if (!info.ok()) return;
  std::vector<std::shared_ptr<WatchStream>> to_pump;
  {
    absl::MutexLock lock(&mu_);
    auto it = tracked_.find(name);
    if (it != tracked_.end()) it->second.updated_at = absl::Now();
    to_pump = QueueEventLocked(v1::WorkerEvent::CHANGED, ToProtoLocked(*info));
  }
  for (const auto& stream : to_pump) stream->Pump();
}

void WorkersService::SetClientParked(const std::string& name, bool parked) {
  {
    absl::MutexLock lock(&mu_);
    auto it = tracked_.find(name);
    if (it == tracked_.end() || it->second.kind != v1::WorkerInfo::CLIENT)
      return;
    if (it->second.client_parked == parked) return;
    // A pause is acknowledged only while the worker is paused.
    if (parked && it->second.last_state != core::WorkerState::kPaused) return;
    it->second.client_parked = parked;
  }
  AnnounceChange(name);
}

absl::StatusOr<std::shared_ptr<core::WorkerControl>>
WorkersService::AttachWorker(const std::string& name, const std::string& peer,
                             const std::shared_ptr<AttachStream>& stream) {
  std::optional<v1::WorkerInfo> replaced;
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) return ShuttingDown();
    auto it = tracked_.find(name);
    if (it != tracked_.end()) {
      if (it->second.kind != v1::WorkerInfo::CLIENT) {
        return absl::AlreadyExistsError(absl::StrCat(
            "the name \"", name,
            "\" belongs to a server worker; attach under another name"));
      }
      absl::StatusOr<core::WorkerInfo> old = workers_->Info(name);
      // A stream that has just broken may not have been detached yet; its
      // worker has ended all the same.
      if (it->second.stream_open && (!old.ok() || !core::IsFinal(old->state))) {
        return absl::AlreadyExistsError(absl::StrCat(
            "a client worker named \"", name, "\" is already attached (from ",
            it->second.peer, "); attach under another name, or stop it first"));
      }
      // A client worker that has ended: the new one replaces it.
      if (old.ok()) replaced = ToProtoLocked(*old);
    }
    Tracked& tracked = tracked_[name];
    tracked = Tracked();
    tracked.kind = v1::WorkerInfo::CLIENT;
    tracked.peer = peer;
    tracked.stream_open = true;
    tracked.attach = stream;
  }
  if (replaced.has_value()) {
    workers_->Remove(name).IgnoreError();
    std::vector<std::shared_ptr<WatchStream>> to_pump;
    {
      absl::MutexLock lock(&mu_);
      to_pump = QueueEventLocked(v1::WorkerEvent::REMOVED, *replaced);
    }
    for (const auto& s : to_pump) s->Pump();
  }
  absl::StatusOr<std::shared_ptr<core::WorkerControl>> control =
      workers_->Attach(name);
  if (!control.ok()) {
    absl::MutexLock lock(&mu_);
    tracked_.erase(name);
    if (absl::IsAlreadyExists(control.status())) {
      return absl::AlreadyExistsError(absl::StrCat(
          "the name \"", name,
          "\" belongs to a server worker; attach under another name"));
    }
    return control.status();
  }
  (*control)->MarkRunning();
  return control;
}

void WorkersService::DetachWorker(const std::string& name,
                                  const AttachStream* stream) {
  absl::MutexLock lock(&mu_);
  auto it = tracked_.find(name);
  // The name may already belong to a newer stream.
  if (it == tracked_.end() || it->second.attach.lock().get() != stream) return;
  it->second.stream_open = false;
  it->second.attach.reset();
}

void WorkersService::RegisterAttach(std::shared_ptr<AttachStream> stream) {
  {
    absl::MutexLock lock(&mu_);
    if (!shutting_down_) {
      attaches_[stream.get()] = std::move(stream);
      return;
    }
  }
  stream->RequestFinish(Unavailable());
}

void WorkersService::UnregisterAttach(const AttachStream* stream) {
  std::shared_ptr<AttachStream> released;  // destroyed after the lock
  absl::MutexLock lock(&mu_);
  auto it = attaches_.find(stream);
  if (it == attaches_.end()) return;
  released = std::move(it->second);
  attaches_.erase(it);
}

void WorkersService::RegisterWatch(uint64_t id,
                                   std::shared_ptr<WatchStream> stream,
                                   const std::string& name) {
  std::vector<core::WorkerInfo> workers = workers_->List();
  bool registered = false;
  {
    absl::MutexLock lock(&mu_);
    if (!shutting_down_) {
      // Under the lock, so that no CHANGED event gets in before the snapshot.
      for (const core::WorkerInfo& info : workers) {
        if (name.empty() || info.name == name) {
          stream->Queue(v1::WorkerEvent::SNAPSHOT, ToProtoLocked(info));
        }
      }
      watches_[id] = stream;
      registered = true;
    }
  }
  if (registered) {
    stream->Pump();
  } else {
    stream->RequestFinish(Unavailable());
  }
}

void WorkersService::UnregisterWatch(uint64_t id) {
  std::shared_ptr<WatchStream> released;  // destroyed after the lock
  absl::MutexLock lock(&mu_);
  auto it = watches_.find(id);
  if (it == watches_.end()) return;
  released = std::move(it->second);
  watches_.erase(it);
}

void WorkersService::BeginShutdown() {
  std::vector<std::shared_ptr<WatchStream>> watches;
  std::vector<std::shared_ptr<AttachStream>> attaches;
  {
    absl::MutexLock lock(&mu_);
    shutting_down_ = true;
    for (const auto& [id, stream] : watches_) watches.push_back(stream);
    for (const auto& [key, stream] : attaches_) attaches.push_back(stream);
  }
  for (const auto& stream : watches) stream->RequestFinish(Unavailable());
  for (const auto& stream : attaches) {
    stream->EndWorker(absl::UnavailableError("server shutting down"));
    stream->RequestFinish(Unavailable());
  }
}

std::vector<v1::WorkerInfo> WorkersService::ListWorkers() const {
  std::vector<core::WorkerInfo> workers = workers_->List();
  std::vector<v1::WorkerInfo> out;
  out.reserve(workers.size());
  absl::MutexLock lock(&mu_);
  for (const core::WorkerInfo& info : workers)
    out.push_back(ToProtoLocked(info));
  return out;
}

absl::StatusOr<v1::WorkerInfo> WorkersService::GetWorker(
    absl::string_view name) const {
  absl::StatusOr<core::WorkerInfo> info =
      workers_->Info(std::string_view(name.data(), name.size()));
  if (!info.ok()) return info.status();
  absl::MutexLock lock(&mu_);
  return ToProtoLocked(*info);
}

v1::WorkerStats WorkersService::Stats() const {
  v1::WorkerStats stats;
  for (const core::WorkerInfo& info : workers_->List()) {
    stats.set_total(stats.total() + 1);
    switch (info.state) {
      case core::WorkerState::kStarting:
        stats.set_starting(stats.starting() + 1);
        break;
      case core::WorkerState::kRunning:
        stats.set_running(stats.running() + 1);
        break;
      case core::WorkerState::kPaused:
        stats.set_paused(stats.paused() + 1);
        break;
      case core::WorkerState::kStopping:
        stats.set_stopping(stats.stopping() + 1);
        break;
      case core::WorkerState::kStopped:
        stats.set_stopped(stats.stopped() + 1);
        break;
      case core::WorkerState::kFailed:
        stats.set_failed(stats.failed() + 1);
        break;
    }
  }
  return stats;
}

grpc::ServerUnaryReactor* WorkersService::List(
    grpc::CallbackServerContext* context, const v1::ListWorkersRequest* request,
    v1::ListWorkersResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (shutting_down()) {
    reactor->Finish(Unavailable());
    return reactor;
  }
  for (v1::WorkerInfo& info : ListWorkers()) {
    *response->add_workers() = std::move(info);
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* WorkersService::Control(
    grpc::CallbackServerContext* context, const v1::WorkerRef* request,
    v1::WorkerInfo* response, Action action) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (shutting_down()) {
    reactor->Finish(Unavailable());
    return reactor;
  }
  const std::string& name = request->name();
  if (name.empty()) {
    reactor->Finish(ToGrpcStatus(NameMissing()));
    return reactor;
  }
  absl::Status status;
  switch (action) {
    case Action::kPause:
      status = workers_->Pause(name);
      break;
    case Action::kResume:
      status = workers_->Resume(name);
      break;
    case Action::kStop:
      status = workers_->Stop(name);
      break;
  }
  if (status.ok()) {
    absl::StatusOr<v1::WorkerInfo> info = GetWorker(name);
    status = info.status();
    if (info.ok()) *response = *std::move(info);
  }
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

grpc::ServerUnaryReactor* WorkersService::Pause(
    grpc::CallbackServerContext* context, const v1::WorkerRef* request,
    v1::WorkerInfo* response) {
  return Control(context, request, response, Action::kPause);
}

grpc::ServerUnaryReactor* WorkersService::Resume(
    grpc::CallbackServerContext* context, const v1::WorkerRef* request,
    v1::WorkerInfo* response) {
  return Control(context, request, response, Action::kResume);
}

grpc::ServerUnaryReactor* WorkersService::Stop(
    grpc::CallbackServerContext* context, const v1::WorkerRef* request,
    v1::WorkerInfo* response) {
  return Control(context, request, response, Action::kStop);
}

grpc::ServerWriteReactor<v1::WorkerEvent>* WorkersService::Watch(
    grpc::CallbackServerContext* context,
    const v1::WatchWorkersRequest* request) {
  auto* reactor = new WatchReactor(this);
  uint64_t id;
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) {
      reactor->Finish(Unavailable());
      return reactor;
    }
    id = next_watch_id_++;
  }
  auto stream = std::make_shared<WatchStream>(reactor, request->name());
  reactor->Start(id, stream);
  RegisterWatch(id, std::move(stream), request->name());
  return reactor;
}

grpc::ServerBidiReactor<v1::WorkerReport, v1::WorkerCommand>*
WorkersService::Attach(grpc::CallbackServerContext* context) {
  return new AttachReactor(this, context);
}

}  // namespace tshare::service
