// WorkersService: tshare.v1.Workers: one registry (the core WorkerManager) that
// holds the server's own workers (kind SERVER, e.g. the history compactor) and
// workers that client processes attach over Attach (kind CLIENT), controlled
// alike by List, Pause, Resume, Stop and Watch.
//
// Thread-safety: thread-safe. gRPC calls the handlers from its threads; worker
// state changes arrive through a WorkerManager listener on whatever thread made
// them. No lock of this service is held while it calls gRPC or a state-changing
// WorkerManager method.
#ifndef TSHARE_SERVICE_WORKERS_SERVICE_H_
#define TSHARE_SERVICE_WORKERS_SERVICE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/worker_manager.h"
#include "service/options.h"
#include "tshare/v1/admin.pb.h"
#include "tshare/v1/workers.grpc.pb.h"

namespace tshare::service {

namespace workers_internal {
class AttachReactor;
class AttachStream;
class WatchReactor;
class WatchStream;
}  // namespace workers_internal

// How a client worker's Attach stream is handled:
//   - the first report must be a hello whose name is a valid key
//   (INVALID_ARGUMENT) and not
//     the name of a server worker or of an attached client worker that is still
//     active (ALREADY_EXISTS; a client worker that has ended may be attached
//     again under its name, which replaces it: Watch sends REMOVED for the old
//     one). The worker is then RUNNING and the server answers ATTACHED with its
//     WorkerInfo;
//   - Pause, Resume and Stop calls change the worker's state at once and send
//   PAUSE, RESUME
//     or STOP; the worker stays pause_requested until it reports state PAUSED
//     (it holds still), and STOPPING until its goodbye;
//   - a State report sets the progress; PAUSED acknowledges a pause; STOPPED or
//   FAILED end
//     the worker like a goodbye;
//   - a goodbye ends the worker (STOPPED, or FAILED with its error) and the
//   stream (OK);
//   - a stream that ends any other way (cancelled, broken, half-closed without
//   goodbye)
//     marks the worker FAILED with error "client disconnected" at once.
//
// Example (what Server does):
//   core::WorkerManager workers;
//   WorkersService service(&workers, options);
//   builder.RegisterService(&service);
//   workers.Spawn("history-compactor", ...);   // listed as kind SERVER
class WorkersService final : public v1::Workers::CallbackService {
 public:
  // `workers` is borrowed and must outlive the service. Workers already in it
  // and every worker added later that is not attached through Attach are listed
  // as kind SERVER.
  WorkersService(core::WorkerManager* workers, const ServerOptions& options);
  // REQUIRES: the gRPC server is shut down (no stream open).
  ~WorkersService() override;

  WorkersService(const WorkersService&) = delete;
  WorkersService& operator=(const WorkersService&) = delete;

  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* context,
                                 const v1::ListWorkersRequest* request,
                                 v1::ListWorkersResponse* response) override;
  grpc::ServerUnaryReactor* Pause(grpc::CallbackServerContext* context,
                                  const v1::WorkerRef* request,
                                  v1::WorkerInfo* response) override;
  grpc::ServerUnaryReactor* Resume(grpc::CallbackServerContext* context,
                                   const v1::WorkerRef* request,
                                   v1::WorkerInfo* response) override;
  grpc::ServerUnaryReactor* Stop(grpc::CallbackServerContext* context,
                                 const v1::WorkerRef* request,
                                 v1::WorkerInfo* response) override;
  grpc::ServerWriteReactor<v1::WorkerEvent>* Watch(
      grpc::CallbackServerContext* context,
      const v1::WatchWorkersRequest* request) override;
  grpc::ServerBidiReactor<v1::WorkerReport, v1::WorkerCommand>* Attach(
      grpc::CallbackServerContext* context) override;

  // Refuses new calls with UNAVAILABLE; open Watch and Attach streams end with
  // UNAVAILABLE (attached workers become FAILED, "server shutting down").
  // Idempotent.
  void BeginShutdown() ABSL_LOCKS_EXCLUDED(mu_);

  // Every worker, sorted by name.
  std::vector<v1::WorkerInfo> ListWorkers() const ABSL_LOCKS_EXCLUDED(mu_);
  // NOT_FOUND for an unknown name.
  absl::StatusOr<v1::WorkerInfo> GetWorker(absl::string_view name) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // Workers by state, for Admin.Stats.
  v1::WorkerStats Stats() const;

 private:
  friend class workers_internal::AttachReactor;
  friend class workers_internal::AttachStream;
  friend class workers_internal::WatchReactor;

  // What the service knows about a worker beyond the core's WorkerInfo.
  struct Tracked {
    v1::WorkerInfo::Kind kind = v1::WorkerInfo::SERVER;
    // CLIENT: the attached process's address.
    std::string peer;
    // CLIENT: the stream of the attached process while it is open.
    std::weak_ptr<workers_internal::AttachStream> attach;
    // CLIENT: reserved by a hello being processed, or attached through an open
    // stream.
    bool stream_open = false;
    // CLIENT: the worker reported PAUSED since the last pause request.
    bool client_parked = false;
    // The state of the last snapshot the listener got.
    core::WorkerState last_state = core::WorkerState::kStarting;
    bool seen = false;
    absl::Time updated_at = absl::InfinitePast();
  };

  enum class Action { kPause, kResume, kStop };
  grpc::ServerUnaryReactor* Control(grpc::CallbackServerContext* context,
                                    const v1::WorkerRef* request,
                                    v1::WorkerInfo* response, Action action);

  // The listener on the WorkerManager.
  void OnWorkerChange(const core::WorkerInfo& info) ABSL_LOCKS_EXCLUDED(mu_);

  v1::WorkerInfo ToProtoLocked(const core::WorkerInfo& info) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues `event` for every Watch stream that wants it; returns the streams to
  // pump.
  std::vector<std::shared_ptr<workers_internal::WatchStream>> QueueEventLocked(
      v1::WorkerEvent::Kind kind, const v1::WorkerInfo& info)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends CHANGED for `name` from the current core snapshot (after a change the
  // core does not announce: a pause acknowledged, progress).
  void AnnounceChange(const std::string& name) ABSL_LOCKS_EXCLUDED(mu_);

  // Attach: registers `name` for `reactor` (see the class comment for the
  // rules) and returns its control, already RUNNING.
  absl::StatusOr<std::shared_ptr<core::WorkerControl>> AttachWorker(
      const std::string& name, const std::string& peer,
      const std::shared_ptr<workers_internal::AttachStream>& stream)
      ABSL_LOCKS_EXCLUDED(mu_);
  // `stream`, attached as `name`, has ended (after its control was finished).
  void DetachWorker(const std::string& name,
                    const workers_internal::AttachStream* stream)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The client acknowledged a pause (PAUSED: parked) or reported RUNNING (not
  // parked).
  void SetClientParked(const std::string& name, bool parked)
      ABSL_LOCKS_EXCLUDED(mu_);
  void RegisterAttach(std::shared_ptr<workers_internal::AttachStream> stream)
      ABSL_LOCKS_EXCLUDED(mu_);
  void UnregisterAttach(const workers_internal::AttachStream* stream)
      ABSL_LOCKS_EXCLUDED(mu_);

  void RegisterWatch(uint64_t id,
                     std::shared_ptr<workers_internal::WatchStream> stream,
                     const std::string& name) ABSL_LOCKS_EXCLUDED(mu_);
  void UnregisterWatch(uint64_t id) ABSL_LOCKS_EXCLUDED(mu_);

  bool shutting_down() const ABSL_LOCKS_EXCLUDED(mu_);

  core::WorkerManager* const workers_;
  const ServerOptions options_;
  core::WorkerListenerId listener_id_ = 0;

  mutable absl::Mutex mu_;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, Tracked, std::less<>> tracked_ ABSL_GUARDED_BY(mu_);
  uint64_t next_watch_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint64_t, std::shared_ptr<workers_internal::WatchStream>>
      watches_ ABSL_GUARDED_BY(mu_);
  // Every open Attach stream (attached or still waiting for its hello), for
  // BeginShutdown.
  absl::flat_hash_map<const workers_internal::AttachStream*,
                      std::shared_ptr<workers_internal::AttachStream>>
      attaches_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tshare::service

#endif  // TSHARE_SERVICE_WORKERS_SERVICE_H_
