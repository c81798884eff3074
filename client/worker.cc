// Workers the server controls: WorkerContext, WorkerHandle and the machinery
// behind them (internal/worker_core.h).
#include "client/worker.h"

#include <algorithm>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/internal/connection.h"
#include "client/internal/worker_core.h"

namespace tshare::client {
namespace internal {
namespace {

v1::WorkerInfo::State ToProto(WorkerState state) {
  switch (state) {
    case WorkerState::kStarting:
      return v1::WorkerInfo::STARTING;
    case WorkerState::kRunning:
      return v1::WorkerInfo::RUNNING;
    case WorkerState::kPaused:
      return v1::WorkerInfo::PAUSED;
    case WorkerState::kStopping:
      return v1::WorkerInfo::STOPPING;
    case WorkerState::kStopped:
      return v1::WorkerInfo::STOPPED;
    case WorkerState::kFailed:
      return v1::WorkerInfo::FAILED;
  }
  return v1::WorkerInfo::STATE_UNSPECIFIED;
}

}  // namespace

// ---- Inbox
// -----------------------------------------------------------------------------------

void Inbox::Post(Event event) {
  absl::MutexLock lock(&mu_);
  events_.push_back(std::move(event));
}

std::optional<Inbox::Event> Inbox::Wait(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !events_.empty();
  };
  if (!mu_.AwaitWithDeadline(absl::Condition(&ready), deadline))
    return std::nullopt;
  Event event = std::move(events_.front());
  events_.pop_front();
  return event;
}

// ---- AttachStream
// ----------------------------------------------------------------------------

void AttachStream::Start(v1::Workers::Stub& stub, v1::WorkerReport hello) {
  stub.async()->Attach(&ctx_, this);
  AddHold();
  const v1::WorkerReport* first;
  {
    absl::MutexLock lock(&mu_);
    pending_.push_back(std::move(hello));
    writing_ = true;
    first = &pending_.front();
  }
  StartWrite(first);
  StartRead(&incoming_);
  StartCall();
}

void AttachStream::Send(v1::WorkerReport report) {
  const v1::WorkerReport* to_write = nullptr;
  {
    absl::MutexLock lock(&mu_);
    if (closing_ || write_failed_ || hold_released_) return;
    pending_.push_back(std::move(report));
    if (writing_) return;
    writing_ = true;
    ++outside_ops_;
    to_write = &pending_.front();
  }
  StartWrite(to_write);
  {
    absl::MutexLock lock(&mu_);
    --outside_ops_;
  }
  MaybeReleaseHold();
}

void AttachStream::CloseWrites() {
  bool start_writes_done = false;
  {
    absl::MutexLock lock(&mu_);
    if (closing_) return;
    closing_ = true;
    if (!writing_ && !write_failed_ && !hold_released_) {
      writes_done_started_ = true;
      start_writes_done = true;
      ++outside_ops_;
    }
  }
  if (start_writes_done) {
    StartWritesDone();
    absl::MutexLock lock(&mu_);
    --outside_ops_;
  }
  {
    absl::MutexLock lock(&mu_);
    release_requested_ = true;
  }
  MaybeReleaseHold();
}

grpc::Status AttachStream::Finish() {
  bool read_ended;
  {
    absl::MutexLock lock(&mu_);
    read_ended = read_ended_;
    closing_ = true;
    release_requested_ = true;
  }
  if (!read_ended) ctx_.TryCancel();
  MaybeReleaseHold();
  // Completed only by OnDone, always with a value.
  return *done_future_.Get();
}

void AttachStream::MaybeReleaseHold() {
  {
    absl::MutexLock lock(&mu_);
    if (!release_requested_ || outside_ops_ > 0 || hold_released_) return;
    hold_released_ = true;
  }
  RemoveHold();
}

void AttachStream::OnReadDone(bool ok) {
  if (!ok) {
    {
      absl::MutexLock lock(&mu_);
      read_ended_ = true;
    }
    inbox_->Post(
        {.kind = Inbox::Event::Kind::kStreamEnded, .generation = generation_});
    return;
  }
  inbox_->Post({.kind = Inbox::Event::Kind::kCommand,
                .generation = generation_,
                .command = std::move(incoming_)});
  incoming_.Clear();
  StartRead(&incoming_);
}

void AttachStream::OnWriteDone(bool ok) {
  const v1::WorkerReport* next = nullptr;
  bool start_writes_done = false;
  {
    absl::MutexLock lock(&mu_);
    pending_.pop_front();
    if (!ok) {
      write_failed_ = true;
      writing_ = false;
      pending_.clear();
      return;
    }
    if (!pending_.empty()) {
      next = &pending_.front();
    } else {
      writing_ = false;
      if (closing_ && !writes_done_started_) {
        writes_done_started_ = true;
        start_writes_done = true;
      }
    }
  }
  // Inside a reaction: no hold needed.
  if (next != nullptr) StartWrite(next);
  if (start_writes_done) StartWritesDone();
}

void AttachStream::OnDone(const grpc::Status& status) {
  // Once Finish sees the status the owner may destroy this object: `done`, on
  // this stack, is what is touched last.
  core::Promise<grpc::Status> done = std::move(done_);
  {
    absl::MutexLock lock(&mu_);
    read_ended_ = true;
  }
  done.SetValue(status);
}

// ---- WorkerCore
// ------------------------------------------------------------------------------

WorkerCore::WorkerCore(std::shared_ptr<const Connection> conn, std::string name,
                       WorkerFn fn, WorkerOptions options)
    : conn_(std::move(conn)),
      name_(std::move(name)),
      options_(std::move(options)),
      goodbye_timeout_(options_.goodbye_timeout > absl::ZeroDuration()
                           ? options_.goodbye_timeout
                           : conn_->options().default_deadline),
      fn_(std::move(fn)) {}

WorkerCore::~WorkerCore() {
  absl::MutexLock lock(&join_mu_);
  // Only reached without a Join when the last reference goes on the supervisor
  // itself.
  if (supervisor_.joinable()) supervisor_.detach();
}

absl::StatusOr<std::shared_ptr<AttachStream>> WorkerCore::Attach(
    absl::Time deadline) {
  const uint64_t generation = ++generation_;
  auto stream = std::make_shared<AttachStream>(inbox_, generation);
  v1::WorkerReport hello;
  hello.mutable_hello()->set_name(name_);
  stream->Start(conn_->workers(), std::move(hello));
  while (true) {
    std::optional<Inbox::Event> event = inbox_->Wait(deadline);
    if (!event.has_value()) {
      stream->Finish();
      return absl::DeadlineExceededError(absl::StrCat(
          "attaching worker \"", name_, "\": no answer from tshared at ",
          conn_->target(), " before the deadline"));
    }
    if (event->kind == Inbox::Event::Kind::kWake ||
        event->generation != generation)
      continue;
    if (event->kind == Inbox::Event::Kind::kCommand) {
      if (event->command.command() == v1::WorkerCommand::ATTACHED)
        return stream;
      continue;
    }
    // The stream ended before ATTACHED: the server refused the hello, or was
    // not reached.
    const grpc::Status status = stream->Finish();
    if (status.ok()) {
      return absl::UnavailableError(
          absl::StrCat("attaching worker \"", name_,
                       "\": the server ended the stream at once"));
    }
    return conn_->ToStatus(status);
  }
}

absl::Status WorkerCore::Start() {
  absl::StatusOr<std::shared_ptr<AttachStream>> stream =
      Attach(conn_->Deadline(options_.attach));
  if (!stream.ok()) return stream.status();
  {
    absl::MutexLock lock(&mu_);
    stream_ = *stream;
    state_ = WorkerState::kRunning;
    ReportLocked();
  }
  std::shared_ptr<WorkerCore> self = shared_from_this();
  fn_thread_ = std::thread([self] { self->RunFn(); });
  absl::MutexLock lock(&join_mu_);
  supervisor_ = std::thread(
      [self, first = *std::move(stream)] { self->Supervise(first); });
  return absl::OkStatus();
}

void WorkerCore::RunFn() {
  absl::Status status;
#ifdef ABSL_HAVE_EXCEPTIONS
  try {
    status = fn_(context_);
  } catch (const std::exception& e) {
    status = absl::InternalError(
        absl::StrCat("the worker threw an exception: ", e.what()));
  } catch (...) {
    status = absl::InternalError(
        "the worker threw an exception not derived from std::exception");
  }
#else
  status = fn_(context_);
#endif
  {
    absl::MutexLock lock(&mu_);
    fn_done_ = true;
    fn_status_ = status;
    state_ = status.ok() ? WorkerState::kStopped : WorkerState::kFailed;
  }
  inbox_->Post({.kind = Inbox::Event::Kind::kWake});
}

void WorkerCore::Supervise(std::shared_ptr<AttachStream> stream) {
  const ClientOptions& client_options = conn_->options();
  Backoff backoff(client_options.reconnect_initial_backoff,
                  client_options.reconnect_max_backoff);
  absl::Time goodbye_deadline = absl::InfiniteFuture();
  while (true) {
    if (stream != nullptr) {
      const bool goodbye_taken = Serve(stream, &goodbye_deadline);
      stream = nullptr;
      if (goodbye_taken) break;
    }
    {
      absl::MutexLock lock(&mu_);
      if (fn_done_ && goodbye_deadline == absl::InfiniteFuture()) {
        goodbye_deadline = absl::Now() + goodbye_timeout_;
      }
    }
    if (absl::Now() >= goodbye_deadline) break;
    // Detached: back off (a function that returns meanwhile shortens nothing
    // but starts the goodbye clock), then attach again under the same name.
    const absl::Time retry_at =
        std::min(absl::Now() + backoff.Next(), goodbye_deadline);
    while (inbox_->Wait(retry_at).has_value()) {
      absl::MutexLock lock(&mu_);
      if (fn_done_ && goodbye_deadline == absl::InfiniteFuture()) {
        goodbye_deadline = absl::Now() + goodbye_timeout_;
      }
    }
    if (absl::Now() >= goodbye_deadline) break;
    absl::StatusOr<std::shared_ptr<AttachStream>> attached = Attach(std::min(
        absl::Now() + client_options.default_deadline, goodbye_deadline));
    if (!attached.ok()) continue;
    stream = *std::move(attached);
    backoff.Reset();
    Reconcile(stream);
  }
  fn_thread_.join();
  absl::MutexLock lock(&mu_);
  stream_ = nullptr;
  finished_ = true;
}

bool WorkerCore::Serve(const std::shared_ptr<AttachStream>& stream,
                       absl::Time* goodbye_deadline) {
  bool goodbye_sent = false;
  while (true) {
    if (!goodbye_sent) {
      absl::MutexLock lock(&mu_);
      if (fn_done_) {
        v1::WorkerReport goodbye;
        if (!fn_status_.ok())
          goodbye.mutable_goodbye()->set_error(fn_status_.ToString());
        else
          goodbye.mutable_goodbye();
        stream->Send(std::move(goodbye));
        goodbye_sent = true;
        if (*goodbye_deadline == absl::InfiniteFuture()) {
          *goodbye_deadline = absl::Now() + goodbye_timeout_;
        }
      }
    }
    if (goodbye_sent) stream->CloseWrites();
    std::optional<Inbox::Event> event =
        inbox_->Wait(goodbye_sent ? *goodbye_deadline : absl::InfiniteFuture());
    if (!event.has_value()) break;  // The goodbye got no answer in time.
    if (event->kind == Inbox::Event::Kind::kWake) continue;
    if (event->generation != stream->generation()) continue;
    if (event->kind == Inbox::Event::Kind::kStreamEnded) break;
    HandleCommand(event->command);
  }
  {
    absl::MutexLock lock(&mu_);
    if (stream_ == stream) stream_ = nullptr;
  }
  const grpc::Status status = stream->Finish();
  // The server ends the stream with OK once it has taken the goodbye.
  return goodbye_sent && status.ok();
}

void WorkerCore::Reconcile(const std::shared_ptr<AttachStream>& stream) {
  bool ask_pause = false;
  {
    absl::MutexLock lock(&mu_);
    ++reattaches_;
    stream_ = stream;
    if (fn_done_) return;  // Serve sends the goodbye.
    ask_pause = pause_requested_ && !stop_requested_;
    // The new registration is RUNNING: tell it the progress (and STOPPING if
    // so).
    if (!ask_pause) ReportLocked();
  }
  if (!ask_pause) return;
  // The worker is paused (or about to be): pause the new registration too,
  // through the same call an operator uses, so that the server shows PAUSED and
  // Resume works as before. Its PAUSE command comes back on the stream and is
  // acknowledged by HandleCommand.
  v1::WorkerRef ref;
  ref.set_name(name_);
  absl::StatusOr<v1::WorkerInfo> paused = CallSync<v1::WorkerInfo>(
      *conn_, absl::Now() + conn_->options().default_deadline, ref,
      [this](grpc::ClientContext* ctx, const v1::WorkerRef& req,
             v1::WorkerInfo* resp) {
        return conn_->workers().Pause(ctx, req, resp);
      });
  if (!paused.ok()) {
    // The server shows the worker running; follow it rather than stay paused
    // unseen.
    absl::MutexLock lock(&mu_);
    pause_requested_ = false;
    if (state_ != WorkerState::kPaused) ReportLocked();
  }
}

void WorkerCore::HandleCommand(const v1::WorkerCommand& command) {
  absl::MutexLock lock(&mu_);
  switch (command.command()) {
    case v1::WorkerCommand::PAUSE:
      pause_requested_ = true;
      // Already parked at a checkpoint (after a reattach): acknowledge again.
      if (state_ == WorkerState::kPaused) ReportLocked();
      break;
    case v1::WorkerCommand::RESUME:
      pause_requested_ = false;
      break;
    case v1::WorkerCommand::STOP:
      stop_requested_ = true;
      break;
    default:
      break;
  }
}

void WorkerCore::ReportLocked() {
  if (stream_ == nullptr) return;
  v1::WorkerReport report;
  report.mutable_state()->set_state(ToProto(state_));
  report.mutable_state()->set_progress(progress_);
  stream_->Send(std::move(report));
}

bool WorkerCore::Checkpoint() {
  absl::MutexLock lock(&mu_);
  if (!stop_requested_ && !pause_requested_) return true;
  if (!stop_requested_) {
    state_ = WorkerState::kPaused;
    ReportLocked();
    mu_.Await(absl::Condition(this, &WorkerCore::ResumedOrStoppedLocked));
    if (!stop_requested_) {
      state_ = WorkerState::kRunning;
      ReportLocked();
      return true;
    }
  }
  if (state_ != WorkerState::kStopping) {
    state_ = WorkerState::kStopping;
    ReportLocked();
  }
  return false;
}

bool WorkerCore::SleepFor(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithDeadline(absl::Condition(&stop_requested_), absl::Now() + d);
  return !stop_requested_;
}

bool WorkerCore::StopRequested() const {
  absl::MutexLock lock(&mu_);
  return stop_requested_;
}

void WorkerCore::ReportProgress(std::string progress) {
  absl::MutexLock lock(&mu_);
  progress_ = std::move(progress);
  ReportLocked();
}

void WorkerCore::RequestStop() {
  {
    absl::MutexLock lock(&mu_);
    stop_requested_ = true;
  }
  inbox_->Post({.kind = Inbox::Event::Kind::kWake});
}

absl::Status WorkerCore::Join() {
  {
    absl::MutexLock lock(&join_mu_);
    if (supervisor_.joinable()) supervisor_.join();
  }
  absl::MutexLock lock(&mu_);
  return fn_status_;
}

bool WorkerCore::JoinUntil(absl::Time deadline, absl::Status* result) {
  {
    absl::MutexLock lock(&mu_);
    if (!mu_.AwaitWithDeadline(absl::Condition(&finished_), deadline))
      return false;
  }
  absl::Status status = Join();
  if (result != nullptr) *result = std::move(status);
  return true;
}

WorkerState WorkerCore::state() const {
  absl::MutexLock lock(&mu_);
  return state_;
}
uint64_t WorkerCore::reattaches() const {
  absl::MutexLock lock(&mu_);
  return reattaches_;
}
bool WorkerCore::attached() const {
  absl::MutexLock lock(&mu_);
  return stream_ != nullptr;
}

}  // namespace internal

// ---- WorkerContext, WorkerHandle
// -------------------------------------------------------------

bool WorkerContext::Checkpoint() { return core_->Checkpoint(); }
bool WorkerContext::SleepFor(absl::Duration d) { return core_->SleepFor(d); }
bool WorkerContext::StopRequested() const { return core_->StopRequested(); }
void WorkerContext::ReportProgress(std::string progress) {
  core_->ReportProgress(std::move(progress));
}
const std::string& WorkerContext::name() const { return core_->name(); }

WorkerHandle::~WorkerHandle() {
  // Dropping the handle drops the function's result; Stop() or Join() first to
  // read it.
  if (core_ != nullptr) Stop().IgnoreError();
}

WorkerHandle& WorkerHandle::operator=(WorkerHandle&& other) noexcept {
  if (this != &other) {
    if (core_ != nullptr) Stop().IgnoreError();
    core_ = std::move(other.core_);
  }
  return *this;
}

void WorkerHandle::RequestStop() {
  if (core_ != nullptr) core_->RequestStop();
}
absl::Status WorkerHandle::Stop() {
  if (core_ == nullptr) return absl::OkStatus();
  core_->RequestStop();
  return core_->Join();
}
absl::Status WorkerHandle::Join() {
  return core_ == nullptr ? absl::OkStatus() : core_->Join();
}
bool WorkerHandle::JoinUntil(absl::Time deadline, absl::Status* result) {
  if (core_ == nullptr) return true;
  return core_->JoinUntil(deadline, result);
}
WorkerState WorkerHandle::state() const {
  return core_ == nullptr ? WorkerState::kStopped : core_->state();
}
const std::string& WorkerHandle::name() const {
  static const std::string* const kEmpty = new std::string();
  return core_ == nullptr ? *kEmpty : core_->name();
}
uint64_t WorkerHandle::reattaches() const {
  return core_ == nullptr ? 0 : core_->reattaches();
}
bool WorkerHandle::attached() const {
  return core_ != nullptr && core_->attached();
}

}  // namespace tshare::client
