// WorkerManager: named worker threads that can be paused, resumed and stopped,
// with states, progress, captured errors and state-change events.
//
// Thread-safety: every public member of WorkerManager, WorkerControl and
// WorkerEvents may be called from any thread at once. WorkerContext belongs to
// its worker: only that worker's thread calls it. Pause and stop are
// cooperative: a worker holds still or ends only at its next
// WorkerContext::Checkpoint() (or SleepFor / StopRequested), never in the
// middle of its own work. Listeners never run with a lock held (see
// WorkerEvents for which thread calls them).
#ifndef TSHARE_CORE_WORKER_MANAGER_H_
#define TSHARE_CORE_WORKER_MANAGER_H_

#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace tshare::core {

// The life of a worker:
//   kStarting → kRunning                     when its thread begins
//   kStarting or kRunning → kPaused          Pause
//   kPaused → kRunning                       Resume (back to kStarting if its
//                                            thread has not begun yet)
//   kStarting, kRunning or kPaused
//       → kStopping                          Stop
//   any of the above → kStopped              its function returns OK
//   any of the above → kFailed               it returns an error or throws
// kStopped and kFailed are final.
enum class WorkerState {
  kStarting,
  kRunning,
  kPaused,
  kStopping,
  kStopped,
  kFailed
};

// "starting", "running", "paused", "stopping", "stopped" or "failed".
std::string_view WorkerStateName(WorkerState state);
std::ostream& operator<<(std::ostream& os, WorkerState state);

// True for kStopped and kFailed.
bool IsFinal(WorkerState state);

// A snapshot of one worker.
struct WorkerInfo {
  std::string name;
  WorkerState state = WorkerState::kStarting;
  // The error of a kFailed worker (what it returned, or INTERNAL naming what it
  // threw); OK in every other state.
  absl::Status status;
  // The last text given to WorkerContext::ReportProgress; empty if none.
  std::string progress;
  // True while the worker is blocked inside Checkpoint() because it is paused:
  // a paused worker whose `parked` is false has not reached its next checkpoint
  // yet.
  bool parked = false;
  // False for a std::thread handed to WorkerManager::Add: it has no
  // WorkerContext, so it can be neither paused nor stopped, only joined.
  bool controllable = true;
  // When the worker's thread began, and when it reached kStopped or kFailed;
  // absl::InfinitePast() until that happens.
  absl::Time started_at = absl::InfinitePast();
  absl::Time stopped_at = absl::InfinitePast();
};

// Called with a WorkerInfo snapshot after each state change.
using WorkerListener = absl::AnyInvocable<void(const WorkerInfo&)>;
// Names a listener for RemoveListener. Never 0.
using WorkerListenerId = uint64_t;

// Hands state-change snapshots to listeners: in the order the changes happened,
// one call at a time, never with a lock held.
//
// A listener runs on the thread that made a change (the worker's own thread
// when it starts or ends, the caller's thread for Pause, Resume, Stop, Remove,
// ...), or on another thread that is delivering at that moment: whoever finds
// events waiting and nobody delivering delivers them all, so keep listeners
// short. A listener may call any WorkerManager or WorkerEvents member, except
// that it must not wait for the end of the worker whose thread runs it
// (JoinAll, Remove) nor throw (exceptions are dropped).
//
//   WorkerEvents events;
//   WorkerListenerId id = events.AddListener([](const WorkerInfo& info) {
//     std::cout << info.name << " is " << info.state << "\n";
//   });
//   ...
//   events.RemoveListener(id);  // from here on it neither runs nor will run
class WorkerEvents final {
 public:
  WorkerEvents() = default;
  WorkerEvents(const WorkerEvents&) = delete;
  WorkerEvents& operator=(const WorkerEvents&) = delete;
  WorkerEvents(WorkerEvents&&) = delete;
  WorkerEvents& operator=(WorkerEvents&&) = delete;

  // The listener sees every change published after AddListener returns (and
  // none from before). To know the present state and then every change, add the
  // listener first, then read WorkerManager::List(): a change in between may
  // show twice, never zero times.
  WorkerListenerId AddListener(WorkerListener listener)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Once this returns, the listener is not running on another thread and never
  // runs again; it has been destroyed unless it is the listener calling
  // RemoveListener. Unknown ids are ignored.
  void RemoveListener(WorkerListenerId id) ABSL_LOCKS_EXCLUDED(mu_);
  // RemoveListener for every listener. A listener may own a WorkerControl that
  // owns these WorkerEvents, so whoever registered listeners calls this when
  // it is done with them, or the two keep each other alive.
  void RemoveAllListeners() ABSL_LOCKS_EXCLUDED(mu_);

  // Queues a snapshot. Never calls a listener, so it may be called with other
  // locks held; Deliver() hands it over.
  void Publish(WorkerInfo info) ABSL_LOCKS_EXCLUDED(mu_);

  // Calls the listeners for every queued snapshot, unless another thread is
  // doing so (it then delivers these too). REQUIRES: the caller holds no lock
  // that a listener may take.
  void Deliver() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Event {
    uint64_t sequence;
    WorkerInfo info;
  };
  struct Registration {
    // Events numbered below this were published before the listener came.
    uint64_t first_sequence;
    std::shared_ptr<WorkerListener> listener;
  };

  absl::Mutex mu_;
  uint64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 1;
  WorkerListenerId next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<WorkerListenerId, Registration> listeners_ ABSL_GUARDED_BY(mu_);
  std::deque<Event> queue_ ABSL_GUARDED_BY(mu_);
  bool delivering_ ABSL_GUARDED_BY(mu_) = false;
  std::thread::id deliverer_ ABSL_GUARDED_BY(mu_);
  // The listener running now; 0 for none.
  WorkerListenerId calling_ ABSL_GUARDED_BY(mu_) = 0;
};

// The state machine of one worker: its state, the pause and stop requests, the
// worker's waiting at checkpoints, its progress and its final status.
// WorkerManager makes one per worker; code that runs a worker somewhere else
// (in another process, driven by messages) can drive one itself. Three parties
// use it:
//   - controllers: Pause, Resume, Stop, WaitUntilParked, WaitUntilFinished;
//   - the worker's body, through a WorkerContext: Checkpoint, SleepFor, ...;
//   - the owner that runs the body: MarkRunning, then Finish.
// Every state change is published to `events` (if not null) and delivered
// before the call that made it returns, or by the thread delivering at that
// moment.
//
//   auto control = std::make_shared<WorkerControl>("indexer", nullptr);
//   std::thread t([control] {
//     control->MarkRunning();
//     WorkerContext context(*control);
//     while (context.Checkpoint()) { /* one unit of work */ }
//     control->Finish(absl::OkStatus());
//   });
//   control->Pause();  ...  control->Resume();  ...  control->Stop(); t.join();
class WorkerControl final {
 public:
  // Starts in kStarting and queues that first snapshot on `events` without
  // delivering it (the next change, or events->Deliver(), hands it over). A
  // worker that is not `controllable` (a bare thread) refuses Pause, Resume and
  // Stop.
  WorkerControl(std::string name, std::shared_ptr<WorkerEvents> events,
                bool controllable = true);
  WorkerControl(const WorkerControl&) = delete;
  WorkerControl& operator=(const WorkerControl&) = delete;
  WorkerControl(WorkerControl&&) = delete;
  WorkerControl& operator=(WorkerControl&&) = delete;

  const std::string& name() const { return name_; }
  bool controllable() const { return controllable_; }
  WorkerState state() const ABSL_LOCKS_EXCLUDED(mu_);
  WorkerInfo Info() const ABSL_LOCKS_EXCLUDED(mu_);

  // --- Controllers. Each returns FAILED_PRECONDITION, naming the current
  // state, when the transition is not allowed, and then changes nothing.

  // kStarting or kRunning → kPaused. The worker holds still at its next
  // checkpoint.
  absl::Status Pause() ABSL_LOCKS_EXCLUDED(mu_);
  // kPaused → kRunning. Releases a worker blocked in Checkpoint().
  absl::Status Resume() ABSL_LOCKS_EXCLUDED(mu_);
  // kStarting, kRunning or kPaused → kStopping. Checkpoint() returns false from
  // now on, and a paused worker is released so that it can see that.
  absl::Status Stop() ABSL_LOCKS_EXCLUDED(mu_);
  // Waits until the paused worker is blocked in Checkpoint(), i.e. it really
  // holds still. FAILED_PRECONDITION if the worker is not paused, or stops
  // being paused while waiting; DEADLINE_EXCEEDED if it does not reach a
  // checkpoint within `timeout`.
  absl::Status WaitUntilParked(absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_);
  // Waits until the worker is kStopped or kFailed; returns whether it is.
  bool WaitUntilFinished(absl::Duration timeout) const ABSL_LOCKS_EXCLUDED(mu_);

  // --- The owner that runs the worker.

  // The worker has begun: kStarting → kRunning, and started_at is set. In any
  // other state (paused or stopped before it began) only started_at is set. A
  // paused worker that never began resumes to kStarting.
  void MarkRunning() ABSL_LOCKS_EXCLUDED(mu_);
  // The worker has ended: → kStopped if `status` is OK, else → kFailed keeping
  // `status`. From then on Checkpoint() returns false. Calls after the first
  // are ignored.
  void Finish(absl::Status status) ABSL_LOCKS_EXCLUDED(mu_);

  // --- The worker's body (WorkerContext forwards to these).

  // Blocks while paused; returns false once a stop has been asked (or the
  // worker was finished), true otherwise. Cheap when neither pause nor stop is
  // pending (one atomic load).
  bool Checkpoint() ABSL_LOCKS_EXCLUDED(mu_);
  // As Checkpoint(), but blocks at most `max_block`. Returns true also when
  // `max_block` passes while still paused: PauseRequested() tells that case
  // apart.
  bool Checkpoint(absl::Duration max_block) ABSL_LOCKS_EXCLUDED(mu_);
  // Waits `duration`, or less if a stop is asked; returns false if a stop has
  // been asked. Does not wait for a pause to end.
  bool SleepFor(absl::Duration duration) ABSL_LOCKS_EXCLUDED(mu_);
  bool StopRequested() const ABSL_LOCKS_EXCLUDED(mu_);
  // True while the state is kPaused.
  bool PauseRequested() const ABSL_LOCKS_EXCLUDED(mu_);
  // Kept as WorkerInfo::progress. Not a state change: publishes no event.
  void ReportProgress(std::string progress) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Status Transition(WorkerState to) ABSL_LOCKS_EXCLUDED(mu_);
  // Sets the state, keeps `attention_` in step and publishes the new snapshot.
  void SetStateLocked(WorkerState state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  WorkerInfo InfoLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DeliverEvents();

  bool NotPaused() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return state_ != WorkerState::kPaused;
  }
  bool ParkedOrNotPaused() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return parked_ > 0 || state_ != WorkerState::kPaused;
  }
  bool Stopping() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stop_requested_;
  }
  bool Finished() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return IsFinal(state_);
  }

  const std::string name_;
  const std::shared_ptr<WorkerEvents> events_;  // may be null
  const bool controllable_;

  mutable absl::Mutex mu_;
  WorkerState state_ ABSL_GUARDED_BY(mu_) = WorkerState::kStarting;
  bool stop_requested_ ABSL_GUARDED_BY(mu_) = false;
  // Threads blocked in Checkpoint() because of the pause.
  int parked_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  std::string progress_ ABSL_GUARDED_BY(mu_);
  absl::Time started_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Time stopped_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // True while paused or stopping: the fast path of Checkpoint() reads only
  // this. Written under mu_.
  std::atomic<bool> attention_{false};
};

// What a worker's function is given: its name, its checkpoints and its progress
// report. Only the worker's own thread uses it; it lives as long as the
// function runs.
//
//   manager.Spawn("indexer", [&](WorkerContext& context) {
//     while (context.Checkpoint()) {  // false once a stop is asked
//       IndexNextBatch();
//       context.ReportProgress(absl::StrCat(done, " batches"));
//     }
//   });
class WorkerContext final {
 public:
  // `control` must outlive the context.
  explicit WorkerContext(WorkerControl& control) : control_(control) {}
  WorkerContext(const WorkerContext&) = delete;
  WorkerContext& operator=(const WorkerContext&) = delete;
  WorkerContext(WorkerContext&&) = delete;
  WorkerContext& operator=(WorkerContext&&) = delete;

  const std::string& name() const { return control_.name(); }

  // Blocks while the worker is paused (until Resume or Stop); returns false
  // once a stop has been asked (the function should then return), true
  // otherwise.
  bool Checkpoint() { return control_.Checkpoint(); }
  // As Checkpoint(), blocking at most `max_block`; true also when that passes
  // while still paused (PauseRequested() then says so), so a worker can do
  // housekeeping while paused.
  bool Checkpoint(absl::Duration max_block) {
    return control_.Checkpoint(max_block);
  }
  // Waits `duration` or until a stop is asked; false if a stop has been asked.
  // Use it instead of a sleep so that Stop is not delayed by it.
  bool SleepFor(absl::Duration duration) { return control_.SleepFor(duration); }
  bool StopRequested() const { return control_.StopRequested(); }
  bool PauseRequested() const { return control_.PauseRequested(); }
  // Free text that WorkerManager::Info and List show, e.g. "42/100 files".
  void ReportProgress(std::string progress) {
    control_.ReportProgress(std::move(progress));
  }

 private:
  WorkerControl& control_;
};

template <typename... Args>
class BasicWorkerFn;

namespace worker_internal {
template <typename T>
inline constexpr bool kIsWorkerFn = false;
template <typename... Args>
inline constexpr bool kIsWorkerFn<BasicWorkerFn<Args...>> = true;
}  // namespace worker_internal

// A callable that BasicWorkerFn<Args...> can hold.
template <typename F, typename... Args>
concept WorkerBody =
    !worker_internal::kIsWorkerFn<std::remove_cvref_t<F>> &&
    std::is_invocable_v<std::decay_t<F>&, Args..., WorkerContext&>;

// The body of a worker given to WorkerManager::Spawn (no Args) or to
// SpawnWorkers (Args is the share handle): any callable `void(Args...,
// WorkerContext&)` or `absl::Status(Args..., WorkerContext&)`, move-only ones
// included. An error status makes the worker kFailed. Copies share one
// callable, which is what lets a braced list of them be written; the manager
// calls it once.
template <typename... Args>
class BasicWorkerFn final {
 public:
  // Implicit, so that a lambda converts where a BasicWorkerFn is expected.
  template <WorkerBody<Args...> F>
  BasicWorkerFn(F&& fn) {  // NOLINT(google-explicit-constructor)
    using Fn = std::decay_t<F>;
    using Result = std::invoke_result_t<Fn&, Args..., WorkerContext&>;
    static_assert(
        std::is_void_v<Result> || std::is_convertible_v<Result, absl::Status>,
        "a worker function returns void or absl::Status");
    if constexpr (std::is_constructible_v<bool, const Fn&>) {
      if (!static_cast<bool>(fn)) return;  // empty std::function, null pointer
    }
    if constexpr (std::is_void_v<Result>) {
      body_ = std::make_shared<Body>(
          [f = Fn(std::forward<F>(fn))](Args... args,
                                        WorkerContext& context) mutable {
            f(std::move(args)..., context);
            return absl::OkStatus();
          });
    } else {
      body_ = std::make_shared<Body>(
          [f = Fn(std::forward<F>(fn))](Args... args,
                                        WorkerContext& context) mutable {
            return absl::Status(f(std::move(args)..., context));
          });
    }
  }

  // False for an empty std::function or a null function pointer.
  explicit operator bool() const { return body_ != nullptr; }

  // REQUIRES: *this is not empty.
  absl::Status operator()(Args... args, WorkerContext& context) const {
    return (*body_)(std::move(args)..., context);
  }

 private:
  using Body = absl::AnyInvocable<absl::Status(Args..., WorkerContext&)>;
  std::shared_ptr<Body> body_;
};

using WorkerFn = BasicWorkerFn<>;

// Named workers: threads it starts (Spawn), threads made elsewhere (Add) and
// workers run by someone else (Attach), each with a WorkerControl. Pause,
// Resume and Stop act on one worker; Remove, RemoveAll, JoinAll and the
// destructor wait for workers to end. A worker's error or exception is kept in
// its WorkerInfo and reported by JoinAll, never lost.
//
// Not copyable or movable: workers may hold a pointer to their manager.
// SpawnWorkers therefore returns a std::unique_ptr<WorkerManager>.
//
//   WorkerManager workers;
//   workers.Spawn("indexer", [](WorkerContext& context) -> absl::Status {
//     while (context.Checkpoint()) {
//       if (absl::Status s = IndexNextBatch(); !s.ok()) return s;  // → kFailed
//     }
//     return absl::OkStatus();
//   });
//   workers.Pause("indexer");
//   workers.WaitUntilParked("indexer", absl::Seconds(5));  // now it is still
//   workers.Resume("indexer");
//   workers.Stop("indexer");
//   absl::Status first_error = workers.JoinAll();
//
// Errors: a name no worker has → NOT_FOUND (`no worker named "x"`); a name in
// use → ALREADY_EXISTS; a transition the state does not allow →
// FAILED_PRECONDITION naming the state (see WorkerControl).
class WorkerManager final {
 public:
  WorkerManager();
  // Stops every worker and waits for all of them (as RemoveAll).
  // REQUIRES: not called from a worker of this manager, nor while another
  // thread uses it.
  ~WorkerManager();
  WorkerManager(const WorkerManager&) = delete;
  WorkerManager& operator=(const WorkerManager&) = delete;
  WorkerManager(WorkerManager&&) = delete;
  WorkerManager& operator=(WorkerManager&&) = delete;

  // Runs `fn` on a new thread as worker `name`: kStarting, then kRunning when
  // the thread begins; kStopped when `fn` returns (OK), kFailed with the status
  // it returns (an error) or with INTERNAL naming what it threw. `fn` always
  // runs, even if paused or stopped before its thread began. INVALID_ARGUMENT
  // for an empty name or an empty `fn`; ALREADY_EXISTS for a name in use;
  // RESOURCE_EXHAUSTED if no thread can be started.
  absl::Status Spawn(std::string name, WorkerFn fn) ABSL_LOCKS_EXCLUDED(mu_);

  // Takes over a thread made elsewhere, as worker `name` in kRunning. It has no
  // WorkerContext, so Pause, Resume and Stop on it are FAILED_PRECONDITION;
  // JoinAll and Remove join it, and it becomes kStopped when joined (until then
  // it counts as active, even if it has already returned). INVALID_ARGUMENT for
  // an empty name or a thread that is not joinable; ALREADY_EXISTS for a name
  // in use. `thread` is moved from only on success: after an error it is still
  // the caller's to join (so pass a named thread, not a temporary, unless the
  // name is sure to be free).
  absl::Status Add(std::string name, std::thread&& thread)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Registers worker `name` (kStarting) that the caller runs by other means,
  // for example a worker in a client process driven over the network. The
  // caller drives the returned control: MarkRunning when it begins, Finish when
  // it ends (it must, eventually: JoinAll, Remove and the destructor wait for
  // it); Pause/Resume/Stop here change its state and notify listeners, which is
  // how the caller learns to forward them. Errors as Spawn.
  absl::StatusOr<std::shared_ptr<WorkerControl>> Attach(std::string name)
      ABSL_LOCKS_EXCLUDED(mu_);

  // WorkerControl::Pause / Resume / Stop on worker `name`, and NOT_FOUND for an
  // unknown one.
  absl::Status Pause(std::string_view name) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Resume(std::string_view name) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Stop(std::string_view name) ABSL_LOCKS_EXCLUDED(mu_);
  // WorkerControl::WaitUntilParked on worker `name`: OK once the paused worker
  // holds still in Checkpoint(). NOT_FOUND, FAILED_PRECONDITION (not paused, or
  // not controllable), DEADLINE_EXCEEDED.
  absl::Status WaitUntilParked(std::string_view name, absl::Duration timeout)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Asks worker `name` to stop (if it still runs), waits until it has ended,
  // forgets it and returns its last snapshot, whose `status` holds its error if
  // it failed. NOT_FOUND for an unknown name; FAILED_PRECONDITION when called
  // from that worker itself.
  absl::StatusOr<WorkerInfo> Remove(std::string_view name)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Stops every worker, waits for all, forgets them; returns their last
  // snapshots, by name. FAILED_PRECONDITION, changing nothing, when called from
  // one of the workers.
  absl::StatusOr<std::vector<WorkerInfo>> RemoveAll() ABSL_LOCKS_EXCLUDED(mu_);

  // Waits until every worker has ended, including workers added while waiting,
  // and keeps them (Info and List still show them). Returns OK, or the error of
  // the worker that failed first, prefixed with its name; every error stays
  // readable through Info and List. FAILED_PRECONDITION when called from one of
  // the workers (it would wait for itself). There is no timeout variant because
  // a std::thread cannot be joined with one: Stop the workers first when the
  // wait must be short.
  absl::Status JoinAll() ABSL_LOCKS_EXCLUDED(mu_);

  // Workers in kStarting, kRunning, kPaused or kStopping.
  size_t ActiveWorkers() const ABSL_LOCKS_EXCLUDED(mu_);
  // Every known worker's name, sorted.
  std::vector<std::string> Names() const ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<bool> IsPaused(std::string_view name) const
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<WorkerState> State(std::string_view name) const
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<WorkerInfo> Info(std::string_view name) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // Every known worker's snapshot, sorted by name.
  std::vector<WorkerInfo> List() const ABSL_LOCKS_EXCLUDED(mu_);

  // Calls `listener` after every state change of every worker of this manager
  // (see WorkerEvents for order, threads and what a listener may do). Listeners
  // are also called for the stopping/stopped changes the destructor causes.
  WorkerListenerId AddListener(WorkerListener listener);
  // Once this returns, the listener neither runs nor will run.
  void RemoveListener(WorkerListenerId id);

 private:
  struct Entry;

  absl::StatusOr<std::shared_ptr<WorkerControl>> Find(
      std::string_view name) const ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status CheckNewName(const std::string& name) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Waits until `entry` has ended, joining its thread unless another caller
  // already is; returns its last snapshot.
  WorkerInfo WaitForEnd(const std::shared_ptr<Entry>& entry)
      ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<std::shared_ptr<WorkerControl>> Controls() const
      ABSL_LOCKS_EXCLUDED(mu_);

  const std::shared_ptr<WorkerEvents> events_;

  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Entry>, std::less<>> entries_
      ABSL_GUARDED_BY(mu_);
};

// The seed's spawn_workers!: starts one worker per (name, function) pair, each
// function given its own copy of `share` (any copyable handle whose copies
// share one state, such as Share<T>) and its WorkerContext, and returns the
// manager that owns them. Nothing starts when a name is empty or repeated
// (INVALID_ARGUMENT / ALREADY_EXISTS) or a function is empty
// (INVALID_ARGUMENT).
//
//   Share<int64_t> visits(0);
//   absl::StatusOr<std::unique_ptr<WorkerManager>> workers =
//       SpawnWorkers(visits, {
//       {"server", [](Share<int64_t> visits, WorkerContext& context) {
//          while (context.Checkpoint()) visits.Update([](int64_t& v) { ++v; });
//        }},
//       {"monitor", [](Share<int64_t> visits, WorkerContext& context) {
//          while (context.SleepFor(absl::Seconds(1))) Print(visits.Get());
//        }},
//   });
//   ...
//   (*workers)->RemoveAll();
template <std::copy_constructible Handle>
absl::StatusOr<std::unique_ptr<WorkerManager>> SpawnWorkers(
    const Handle& share,
    std::vector<std::pair<std::string, BasicWorkerFn<Handle>>> workers) {
  std::set<std::string_view> names;
  for (const auto& [name, fn] : workers) {
    if (name.empty()) {
      return absl::InvalidArgumentError("SpawnWorkers: a worker name is empty");
    }
    if (!fn) {
      return absl::InvalidArgumentError("SpawnWorkers: worker \"" + name +
                                        "\" has an empty function");
    }
    if (!names.insert(name).second) {
      return absl::AlreadyExistsError("SpawnWorkers: the worker name \"" +
                                      name + "\" appears more than once");
    }
  }
  auto manager = std::make_unique<WorkerManager>();
  for (auto& [name, fn] : workers) {
    absl::Status status = manager->Spawn(
        name,
        [share, fn = std::move(fn)](WorkerContext& context) -> absl::Status {
          return fn(share, context);
        });
    if (!status.ok()) return status;
  }
  return manager;
}

}  // namespace tshare::core

#endif  // TSHARE_CORE_WORKER_MANAGER_H_
