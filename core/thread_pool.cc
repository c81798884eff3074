#include "core/thread_pool.h"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>

#include "absl/base/attributes.h"
#include "absl/base/internal/cycleclock.h"
#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "core/status_macros.h"

namespace tshare::core {

const char* PriorityName(Priority priority) {
  switch (priority) {
    case Priority::kLow:
      return "low";
    case Priority::kNormal:
      return "normal";
    case Priority::kHigh:
      return "high";
    case Priority::kCritical:
      return "critical";
  }
  return "unknown";
}

namespace internal {
namespace {

ThreadPoolOptions Normalize(ThreadPoolOptions options) {
  options.min_threads = std::max(options.min_threads, 0);
  if (options.max_threads <= 0) {
    options.max_threads = static_cast<int>(std::thread::hardware_concurrency());
  }
  options.max_threads = std::max({options.max_threads, options.min_threads, 1});
  options.max_queue = std::max<size_t>(options.max_queue, 1);
  if (options.idle_timeout < absl::ZeroDuration())
    options.idle_timeout = absl::ZeroDuration();
  return options;
}

// "<name>-<n>" in at most 15 characters (Linux's limit), dropping the end of
// `name` first.
std::string WorkerThreadName(const std::string& name, uint64_t serial) {
  constexpr size_t kMaxLen = 15;
  const std::string suffix = absl::StrCat("-", serial);
  if (suffix.size() >= kMaxLen) return suffix.substr(suffix.size() - kMaxLen);
  return absl::StrCat(name.substr(0, kMaxLen - suffix.size()), suffix);
}

// Runs `task`, without any lock, and returns whether it succeeded. The caller
// destroys the task, also without a lock.
bool RunTaskUnguarded(QueuedTask& task) {
  if (task.index() == 0) {
    std::move(std::get<0>(task))();
    return true;
  }
  return std::move(std::get<PoolTask>(task))(absl::OkStatus());
}

// RunTaskUnguarded, with an escaping exception counted as a failure.
bool RunTask(QueuedTask& task) {
#ifdef ABSL_HAVE_EXCEPTIONS
  try {
    return RunTaskUnguarded(task);
  } catch (...) {
    return false;
  }
#else
  return RunTaskUnguarded(task);
#endif
}

// Enqueue's refusals, kept out of line so that the accepting path stays small.
ABSL_ATTRIBUTE_NOINLINE absl::Status ShutDownError(const std::string& name) {
  return absl::FailedPreconditionError(absl::StrFormat(
      "thread pool '%s' is shut down and accepts no new tasks", name));
}
ABSL_ATTRIBUTE_NOINLINE absl::Status QueueFullError(const std::string& name,
                                                    size_t queued,
                                                    size_t max_queue) {
  return absl::ResourceExhaustedError(absl::StrFormat(
      "thread pool '%s' queue is full: %d tasks queued (max_queue=%d); retry "
      "later or raise max_queue",
      name, queued, max_queue));
}

// Drops `task` unrun: a Submit task completes its future with `status`.
void CancelTask(QueuedTask task, const absl::Status& status) {
  if (task.index() == 1) std::move(std::get<PoolTask>(task))(status);
}

// Task wait and run times are measured in ticks of Abseil's cycle clock (the
// counter behind Abseil's own mutex profiling; on x86 the TSC, which Linux
// keeps in step across CPUs whenever it uses it as its clock source) and turned
// into durations only when Stats() or on_task_start asks. Two readings per
// task: one in Enqueue, one as the task ends (which is also the next task's
// start). A reading costs a few nanoseconds where absl::Now() and
// clock_gettime() cost tens: on a 2-core VM the clock was 40% of the pool's
// cost per empty task. CycleClock is an internal Abseil API, stable in the
// Abseil release this project pins; std::chrono::steady_clock is the drop-in
// replacement should it ever go. A negative difference (clocks of two CPUs a
// little apart) counts as zero.
int64_t NowTicks() { return absl::base_internal::CycleClock::Now(); }

// Nanoseconds per tick of NowTicks().
double NanosPerTick() {
  static const double nanos_per_tick =
      1e9 / absl::base_internal::CycleClock::Frequency();
  return nanos_per_tick;
}

absl::Duration TicksToDuration(int64_t ticks) {
  return absl::Nanoseconds(
      static_cast<int64_t>(static_cast<double>(ticks) * NanosPerTick()));
}

// The pool's locks. A std::mutex rather than an absl::Mutex: a submitter takes
// one per task, and so does a worker, and under contention absl::Mutex spins
// where a futex sleeps (half the pool's cost per empty task on a 2-core
// machine), and Debian's Abseil also runs its deadlock detector on every
// operation. Annotated for clang's -Wthread-safety like absl::Mutex.
class ABSL_LOCKABLE PoolMutex final {
 public:
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }

  // Waits on `cv` with this lock held by the caller: released while waiting,
  // held again on return (also on a spurious wake-up).
  void Wait(std::condition_variable& cv) {
    std::unique_lock<std::mutex> lock(mu_, std::adopt_lock);
    cv.wait(lock);
    lock.release();
  }
  // Wait, until `deadline` at the latest. Returns true if the deadline passed.
  bool WaitUntil(std::condition_variable& cv,
                 std::chrono::steady_clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(mu_, std::adopt_lock);
    const bool timed_out =
        cv.wait_until(lock, deadline) == std::cv_status::timeout;
    lock.release();
    return timed_out;
  }

 private:
  std::mutex mu_;
};

class ABSL_SCOPED_LOCKABLE PoolLock final {
 public:
  explicit PoolLock(PoolMutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->Lock();
  }
  ~PoolLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  PoolLock(const PoolLock&) = delete;
  PoolLock& operator=(const PoolLock&) = delete;

 private:
  PoolMutex* const mu_;
};

}  // namespace

class ThreadPoolState final
    : public std::enable_shared_from_this<ThreadPoolState> {
 public:
  explicit ThreadPoolState(ThreadPoolOptions options)
      : options_(Normalize(std::move(options))) {}
  ThreadPoolState(const ThreadPoolState&) = delete;
  ThreadPoolState& operator=(const ThreadPoolState&) = delete;

  // All threads have been joined or detached (Shutdown), so nothing is left to
  // end here.
  ~ThreadPoolState() = default;

  void Start() ABSL_LOCKS_EXCLUDED(mu_) {
    PoolLock lock(&mu_);
    for (int i = 0; i < options_.min_threads; ++i) {
      if (!SpawnLocked().ok()) break;  // Enqueue tries again when work arrives.
    }
    RefreshFastPathLocked();
  }

  const ThreadPoolOptions& options() const { return options_; }

  // T is QueuedTask (from Submit) or absl::AnyInvocable<void() &&> (from
  // Execute, stored as it is).
  template <typename T>
  absl::Status Enqueue(T&& task, Priority priority) ABSL_LOCKS_EXCLUDED(mu_);
  ThreadPoolStats Stats() const ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status SetAffinity(const std::vector<int>& cpus)
      ABSL_LOCKS_EXCLUDED(mu_);
  void Shutdown(bool cancel_queued) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Queued {
    template <typename T>
    Queued(T&& task, int64_t enqueued)
        : task(std::forward<T>(task)), enqueued(enqueued) {}

    QueuedTask task;
    // NowTicks() when Enqueue was called.
    int64_t enqueued;
  };

  // A worker thread asleep for lack of work. It lives on that thread's stack
  // and sits in idle_ while it sleeps; whoever removes it from idle_ (Enqueue
  // or Shutdown) sets `woken` and signals `cv` before releasing mu_, so the
  // waiter is never touched after it may have left.
  //
  // Each sleeper has its own condition variable (rather than all sharing one)
  // so that a wake-up is exactly one notify to one chosen thread, and only when
  // a thread is asleep and no other wake-up is already on its way to the queued
  // work: a pool that is busy, or already waking a thread, pays nothing for it.
  struct Sleeper {
    std::condition_variable cv;
    bool woken = false;  // guarded by the pool's mu_
  };

  static void WorkerMain(std::shared_ptr<ThreadPoolState> self, uint64_t serial,
                         std::string thread_name);
  void WorkerLoop(uint64_t serial) ABSL_LOCKS_EXCLUDED(mu_);
  // Sleeps until Enqueue or Shutdown wakes this thread, or, above min_threads,
  // until idle_timeout passes. Returns false if the thread should exit (it
  // timed out above min_threads with nothing to do).
  bool SleepLocked(Sleeper* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Wakes the most recently idle thread (its cache is the warmest).
  // REQUIRES: !idle_.empty().
  void WakeOneLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Starts one worker thread. RESOURCE_EXHAUSTED if the system refuses a new
  // thread.
  absl::Status SpawnLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves the oldest task of the highest non-empty priority to *task and counts
  // its wait until `now` (ticks), which it stores with the priority in
  // *started. REQUIRES: ready_ > 0, *task empty.
  struct Started {
    Priority priority = Priority::kNormal;
    absl::Duration wait;
  };
  void PopLocked(int64_t now, std::optional<QueuedTask>* task, Started* started)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The highest priority with a ready task. REQUIRES: ready_ > 0.
  int TopReadyLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    int p = kNumPriorities - 1;
    while (p > 0 && queues_[p].empty()) --p;
    return p;
  }
  // Calls options_.on_task_start, if set. Called without mu_.
  void NotifyStarted(const Started& started) const {
    if (options_.on_task_start) {
      options_.on_task_start(started.priority, started.wait);
    }
  }
  void RecordRunLocked(bool ok, int64_t run_ticks)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Joins `threads`, counted in joiners_ so that Shutdown returns only after
  // every join.
  void JoinReaped(std::vector<std::thread> threads) ABSL_LOCKS_EXCLUDED(mu_);

  // Accepts one more task into the queues, or returns why not (counted as
  // rejected).
  absl::Status AdmitLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(inbox_mu_);
  // Moves every task in the inbox to the ready queues, after those already
  // there.
  void DrainInboxLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_)
      ABSL_LOCKS_EXCLUDED(inbox_mu_);
  // The part of DrainInboxLocked under inbox_mu_: the inbox's tasks move to
  // spare_; MoveSpareLocked then moves them on to queues_.
  void TakeInboxLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_, inbox_mu_);
  void MoveSpareLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Counts `n` tasks as gone from the queues.
  void CountRemovedLocked(uint64_t n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    removed_.store(removed_.load(std::memory_order_relaxed) + n,
                   std::memory_order_relaxed);
  }
  // Sets need_mu_ from idle_, threads_ and exited_; call after changing one.
  void RefreshFastPathLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_)
      ABSL_LOCKS_EXCLUDED(inbox_mu_) {
    PoolLock lock(&inbox_mu_);
    RefreshFastPathBothLocked();
  }
  void RefreshFastPathBothLocked()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_, inbox_mu_) {
    need_mu_ =
        !idle_.empty() || threads_ < options_.max_threads || !exited_.empty();
  }

  bool NoReapers() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return joiners_ == 0;
  }

  // Immutable.
  const ThreadPoolOptions options_;

  // Two locks. mu_ guards the ready queues, the threads and the figures. A
  // submitter takes only inbox_mu_, appends the task to the inbox and returns,
  // unless a thread must be woken or may be started (need_mu_). A worker takes
  // inbox_mu_ only to move the whole inbox into the ready queues: when nothing
  // is ready, or when the inbox holds a priority above every ready task. So
  // under a steady stream of tasks a submitter and a busy worker neither wait
  // for one lock per task nor write the same cache line per task, which on a
  // 2-core machine cost more than the rest of a task's bookkeeping. Each lock
  // and what it guards start a cache line of their own. Lock order: mu_, then
  // inbox_mu_.
  alignas(64) mutable PoolMutex inbox_mu_ ABSL_ACQUIRED_AFTER(mu_);
  // Accepted tasks not yet moved to queues_, per priority, oldest first.
  std::vector<Queued> inbox_[kNumPriorities] ABSL_GUARDED_BY(inbox_mu_);
  // True when an Enqueue must take mu_: a thread sleeps, threads_ is below
  // max_threads, or ended threads wait to be joined. Kept by
  // RefreshFastPathLocked.
  bool need_mu_ ABSL_GUARDED_BY(inbox_mu_) = true;
  // False once Shutdown/ShutdownNow began: Enqueue refuses work.
  bool accepting_ ABSL_GUARDED_BY(inbox_mu_) = true;
  // Tasks accepted by Enqueue, and (removed_seen_) the last value of removed_
  // an Enqueue read: submitted_ - removed_seen_ bounds the queued tasks from
  // above, so removed_ is read only when that bound reaches max_queue.
  uint64_t submitted_ ABSL_GUARDED_BY(inbox_mu_) = 0;
  uint64_t removed_seen_ ABSL_GUARDED_BY(inbox_mu_) = 0;
  uint64_t rejected_ ABSL_GUARDED_BY(inbox_mu_) = 0;

  // Bit p is set while inbox_[p] holds a task. Written under inbox_mu_ (by a
  // submitter only when it adds the first task of a priority); read by workers
  // without it, to decide whether to take inbox_mu_. (A stale zero is caught
  // under inbox_mu_ before any thread sleeps, see SleepLocked.)
  alignas(64) std::atomic<unsigned> inbox_priorities_{0};

  alignas(64) mutable PoolMutex mu_;
  // Tasks that left the queues to start or to be cancelled. Written under mu_
  // (a plain load and store suffice); read by Enqueue.
  std::atomic<uint64_t> removed_{0};
  // Cleared vectors that keep their capacity, swapped with inbox_ on each move,
  // so that appending to the inbox does not allocate once it has grown.
  std::vector<Queued> spare_[kNumPriorities] ABSL_GUARDED_BY(mu_);
  // Signalled (under mu_) when threads_, shutting_down_workers_ or joiners_
  // changes: what Shutdown waits for.
  std::condition_variable changed_;
  // Workers exit once the queue is empty.
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Tasks ready to start, per priority, oldest first; ready_ counts them all.
  std::deque<Queued> queues_[kNumPriorities] ABSL_GUARDED_BY(mu_);
  size_t ready_ ABSL_GUARDED_BY(mu_) = 0;
  // Sleeping workers, most recently idle last.
  std::vector<Sleeper*> idle_ ABSL_GUARDED_BY(mu_);
  // Workers woken (taken out of idle_) that have not yet taken mu_ again: the
  // queued tasks they will take need no further wake-up.
  size_t waking_ ABSL_GUARDED_BY(mu_) = 0;
  // Live workers by serial number; a worker that exits moves its handle to
  // exited_.
  absl::flat_hash_map<uint64_t, std::thread> workers_ ABSL_GUARDED_BY(mu_);
  // Ended (or ending) threads not joined yet.
  std::vector<std::thread> exited_ ABSL_GUARDED_BY(mu_);
  // Callers joining threads they took from exited_.
  int joiners_ ABSL_GUARDED_BY(mu_) = 0;
  // Worker threads inside Shutdown called from their own task: they wait for
  // the other threads only.
  int shutting_down_workers_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_serial_ ABSL_GUARDED_BY(mu_) = 0;
  int threads_ ABSL_GUARDED_BY(mu_) = 0;
  int active_ ABSL_GUARDED_BY(mu_) = 0;
  // Set by SetAffinity; applied to each thread as it starts.
  std::optional<cpu_set_t> affinity_ ABSL_GUARDED_BY(mu_);

  uint64_t started_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t completed_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t failed_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t cancelled_ ABSL_GUARDED_BY(mu_) = 0;
  // In NowTicks() ticks: the per-task bookkeeping under mu_ is a few integer
  // additions.
  int64_t total_wait_ticks_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t max_wait_ticks_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t total_run_ticks_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t max_run_ticks_ ABSL_GUARDED_BY(mu_) = 0;
};

namespace {
// The pool whose worker the current thread is (nullptr elsewhere), and its
// serial number.
thread_local const ThreadPoolState* current_pool = nullptr;
thread_local uint64_t current_serial = 0;
}  // namespace

absl::Status ThreadPoolState::SpawnLocked() {
  const uint64_t serial = next_serial_++;
  std::thread thread;
#ifdef ABSL_HAVE_EXCEPTIONS
  try {
    thread = std::thread(&ThreadPoolState::WorkerMain, shared_from_this(),
                         serial, WorkerThreadName(options_.name, serial));
  } catch (const std::system_error& e) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "thread pool '%s' could not start a thread (%d running): %s",
        options_.name, threads_, e.what()));
  }
#else
  thread = std::thread(&ThreadPoolState::WorkerMain, shared_from_this(), serial,
                       WorkerThreadName(options_.name, serial));
#endif
  if (affinity_.has_value()) {
    // The thread cannot run a task before it gets mu_, which this thread holds.
    pthread_setaffinity_np(thread.native_handle(), sizeof(cpu_set_t),
                           &*affinity_);
  }
  workers_.emplace(serial, std::move(thread));
  ++threads_;
  return absl::OkStatus();
}

void ThreadPoolState::WorkerMain(std::shared_ptr<ThreadPoolState> self,
                                 uint64_t serial, std::string thread_name) {
  pthread_setname_np(pthread_self(), thread_name.c_str());
  current_pool = self.get();
  current_serial = serial;
  self->WorkerLoop(serial);
  current_pool = nullptr;
  // `self` may be the last reference (the pool was destroyed from this thread's
  // task).
}

void ThreadPoolState::WorkerLoop(uint64_t serial) {
  Sleeper self;
  mu_.Lock();
  // When the next task's wait ends and its run begins: the end of the previous
  // task, or the wake-up. (So a task's run includes taking mu_ to fetch it, and
  // one clock reading per task serves both figures.)
  int64_t now = NowTicks();
  while (true) {
    // FIFO holds either way: what the inbox holds of a ready priority is newer
    // than what is ready.
    const unsigned inbox = inbox_priorities_.load(std::memory_order_relaxed);
    if (inbox != 0 && (ready_ == 0 || inbox >> (TopReadyLocked() + 1) != 0)) {
      DrainInboxLocked();
    }
    if (ready_ == 0) {
      if (stopping_) break;
      if (!SleepLocked(&self)) break;  // idle for idle_timeout above min
      now = NowTicks();
      continue;
    }
    bool ok;
    {
      Started started;
      std::optional<QueuedTask> task;
      PopLocked(now, &task, &started);
      ++active_;
      mu_.Unlock();
      NotifyStarted(started);
      ok = RunTask(*task);
    }  // the task is destroyed here, without the lock
    const int64_t end = NowTicks();
    mu_.Lock();
    --active_;
    RecordRunLocked(ok, end - now);
    now = end;
  }
  --threads_;
  changed_.notify_all();
  // Absent if Shutdown, called from this thread's task, detached this thread
  // already.
  if (auto it = workers_.find(serial); it != workers_.end()) {
    exited_.push_back(std::move(it->second));
    workers_.erase(it);
  }
  RefreshFastPathLocked();
  mu_.Unlock();
}

bool ThreadPoolState::SleepLocked(Sleeper* self) {
  bool inbox_had_work;
  {
    // Under inbox_mu_, so that a task appended before this is found here, and
    // one appended after finds need_mu_ set and wakes this thread.
    PoolLock lock(&inbox_mu_);
    inbox_had_work = inbox_priorities_.load(std::memory_order_relaxed) != 0;
    if (inbox_had_work) {
      TakeInboxLocked();
    } else {
      self->woken = false;
      idle_.push_back(self);
      RefreshFastPathBothLocked();
    }
  }
  if (inbox_had_work) {
    MoveSpareLocked();
    return true;
  }
  // A timeout past ten years is as good as none (and keeps the deadline
  // arithmetic from overflowing).
  if (threads_ > options_.min_threads &&
      options_.idle_timeout < absl::Hours(24 * 365 * 10)) {
    const auto deadline = std::chrono::steady_clock::now() +
                          absl::ToChronoNanoseconds(options_.idle_timeout);
    while (!self->woken && !mu_.WaitUntil(self->cv, deadline)) {
    }
  } else {
    while (!self->woken) mu_.Wait(self->cv);
  }
  if (self->woken) {
    --waking_;
    return true;
  }
  // Timed out with nobody waking this thread: leave idle_. need_mu_ stays set
  // (threads_ < max_threads from here on if this thread exits).
  idle_.erase(std::find(idle_.begin(), idle_.end(), self));
  DrainInboxLocked();
  return ready_ > 0 || stopping_ || threads_ <= options_.min_threads;
}

void ThreadPoolState::WakeOneLocked() {
  Sleeper* sleeper = idle_.back();
  idle_.pop_back();
  sleeper->woken = true;
  ++waking_;
  if (idle_.empty()) RefreshFastPathLocked();
  // Under mu_: the sleeper (on its thread's stack) cannot leave before mu_ is
  // released.
  sleeper->cv.notify_one();
}

void ThreadPoolState::PopLocked(int64_t now, std::optional<QueuedTask>* task,
                                Started* started) {
  for (int p = kNumPriorities - 1; p >= 0; --p) {
    if (queues_[p].empty()) continue;
    Queued& front = queues_[p].front();
    task->emplace(std::move(front.task));
    const int64_t wait = std::max<int64_t>(now - front.enqueued, 0);
    queues_[p].pop_front();
    --ready_;
    CountRemovedLocked(1);
    started->priority = static_cast<Priority>(p);
    if (options_.on_task_start) started->wait = TicksToDuration(wait);
    ++started_;
    total_wait_ticks_ += wait;
    max_wait_ticks_ = std::max(max_wait_ticks_, wait);
    return;
  }
}

void ThreadPoolState::RecordRunLocked(bool ok, int64_t run_ticks) {
  ++completed_;
  if (!ok) ++failed_;
  run_ticks = std::max<int64_t>(run_ticks, 0);
  total_run_ticks_ += run_ticks;
  max_run_ticks_ = std::max(max_run_ticks_, run_ticks);
}

template <typename T>
absl::Status ThreadPoolState::Enqueue(T&& task, Priority priority) {
  bool empty;
  if constexpr (std::is_same_v<std::decay_t<T>, QueuedTask>) {
    empty = std::visit([](const auto& f) { return f == nullptr; }, task);
  } else {
    empty = task == nullptr;
  }
  if (empty)
    return absl::InvalidArgumentError(
        "ThreadPool::Execute/Submit: the task is empty");
  const int p = static_cast<int>(priority);
  if (p < 0 || p >= kNumPriorities) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ThreadPool: priority ", p, " is not a tshare::core::Priority"));
  }
  const int64_t enqueued = NowTicks();
  {
    PoolLock lock(&inbox_mu_);
    if (!need_mu_) {
      TSHARE_RETURN_IF_ERROR(AdmitLocked());
      inbox_[p].emplace_back(std::forward<T>(task), enqueued);
      const unsigned bits = inbox_priorities_.load(std::memory_order_relaxed);
      if ((bits & (1u << p)) == 0) {
        inbox_priorities_.store(bits | (1u << p), std::memory_order_relaxed);
      }
      return absl::OkStatus();
    }
  }
  std::vector<std::thread> reaped;
  // Destroyed after the locks are released: destroying it may complete a
  // future.
  std::optional<QueuedTask> refused;
  absl::Status status;
  {
    PoolLock lock(&mu_);
    {
      PoolLock inbox_lock(&inbox_mu_);
      TSHARE_RETURN_IF_ERROR(AdmitLocked());
      // Older tasks go first.
      TakeInboxLocked();
    }
    MoveSpareLocked();
    queues_[p].emplace_back(std::forward<T>(task), enqueued);
    ++ready_;
    // Wake a sleeping thread unless enough wake-ups are already under way for
    // what is queued. A thread that is running a task comes back for more by
    // itself, so a steady stream of work wakes nobody.
    if (!idle_.empty() && ready_ > waking_) WakeOneLocked();
    // Grow when more tasks wait than there are threads free to take them.
    if (ready_ > static_cast<size_t>(threads_ - active_) &&
        threads_ < options_.max_threads) {
      status = SpawnLocked();
      if (!status.ok() && threads_ == 0) {
        // No thread would ever run it: give it back.
        refused.emplace(std::move(queues_[p].back().task));
        queues_[p].pop_back();
        --ready_;
        // Never accepted after all: not counted as removed either.
        PoolLock inbox_lock(&inbox_mu_);
        --submitted_;
        ++rejected_;
      } else {
        status = absl::OkStatus();
      }
    }
    if (!exited_.empty()) {
      reaped.swap(exited_);
      ++joiners_;
    }
    RefreshFastPathLocked();
  }
  if (!reaped.empty()) JoinReaped(std::move(reaped));
  return status;
}

absl::Status ThreadPoolState::AdmitLocked() {
  if (!accepting_) {
    ++rejected_;
    return ShutDownError(options_.name);
  }
  if (submitted_ - removed_seen_ >= options_.max_queue) {
    removed_seen_ = removed_.load(std::memory_order_relaxed);
    const uint64_t queued = submitted_ - removed_seen_;
    if (queued >= options_.max_queue) {
      ++rejected_;
      return QueueFullError(options_.name, queued, options_.max_queue);
    }
  }
  ++submitted_;
  return absl::OkStatus();
}

void ThreadPoolState::DrainInboxLocked() {
  {
    PoolLock lock(&inbox_mu_);
    TakeInboxLocked();
  }
  MoveSpareLocked();
}

void ThreadPoolState::TakeInboxLocked() {
  if (inbox_priorities_.load(std::memory_order_relaxed) == 0) return;
  for (int p = 0; p < kNumPriorities; ++p) inbox_[p].swap(spare_[p]);
  inbox_priorities_.store(0, std::memory_order_relaxed);
}

void ThreadPoolState::MoveSpareLocked() {
  for (int p = 0; p < kNumPriorities; ++p) {
    std::vector<Queued>& taken = spare_[p];
    if (taken.empty()) continue;
    for (Queued& queued : taken) queues_[p].push_back(std::move(queued));
    ready_ += taken.size();
    taken.clear();
  }
}

void ThreadPoolState::JoinReaped(std::vector<std::thread> threads) {
  for (std::thread& t : threads) t.join();
  PoolLock lock(&mu_);
  --joiners_;
  changed_.notify_all();
}

void ThreadPoolState::Shutdown(bool cancel_queued) {
  const bool on_own_thread = current_pool == this;
  std::vector<QueuedTask> cancelled;
  {
    PoolLock lock(&mu_);
    {
      PoolLock inbox_lock(&inbox_mu_);
      accepting_ = false;
      TakeInboxLocked();
    }
    MoveSpareLocked();
    stopping_ = true;
    if (cancel_queued) {
      for (std::deque<Queued>& queue : queues_) {
        for (Queued& queued : queue)
          cancelled.push_back(std::move(queued.task));
        queue.clear();
      }
      ready_ = 0;
      CountRemovedLocked(cancelled.size());
      cancelled_ += cancelled.size();
    }
    // Sleeping threads wake to run what is left, then exit.
    while (!idle_.empty()) WakeOneLocked();
  }
  if (!cancelled.empty()) {
    const absl::Status status = absl::CancelledError(absl::StrFormat(
        "thread pool '%s' was shut down (ShutdownNow) before the task started",
        options_.name));
    for (QueuedTask& task : cancelled) CancelTask(std::move(task), status);
    cancelled.clear();
  }
  if (on_own_thread) {
    // This thread is busy in a task of this pool: help run what is queued, or a
    // pool whose only thread is this one would wait forever.
    mu_.Lock();
    while (ready_ > 0) {
      const int64_t start = NowTicks();
      bool ok;
      {
        Started started;
        std::optional<QueuedTask> task;
        PopLocked(start, &task, &started);
        mu_.Unlock();
        NotifyStarted(started);
        ok = RunTask(*task);
      }
      const int64_t end = NowTicks();
      mu_.Lock();
      RecordRunLocked(ok, end - start);
    }
    mu_.Unlock();
  }
  std::vector<std::thread> to_join;
  {
    PoolLock lock(&mu_);
    if (on_own_thread) {
      ++shutting_down_workers_;
      changed_.notify_all();
    }
    // Called from outside the pool: every thread has ended. From a pool task:
    // every thread but those that wait here too, in their own task.
    auto others_ended = [this,
                         on_own_thread]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return threads_ <= (on_own_thread ? shutting_down_workers_ : 0);
    };
    while (!others_ended()) mu_.Wait(changed_);
    if (on_own_thread) --shutting_down_workers_;
    to_join.swap(exited_);
    if (on_own_thread) {
      // This thread ends by itself once its task returns; nobody will join it.
      if (auto it = workers_.find(current_serial); it != workers_.end()) {
        it->second.detach();
        workers_.erase(it);
      }
    }
    ++joiners_;
  }
  JoinReaped(std::move(to_join));
  PoolLock lock(&mu_);
  while (!NoReapers()) mu_.Wait(changed_);
}

ThreadPoolStats ThreadPoolState::Stats() const {
  PoolLock lock(&mu_);
  ThreadPoolStats stats;
  {
    PoolLock inbox_lock(&inbox_mu_);
    for (int p = 0; p < kNumPriorities; ++p) {
      stats.queued[p] = queues_[p].size() + inbox_[p].size();
    }
    stats.submitted = submitted_;
    stats.rejected = rejected_;
  }
  for (size_t queued : stats.queued) stats.queued_total += queued;
  stats.threads = threads_;
  stats.active = active_;
  stats.completed = completed_;
  stats.failed = failed_;
  stats.cancelled = cancelled_;
  if (started_ > 0) {
    stats.mean_wait =
        TicksToDuration(total_wait_ticks_ / static_cast<int64_t>(started_));
  }
  stats.max_wait = TicksToDuration(max_wait_ticks_);
  if (completed_ > 0) {
    stats.mean_run =
        TicksToDuration(total_run_ticks_ / static_cast<int64_t>(completed_));
  }
  stats.max_run = TicksToDuration(max_run_ticks_);
  return stats;
}

absl::Status ThreadPoolState::SetAffinity(const std::vector<int>& cpus) {
  if (cpus.empty()) {
    return absl::InvalidArgumentError(
        "ThreadPool::SetAffinity: the CPU list is empty");
  }
  const long configured = sysconf(_SC_NPROCESSORS_CONF);
  const long limit =
      std::min<long>(configured > 0 ? configured : 1, CPU_SETSIZE);
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int cpu : cpus) {
    if (cpu < 0 || cpu >= limit) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "ThreadPool::SetAffinity: CPU %d is out of range; this machine has "
          "CPUs 0..%d",
          cpu, limit - 1));
    }
    CPU_SET(cpu, &set);
  }
  PoolLock lock(&mu_);
  bool applied = false;
  for (auto& [serial, thread] : workers_) {
    const int rc =
        pthread_setaffinity_np(thread.native_handle(), sizeof(set), &set);
    if (rc == 0) {
      applied = true;
    } else if (rc == EINVAL && !applied) {
      return absl::InvalidArgumentError(
          absl::StrFormat("ThreadPool::SetAffinity: none of CPUs {%s} is "
                          "available to this process",
                          absl::StrJoin(cpus, ", ")));
    } else if (rc != ESRCH) {  // ESRCH: the thread is ending
      return absl::InternalError(
          absl::StrCat("ThreadPool::SetAffinity: pthread_setaffinity_np: ",
                       std::strerror(rc)));
    }
  }
  affinity_ = set;
  return absl::OkStatus();
}

}  // namespace internal

ThreadPool::ThreadPool(ThreadPoolOptions options)
    : state_(std::make_shared<internal::ThreadPoolState>(std::move(options))) {
  state_->Start();
}

ThreadPool::~ThreadPool() { state_->Shutdown(/*cancel_queued=*/false); }

absl::Status ThreadPool::Execute(absl::AnyInvocable<void() &&> task,
                                 Priority priority) {
  if (!task)
    return absl::InvalidArgumentError("ThreadPool::Execute: the task is empty");
  return state_->Enqueue(std::move(task), priority);
}

absl::Status ThreadPool::Enqueue(internal::QueuedTask&& task,
                                 Priority priority) {
  return state_->Enqueue(std::move(task), priority);
}

ThreadPoolStats ThreadPool::Stats() const { return state_->Stats(); }

absl::Status ThreadPool::SetAffinity(const std::vector<int>& cpus) {
  return state_->SetAffinity(cpus);
}

void ThreadPool::Shutdown() { state_->Shutdown(/*cancel_queued=*/false); }

void ThreadPool::ShutdownNow() { state_->Shutdown(/*cancel_queued=*/true); }

const ThreadPoolOptions& ThreadPool::options() const {
  return state_->options();
}

}  // namespace tshare::core
