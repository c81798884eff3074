#include "core/worker_manager.h"

#include <exception>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace tshare::core {
namespace {

absl::string_view AsAbsl(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

std::string Quoted(std::string_view name) {
  return absl::StrCat("\"", AsAbsl(name), "\"");
}

absl::Status NotFound(std::string_view name) {
  return absl::NotFoundError(absl::StrCat("no worker named ", Quoted(name)));
}

bool IsActive(WorkerState state) { return !IsFinal(state); }

// The thread body of a spawned worker.
void RunWorker(const std::shared_ptr<WorkerControl>& control, WorkerFn fn) {
  control->MarkRunning();
  absl::Status status;
  {
    // Owned here so that the callable and what it captured are gone before the
    // worker is reported stopped.
    WorkerFn body = std::move(fn);
    WorkerContext context(*control);
    try {
      status = body(context);
    } catch (const std::exception& e) {
      status = absl::InternalError(absl::StrCat(
          "worker ", Quoted(control->name()), " threw: ", e.what()));
    } catch (...) {
      status = absl::InternalError(
          absl::StrCat("worker ", Quoted(control->name()),
                       " threw something that is not a std::exception"));
    }
  }
  control->Finish(std::move(status));
}

}  // namespace

std::string_view WorkerStateName(WorkerState state) {
  switch (state) {
    case WorkerState::kStarting:
      return "starting";
    case WorkerState::kRunning:
      return "running";
    case WorkerState::kPaused:
      return "paused";
    case WorkerState::kStopping:
      return "stopping";
    case WorkerState::kStopped:
      return "stopped";
    case WorkerState::kFailed:
      return "failed";
  }
  return "unknown";
}

std::ostream& operator<<(std::ostream& os, WorkerState state) {
  return os << WorkerStateName(state);
}

bool IsFinal(WorkerState state) {
  return state == WorkerState::kStopped || state == WorkerState::kFailed;
}

// -----------------------------------------------------------------------------
// WorkerEvents

WorkerListenerId WorkerEvents::AddListener(WorkerListener listener) {
  absl::MutexLock lock(&mu_);
  const WorkerListenerId id = next_id_++;
  listeners_.emplace(
      id, Registration{next_sequence_,
                       std::make_shared<WorkerListener>(std::move(listener))});
  return id;
}

void WorkerEvents::RemoveListener(WorkerListenerId id) {
  // Declared before the lock, so that the listener is destroyed after the lock
  // is released.
  std::shared_ptr<WorkerListener> removed;
  absl::MutexLock lock(&mu_);
  auto it = listeners_.find(id);
  if (it == listeners_.end()) return;
  removed = std::move(it->second.listener);
  listeners_.erase(it);
  if (calling_ == id && deliverer_ != std::this_thread::get_id()) {
    auto finished = [this, id]() {
      mu_.AssertReaderHeld();
      return calling_ != id;
    };
    mu_.Await(absl::Condition(&finished));
  }
}

void WorkerEvents::RemoveAllListeners() {
  std::vector<WorkerListenerId> ids;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, registration] : listeners_) ids.push_back(id);
  }
  for (WorkerListenerId id : ids) RemoveListener(id);
}

void WorkerEvents::Publish(WorkerInfo info) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(Event{next_sequence_++, std::move(info)});
}

void WorkerEvents::Deliver() {
  mu_.Lock();
  if (delivering_) {
    mu_.Unlock();
    return;
  }
  delivering_ = true;
  deliverer_ = std::this_thread::get_id();
  while (!queue_.empty()) {
    const Event event = std::move(queue_.front());
    queue_.pop_front();
    // Walk by id rather than by iterator: listeners may come and go while one
    // runs.
    WorkerListenerId last = 0;
    for (auto it = listeners_.upper_bound(last); it != listeners_.end();
         it = listeners_.upper_bound(last)) {
      last = it->first;
      if (it->second.first_sequence > event.sequence) continue;
      std::shared_ptr<WorkerListener> listener = it->second.listener;
      calling_ = last;
      mu_.Unlock();
      try {
        (*listener)(event.info);
      } catch (...) {
        // Nowhere to report it; it must not stop the delivery to the other
        // listeners.
      }
      // Drop this reference before clearing calling_: a RemoveListener waiting
      // for this call then holds the last one.
      listener.reset();
      mu_.Lock();
      calling_ = 0;
    }
  }
  delivering_ = false;
  deliverer_ = std::thread::id();
  mu_.Unlock();
}

// -----------------------------------------------------------------------------
// WorkerControl

WorkerControl::WorkerControl(std::string name,
                             std::shared_ptr<WorkerEvents> events,
                             bool controllable)
    : name_(std::move(name)),
      events_(std::move(events)),
      controllable_(controllable) {
  if (events_ != nullptr) {
    absl::MutexLock lock(&mu_);
    events_->Publish(InfoLocked());
  }
}

WorkerState WorkerControl::state() const {
  absl::MutexLock lock(&mu_);
  return state_;
}

WorkerInfo WorkerControl::Info() const {
  absl::MutexLock lock(&mu_);
  return InfoLocked();
}

WorkerInfo WorkerControl::InfoLocked() const {
  WorkerInfo info;
  info.name = name_;
  info.state = state_;
  info.status = status_;
  info.progress = progress_;
  info.parked = parked_ > 0 && state_ == WorkerState::kPaused;
  info.controllable = controllable_;
  info.started_at = started_at_;
  info.stopped_at = stopped_at_;
  return info;
}

void WorkerControl::SetStateLocked(WorkerState state) {
  state_ = state;
  if (IsFinal(state)) stopped_at_ = absl::Now();
  attention_.store(state_ == WorkerState::kPaused || stop_requested_,
                   std::memory_order_release);
  if (events_ != nullptr) events_->Publish(InfoLocked());
}

void WorkerControl::DeliverEvents() {
  if (events_ != nullptr) events_->Deliver();
}

absl::Status WorkerControl::Pause() { return Transition(WorkerState::kPaused); }
absl::Status WorkerControl::Resume() {
  return Transition(WorkerState::kRunning);
}
absl::Status WorkerControl::Stop() {
  return Transition(WorkerState::kStopping);
}

absl::Status WorkerControl::Transition(WorkerState to) {
  std::string_view verb;
  std::string_view allowed_from;
  switch (to) {
    case WorkerState::kPaused:
      verb = "paused";
      allowed_from = "a starting or running";
      break;
    case WorkerState::kRunning:
      verb = "resumed";
      allowed_from = "a paused";
      break;
    default:
      verb = "stopped";
      allowed_from = "a starting, running or paused";
      break;
  }
  if (!controllable_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "worker ", Quoted(name_),
        " has no WorkerContext (it was added as a bare thread), ",
        "so it cannot be ", AsAbsl(verb), "; it can only be joined"));
  }
  {
    absl::MutexLock lock(&mu_);
    bool allowed = false;
    WorkerState next = to;
    switch (to) {
      case WorkerState::kPaused:
        allowed =
            state_ == WorkerState::kStarting || state_ == WorkerState::kRunning;
        break;
      case WorkerState::kRunning:
        allowed = state_ == WorkerState::kPaused;
        // A worker paused before its thread began has not begun yet.
        if (started_at_ == absl::InfinitePast()) next = WorkerState::kStarting;
        break;
      default:
        allowed = IsActive(state_) && state_ != WorkerState::kStopping;
        break;
    }
    if (!allowed) {
      return absl::FailedPreconditionError(absl::StrCat(
          "worker ", Quoted(name_), " is ", AsAbsl(WorkerStateName(state_)),
          "; only ", AsAbsl(allowed_from), " worker can be ", AsAbsl(verb)));
    }
    if (to == WorkerState::kStopping) stop_requested_ = true;
    SetStateLocked(next);
  }
  DeliverEvents();
  return absl::OkStatus();
}

absl::Status WorkerControl::WaitUntilParked(absl::Duration timeout) {
  if (!controllable_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "worker ", Quoted(name_),
        " has no WorkerContext (it was added as a bare thread), so it never "
        "reaches a checkpoint"));
  }
  absl::MutexLock lock(&mu_);
  if (state_ != WorkerState::kPaused) {
    return absl::FailedPreconditionError(absl::StrCat(
        "worker ", Quoted(name_), " is ", AsAbsl(WorkerStateName(state_)),
        ", not paused; Pause it first"));
  }
  mu_.AwaitWithTimeout(absl::Condition(this, &WorkerControl::ParkedOrNotPaused),
                       timeout);
  if (state_ != WorkerState::kPaused) {
    return absl::FailedPreconditionError(absl::StrCat(
        "worker ", Quoted(name_), " became ", AsAbsl(WorkerStateName(state_)),
        " before it reached a checkpoint"));
  }
  if (parked_ == 0) {
    return absl::DeadlineExceededError(absl::StrCat(
        "worker ", Quoted(name_), " did not reach a checkpoint within ",
        absl::FormatDuration(timeout)));
  }
  return absl::OkStatus();
}

bool WorkerControl::WaitUntilFinished(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(this, &WorkerControl::Finished),
                       timeout);
  return IsFinal(state_);
}

void WorkerControl::MarkRunning() {
  {
    absl::MutexLock lock(&mu_);
    if (started_at_ == absl::InfinitePast()) started_at_ = absl::Now();
    if (state_ != WorkerState::kStarting) return;
    SetStateLocked(WorkerState::kRunning);
  }
  DeliverEvents();
}

void WorkerControl::Finish(absl::Status status) {
  {
    absl::MutexLock lock(&mu_);
    if (IsFinal(state_)) return;
    const bool ok = status.ok();
    status_ = std::move(status);
    stop_requested_ = true;
    SetStateLocked(ok ? WorkerState::kStopped : WorkerState::kFailed);
  }
  DeliverEvents();
}

bool WorkerControl::Checkpoint() {
  if (!attention_.load(std::memory_order_acquire)) return true;
  absl::MutexLock lock(&mu_);
  if (state_ == WorkerState::kPaused) {
    ++parked_;
    mu_.Await(absl::Condition(this, &WorkerControl::NotPaused));
    --parked_;
  }
  return !stop_requested_;
}

bool WorkerControl::Checkpoint(absl::Duration max_block) {
  if (!attention_.load(std::memory_order_acquire)) return true;
  absl::MutexLock lock(&mu_);
  if (state_ == WorkerState::kPaused) {
    ++parked_;
    mu_.AwaitWithTimeout(absl::Condition(this, &WorkerControl::NotPaused),
                         max_block);
    --parked_;
  }
  return !stop_requested_;
}

bool WorkerControl::SleepFor(absl::Duration duration) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(this, &WorkerControl::Stopping),
                       duration);
  return !stop_requested_;
}

bool WorkerControl::StopRequested() const {
  if (!attention_.load(std::memory_order_acquire)) return false;
  absl::MutexLock lock(&mu_);
  return stop_requested_;
}

bool WorkerControl::PauseRequested() const {
  absl::MutexLock lock(&mu_);
  return state_ == WorkerState::kPaused;
}

void WorkerControl::ReportProgress(std::string progress) {
  absl::MutexLock lock(&mu_);
  progress_ = std::move(progress);
}

// -----------------------------------------------------------------------------
// WorkerManager

struct WorkerManager::Entry {
  enum class Kind { kSpawned, kThread, kAttached };

  Entry(Kind kind, std::shared_ptr<WorkerControl> control)
      : kind(kind), control(std::move(control)) {}

  const Kind kind;
  const std::shared_ptr<WorkerControl> control;

  // The fields below are guarded by WorkerManager::mu_.
  // Moved out by the caller that joins it.
  std::thread thread;
  // The id of `thread`; a default id (no thread) for attached workers.
  std::thread::id thread_id;
  // A caller is joining the thread (or waiting for the attached worker).
  bool claimed = false;
  // The worker has ended and its thread is joined.
  bool ended = false;
};

WorkerManager::WorkerManager() : events_(std::make_shared<WorkerEvents>()) {}

WorkerManager::~WorkerManager() {
  RemoveAll().IgnoreError();
  // The listeners were registered through this manager; a listener that owns a
  // WorkerControl (which owns events_) would otherwise keep both alive.
  events_->RemoveAllListeners();
}

absl::Status WorkerManager::CheckNewName(const std::string& name) const {
  if (name.empty()) {
    return absl::InvalidArgumentError("a worker name must not be empty");
  }
  if (entries_.contains(name)) {
    return absl::AlreadyExistsError(
        absl::StrCat("a worker named ", Quoted(name),
                     " already exists; pick another name or Remove it first"));
  }
  return absl::OkStatus();
}

absl::Status WorkerManager::Spawn(std::string name, WorkerFn fn) {
  if (!fn) {
    return absl::InvalidArgumentError(
        absl::StrCat("worker ", Quoted(name), " was given an empty function"));
  }
  std::shared_ptr<WorkerControl> control;
  absl::Status result;
  {
    absl::MutexLock lock(&mu_);
    TSHARE_RETURN_IF_ERROR(CheckNewName(name));
    control = std::make_shared<WorkerControl>(name, events_);
    auto entry = std::make_shared<Entry>(Entry::Kind::kSpawned, control);
    try {
      entry->thread = std::thread(&RunWorker, control, std::move(fn));
      entry->thread_id = entry->thread.get_id();
      entries_.emplace(std::move(name), std::move(entry));
    } catch (const std::system_error& e) {
      result = absl::ResourceExhaustedError(
          absl::StrCat("could not start a thread for worker ",
                       Quoted(control->name()), ": ", e.what()));
    }
  }
  if (!result.ok()) {
    control->Finish(result);
    return result;
  }
  events_->Deliver();
  return absl::OkStatus();
}

absl::Status WorkerManager::Add(std::string name, std::thread&& thread) {
  if (!thread.joinable()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "worker ", Quoted(name),
        " was given a std::thread that is not joinable (no thread)"));
  }
  std::shared_ptr<WorkerControl> control;
  {
    absl::MutexLock lock(&mu_);
    TSHARE_RETURN_IF_ERROR(CheckNewName(name));
    control =
        std::make_shared<WorkerControl>(name, events_, /*controllable=*/false);
    auto entry = std::make_shared<Entry>(Entry::Kind::kThread, control);
    entry->thread_id = thread.get_id();
    entry->thread = std::move(thread);
    entries_.emplace(std::move(name), std::move(entry));
  }
  control->MarkRunning();
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<WorkerControl>> WorkerManager::Attach(
    std::string name) {
  std::shared_ptr<WorkerControl> control;
  {
    absl::MutexLock lock(&mu_);
    TSHARE_RETURN_IF_ERROR(CheckNewName(name));
    control = std::make_shared<WorkerControl>(name, events_);
    entries_.emplace(std::move(name),
                     std::make_shared<Entry>(Entry::Kind::kAttached, control));
  }
  events_->Deliver();
  return control;
}

absl::StatusOr<std::shared_ptr<WorkerControl>> WorkerManager::Find(
    std::string_view name) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(name);
  if (it == entries_.end()) return NotFound(name);
  return it->second->control;
}

absl::Status WorkerManager::Pause(std::string_view name) {
  TSHARE_ASSIGN_OR_RETURN(std::shared_ptr<WorkerControl> control, Find(name));
  return control->Pause();
}

absl::Status WorkerManager::Resume(std::string_view name) {
  TSHARE_ASSIGN_OR_RETURN(std::shared_ptr<WorkerControl> control, Find(name));
  return control->Resume();
}

absl::Status WorkerManager::Stop(std::string_view name) {
  TSHARE_ASSIGN_OR_RETURN(std::shared_ptr<WorkerControl> control, Find(name));
  return control->Stop();
}

absl::Status WorkerManager::WaitUntilParked(std::string_view name,
                                            absl::Duration timeout) {
  TSHARE_ASSIGN_OR_RETURN(std::shared_ptr<WorkerControl> control, Find(name));
  return control->WaitUntilParked(timeout);
}

WorkerInfo WorkerManager::WaitForEnd(const std::shared_ptr<Entry>& entry) {
  std::thread thread;
  bool mine = false;
  {
    absl::MutexLock lock(&mu_);
    if (!entry->claimed) {
      entry->claimed = true;
      mine = true;
      thread = std::move(entry->thread);
    }
  }
  if (mine) {
    switch (entry->kind) {
      case Entry::Kind::kSpawned:
        thread.join();
        break;
      case Entry::Kind::kThread:
        thread.join();
        entry->control->Finish(absl::OkStatus());
        break;
      case Entry::Kind::kAttached:
        entry->control->WaitUntilFinished(absl::InfiniteDuration());
        break;
    }
    absl::MutexLock lock(&mu_);
    entry->ended = true;
  } else {
    absl::MutexLock lock(&mu_, absl::Condition(&entry->ended));
  }
  return entry->control->Info();
}

absl::StatusOr<WorkerInfo> WorkerManager::Remove(std::string_view name) {
  std::shared_ptr<Entry> entry;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(name);
    if (it == entries_.end()) return NotFound(name);
    entry = it->second;
    if (entry->thread_id == std::this_thread::get_id()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "worker ", Quoted(name), " cannot remove itself (it would wait for ",
          "its own end); return from its function instead"));
    }
  }
  // Stop fails harmlessly when the worker is already stopping or finished.
  if (entry->control->controllable()) entry->control->Stop().IgnoreError();
  WorkerInfo info = WaitForEnd(entry);
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(name);
  if (it != entries_.end() && it->second == entry) entries_.erase(it);
  return info;
}

absl::StatusOr<std::vector<WorkerInfo>> WorkerManager::RemoveAll() {
  std::vector<std::shared_ptr<Entry>> entries;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, entry] : entries_) {
      if (entry->thread_id == std::this_thread::get_id()) {
        return absl::FailedPreconditionError(
            absl::StrCat("RemoveAll called from worker ", Quoted(name),
                         ", which would wait for its own end"));
      }
      entries.push_back(entry);
    }
  }
  // Ask all first, so that they wind down together rather than one after
  // another.
  for (const auto& entry : entries) {
    if (entry->control->controllable()) entry->control->Stop().IgnoreError();
  }
  std::vector<WorkerInfo> infos;
  infos.reserve(entries.size());
  for (const auto& entry : entries) infos.push_back(WaitForEnd(entry));
  absl::MutexLock lock(&mu_);
  for (const auto& entry : entries) {
    auto it = entries_.find(entry->control->name());
    if (it != entries_.end() && it->second == entry) entries_.erase(it);
  }
  return infos;
}

absl::Status WorkerManager::JoinAll() {
  while (true) {
    std::vector<std::shared_ptr<Entry>> pending;
    {
      absl::MutexLock lock(&mu_);
      for (const auto& [name, entry] : entries_) {
        if (entry->thread_id == std::this_thread::get_id()) {
          return absl::FailedPreconditionError(
              absl::StrCat("JoinAll called from worker ", Quoted(name),
                           ", which would wait for its own end"));
        }
        if (!entry->ended) pending.push_back(entry);
      }
    }
    if (pending.empty()) break;
    for (const auto& entry : pending) WaitForEnd(entry);
  }
  const WorkerInfo* first_failure = nullptr;
  const std::vector<WorkerInfo> infos = List();
  for (const WorkerInfo& info : infos) {
    if (info.state != WorkerState::kFailed) continue;
    if (first_failure == nullptr ||
        info.stopped_at < first_failure->stopped_at) {
      first_failure = &info;
    }
  }
  if (first_failure == nullptr) return absl::OkStatus();
  return absl::Status(
      first_failure->status.code(),
      absl::StrCat("worker ", Quoted(first_failure->name),
                   " failed: ", first_failure->status.message()));
}

std::vector<std::shared_ptr<WorkerControl>> WorkerManager::Controls() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::shared_ptr<WorkerControl>> controls;
  controls.reserve(entries_.size());
  for (const auto& [name, entry] : entries_) controls.push_back(entry->control);
  return controls;
}

size_t WorkerManager::ActiveWorkers() const {
  size_t active = 0;
  for (const auto& control : Controls()) {
    if (IsActive(control->state())) ++active;
  }
  return active;
}

std::vector<std::string> WorkerManager::Names() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> names;
  names.reserve(entries_.size());
  for (const auto& [name, entry] : entries_) names.push_back(name);
  return names;
}

absl::StatusOr<bool> WorkerManager::IsPaused(std::string_view name) const {
  TSHARE_ASSIGN_OR_RETURN(std::shared_ptr<WorkerControl> control, Find(name));
  return control->state() == WorkerState::kPaused;
}

absl::StatusOr<WorkerState> WorkerManager::State(std::string_view name) const {
  TSHARE_ASSIGN_OR_RETURN(std::shared_ptr<WorkerControl> control, Find(name));
  return control->state();
}

absl::StatusOr<WorkerInfo> WorkerManager::Info(std::string_view name) const {
  TSHARE_ASSIGN_OR_RETURN(std::shared_ptr<WorkerControl> control, Find(name));
  return control->Info();
}

std::vector<WorkerInfo> WorkerManager::List() const {
  std::vector<WorkerInfo> infos;
  for (const auto& control : Controls()) infos.push_back(control->Info());
  return infos;
}

WorkerListenerId WorkerManager::AddListener(WorkerListener listener) {
  return events_->AddListener(std::move(listener));
}

void WorkerManager::RemoveListener(WorkerListenerId id) {
  events_->RemoveListener(id);
}

}  // namespace tshare::core
