// The machinery of Client::RunWorker: the Attach stream (a gRPC callback bidi
// reactor), the inbox through which its reactions reach the supervisor thread,
// and WorkerCore, which owns the worker's state, its function's thread and the
// supervisor thread that attaches, reattaches and says goodbye.
//
// Lock order: WorkerCore::mu_ may be held while calling AttachStream::Send
// (which starts gRPC writes); gRPC reactions take only AttachStream::mu_ and
// Inbox::mu_, never WorkerCore::mu_, so a reaction that gRPC runs inline inside
// a Start* call cannot deadlock.
//
// Thread-safety: every public method may be called from any thread unless said
// otherwise.
#ifndef TSHARE_CLIENT_INTERNAL_WORKER_CORE_H_
#define TSHARE_CLIENT_INTERNAL_WORKER_CORE_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "client/internal/connection.h"
#include "client/worker.h"
#include "core/future.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/client_callback.h"
#include "tshare/v1/workers.grpc.pb.h"

namespace tshare::client::internal {

// What the reactions and the worker's threads tell the supervisor.
class Inbox final {
 public:
  struct Event {
    enum class Kind {
      // A command from the server (on stream `generation`).
      kCommand,
      // Stream `generation` ended (its read side).
      kStreamEnded,
      // Something changed in WorkerCore's state (the function returned, a stop
      // was asked).
      kWake,
    };
    Kind kind = Kind::kWake;
    uint64_t generation = 0;
    v1::WorkerCommand command;
  };

  Inbox() = default;
  Inbox(const Inbox&) = delete;
  Inbox& operator=(const Inbox&) = delete;

  void Post(Event event) ABSL_LOCKS_EXCLUDED(mu_);
  // The oldest event, or nothing once `deadline` passes.
  std::optional<Event> Wait(absl::Time deadline) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Mutex mu_;
  std::deque<Event> events_ ABSL_GUARDED_BY(mu_);
};

// One Workers.Attach call. Writes are queued and sent one at a time; a hold
// taken before StartCall covers writes started from outside the reactions, and
// is given back once no more of those can start (CloseWrites or Finish). Its
// owners must call Finish before dropping it; gRPC holds no reference, so it is
// never destroyed in a reaction (see read_stream.h for why).
class AttachStream final
    : public grpc::ClientBidiReactor<v1::WorkerReport, v1::WorkerCommand> {
 public:
  AttachStream(std::shared_ptr<Inbox> inbox, uint64_t generation)
      : inbox_(std::move(inbox)), generation_(generation) {}
  AttachStream(const AttachStream&) = delete;
  AttachStream& operator=(const AttachStream&) = delete;

  uint64_t generation() const { return generation_; }

  // Starts the call with `hello` as its first report.
  void Start(v1::Workers::Stub& stub, v1::WorkerReport hello)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Queues a report; dropped once writes are closed or failed.
  void Send(v1::WorkerReport report) ABSL_LOCKS_EXCLUDED(mu_);
  // No more reports: half-closes after the queued ones.
  void CloseWrites() ABSL_LOCKS_EXCLUDED(mu_);
  // Cancels the call unless its read side ended, then waits for OnDone; returns
  // the status. gRPC is done with this object when it returns.
  grpc::Status Finish() ABSL_LOCKS_EXCLUDED(mu_);

  void OnReadDone(bool ok) override ABSL_LOCKS_EXCLUDED(mu_);
  void OnWriteDone(bool ok) override ABSL_LOCKS_EXCLUDED(mu_);
  void OnDone(const grpc::Status& status) override ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void MaybeReleaseHold() ABSL_LOCKS_EXCLUDED(mu_);

  const std::shared_ptr<Inbox> inbox_;
  const uint64_t generation_;
  grpc::ClientContext ctx_;
  // Written by gRPC while a read is outstanding (always, until the read side
  // ends).
  v1::WorkerCommand incoming_;
  // Completed by OnDone, awaited by Finish.
  core::Promise<grpc::Status> done_;
  const core::Future<grpc::Status> done_future_ = done_.GetFuture();

  absl::Mutex mu_;
  // Reports waiting; the front one is being written while writing_.
  std::deque<v1::WorkerReport> pending_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool write_failed_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool writes_done_started_ ABSL_GUARDED_BY(mu_) = false;
  bool read_ended_ ABSL_GUARDED_BY(mu_) = false;
  // Start* calls being made from outside the reactions right now.
  int outside_ops_ ABSL_GUARDED_BY(mu_) = 0;
  bool release_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool hold_released_ ABSL_GUARDED_BY(mu_) = false;
};

class WorkerCore final : public std::enable_shared_from_this<WorkerCore> {
 public:
  WorkerCore(std::shared_ptr<const Connection> conn, std::string name,
             WorkerFn fn, WorkerOptions options);
  ~WorkerCore();
  WorkerCore(const WorkerCore&) = delete;
  WorkerCore& operator=(const WorkerCore&) = delete;

  // Attaches (within options.attach) and starts the function's thread and the
  // supervisor. Called once, before anything else.
  absl::Status Start() ABSL_LOCKS_EXCLUDED(mu_);

  // WorkerContext.
  bool Checkpoint() ABSL_LOCKS_EXCLUDED(mu_);
  bool SleepFor(absl::Duration d) ABSL_LOCKS_EXCLUDED(mu_);
  bool StopRequested() const ABSL_LOCKS_EXCLUDED(mu_);
  void ReportProgress(std::string progress) ABSL_LOCKS_EXCLUDED(mu_);
  const std::string& name() const { return name_; }

  // WorkerHandle.
  void RequestStop() ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Join() ABSL_LOCKS_EXCLUDED(mu_, join_mu_);
  bool JoinUntil(absl::Time deadline, absl::Status* result)
      ABSL_LOCKS_EXCLUDED(mu_, join_mu_);
  WorkerState state() const ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t reattaches() const ABSL_LOCKS_EXCLUDED(mu_);
  bool attached() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // One attach attempt: the stream once the server answered ATTACHED, or why
  // not.
  absl::StatusOr<std::shared_ptr<AttachStream>> Attach(absl::Time deadline);
  void Supervise(std::shared_ptr<AttachStream> stream);
  // Serves an attached stream until it ends; true if the server took the
  // goodbye.
  bool Serve(const std::shared_ptr<AttachStream>& stream,
             absl::Time* goodbye_deadline);
  // After a reattach: make the server's view match this worker's (see
  // worker.h).
  void Reconcile(const std::shared_ptr<AttachStream>& stream)
      ABSL_LOCKS_EXCLUDED(mu_);
  void HandleCommand(const v1::WorkerCommand& command) ABSL_LOCKS_EXCLUDED(mu_);
  void RunFn();
  // Sends the current state and progress, if attached.
  void ReportLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool ResumedOrStoppedLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !pause_requested_ || stop_requested_;
  }

  const std::shared_ptr<const Connection> conn_;
  const std::string name_;
  const WorkerOptions options_;
  const absl::Duration goodbye_timeout_;
  const std::shared_ptr<Inbox> inbox_ = std::make_shared<Inbox>();
  WorkerContext context_{this};
  // Only the function's thread calls it.
  WorkerFn fn_;
  // Only the thread that attaches (Start, then the supervisor) touches these.
  uint64_t generation_ = 0;
  std::thread fn_thread_;

  mutable absl::Mutex mu_;
  WorkerState state_ ABSL_GUARDED_BY(mu_) = WorkerState::kStarting;
  bool pause_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_requested_ ABSL_GUARDED_BY(mu_) = false;
  std::string progress_ ABSL_GUARDED_BY(mu_);
  // The attached stream; null while detached.
  std::shared_ptr<AttachStream> stream_ ABSL_GUARDED_BY(mu_);
  bool fn_done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status fn_status_ ABSL_GUARDED_BY(mu_);
  uint64_t reattaches_ ABSL_GUARDED_BY(mu_) = 0;
  // The supervisor has finished (the function returned and the goodbye is done
  // with).
  bool finished_ ABSL_GUARDED_BY(mu_) = false;

  absl::Mutex join_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::thread supervisor_ ABSL_GUARDED_BY(join_mu_);
};

}  // namespace tshare::client::internal

#endif  // TSHARE_CLIENT_INTERNAL_WORKER_CORE_H_
