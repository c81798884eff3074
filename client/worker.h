// Workers that the server controls (Client::RunWorker): a function running on a
// client thread, registered with the server under a name through
// Workers.Attach, so that Workers.Pause, Resume and Stop (from any client,
// tsharectl or grpcurl) reach it at its next checkpoint.
//
// Across a lost connection: the server marks the worker FAILED when the stream
// breaks; the client keeps running the function and reattaches under the same
// name with jittered backoff, then reports the worker's current state again. A
// worker that was paused stays paused across a reattach (it is reported PAUSED
// to the server again, and Workers.Resume or Stop wakes it); pause or resume
// requests made while it was detached never reach it. Reports made while
// detached are not replayed: the state and the latest progress are sent on
// reattach.
//
// Thread-safety: WorkerContext is used by the worker function's own thread; its
// methods may also be called from other threads. WorkerHandle's methods may be
// called from any thread except Join() and Stop() from inside the worker
// function (they wait for it to return).
#ifndef TSHARE_CLIENT_WORKER_H_
#define TSHARE_CLIENT_WORKER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "client/options.h"

namespace tshare::client {

namespace internal {
class WorkerCore;
}  // namespace internal

// The worker's state as this client sees it (the wire's WorkerInfo.State).
enum class WorkerState {
  kStarting,
  kRunning,
  kPaused,
  kStopping,
  kStopped,
  kFailed
};

// One worker of the server's registry (the wire's WorkerInfo), as
// Client::ListWorkers, PauseWorker, ResumeWorker and StopWorker return it.
struct WorkerInfo {
  enum class Kind { kServer, kClient };
  std::string name;
  // kServer: a worker of tshared itself; kClient: attached by a client
  // (RunWorker).
  Kind kind = Kind::kClient;
  WorkerState state = WorkerState::kStarting;
  std::string progress;
  // Why it failed (kFailed).
  std::string error;
  // The attached client's address (kClient).
  std::string peer;
  absl::Time started_at = absl::InfinitePast();
  absl::Time updated_at = absl::InfinitePast();
  // A pause or stop was asked and the worker has not acknowledged it yet.
  bool pause_requested = false;
  bool stop_requested = false;
};

struct WorkerOptions {
  // Deadline of the first attach (RunWorker waits for it) and of each reattach.
  CallOptions attach;
  // After the function returns, how long the client keeps trying to tell the
  // server (the goodbye that marks the worker STOPPED or FAILED) if the
  // connection is down. Zero means ClientOptions::default_deadline.
  absl::Duration goodbye_timeout = absl::ZeroDuration();
};

// What the worker function gets: its pause and stop points and its progress
// reports.
//
//   client->RunWorker("indexer", [](WorkerContext& ctx) -> absl::Status {
//     while (ctx.Checkpoint()) {
//       IndexSome();
//       ctx.ReportProgress("indexed 100 more");
//     }
//     return absl::OkStatus();
//   });
class WorkerContext final {
 public:
  WorkerContext(const WorkerContext&) = delete;
  WorkerContext& operator=(const WorkerContext&) = delete;

  // Blocks while the worker is paused (reported PAUSED, then RUNNING again on
  // resume); returns false once a stop was asked (Workers.Stop,
  // WorkerHandle::Stop), true otherwise.
  bool Checkpoint();
  // Sleeps for `d` unless a stop is asked first; returns false if it was. Use
  // it instead of a sleep so that a stop is not delayed. Does not pause
  // (Checkpoint does).
  bool SleepFor(absl::Duration d);
  // True once a stop was asked.
  bool StopRequested() const;
  // Sends `progress` (free text) to the server, shown by Workers.List. Cheap:
  // queued, not waited for; while detached only the latest progress is kept and
  // sent on reattach.
  void ReportProgress(std::string progress);
  const std::string& name() const;

 private:
  friend class internal::WorkerCore;
  explicit WorkerContext(internal::WorkerCore* core) : core_(core) {}

  internal::WorkerCore* const core_;  // Owns this context.
};

// Owns a running worker. Destroying it asks the worker to stop and waits for
// its function to return (so the function must reach a Checkpoint). Move-only.
class WorkerHandle final {
 public:
  WorkerHandle() = default;
  ~WorkerHandle();

  WorkerHandle(WorkerHandle&& other) noexcept = default;
  // Stops (and waits for) the worker this handle held before taking `other`'s.
  WorkerHandle& operator=(WorkerHandle&& other) noexcept;
  WorkerHandle(const WorkerHandle&) = delete;
  WorkerHandle& operator=(const WorkerHandle&) = delete;

  // Asks the worker to stop: its next Checkpoint returns false. Does not wait.
  void RequestStop();
  // RequestStop, then Join.
  absl::Status Stop();
  // Waits until the function returned and the server was told (or
  // goodbye_timeout passed); returns what the function returned. May be called
  // more than once.
  absl::Status Join();
  // Join with a deadline: false if the worker is still running at `deadline`.
  bool JoinUntil(absl::Time deadline, absl::Status* result = nullptr);

  WorkerState state() const;
  const std::string& name() const;
  // Successful attaches after the first one.
  uint64_t reattaches() const;
  // True while the worker is attached to the server.
  bool attached() const;

 private:
  friend class Client;
  explicit WorkerHandle(std::shared_ptr<internal::WorkerCore> core)
      : core_(std::move(core)) {}

  std::shared_ptr<internal::WorkerCore> core_;
};

}  // namespace tshare::client

#endif  // TSHARE_CLIENT_WORKER_H_
