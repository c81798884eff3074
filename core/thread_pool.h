// ThreadPool: a priority thread pool with a bounded queue, growth under load,
// idle shrink, real statistics, CPU affinity (Linux) and futures.
//
// Thread-safety: every method may be called from any thread, including from the
// pool's own tasks. Tasks never run with the pool's lock held. Destroying (or
// shutting down) a pool from one of its own tasks is allowed: that thread helps
// run what is still queued, waits for the other threads, and leaves its own
// thread to end once its task returns.
//
//   tshare::core::ThreadPool pool(
//       {.name = "indexer", .min_threads = 2, .max_threads = 8});
//   absl::StatusOr<tshare::core::Future<int>> f =
//       pool.Submit([] { return 6 * 7; }, tshare::core::Priority::kHigh);
//   if (f.ok()) { absl::StatusOr<int> v = f->Get(); }  // 42
//   absl::Status s = pool.Execute([] { Flush(); });    // fire and forget
//   pool.Shutdown();  // runs what is queued, then joins the threads
#ifndef TSHARE_CORE_THREAD_POOL_H_
#define TSHARE_CORE_THREAD_POOL_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/future.h"

namespace tshare::core {

// Strict priority: a queued task of a higher priority always starts before any
// of a lower one (so a steady stream of high-priority work starves lower
// priorities); FIFO within a priority.
enum class Priority { kLow = 0, kNormal = 1, kHigh = 2, kCritical = 3 };
inline constexpr int kNumPriorities = 4;

// "low", "normal", "high", "critical".
const char* PriorityName(Priority priority);

struct ThreadPoolOptions {
  // Worker threads are named "<name>-<n>", cut to the 15 characters Linux keeps
  // (the end of `name` is dropped first, so the number stays).
  std::string name = "tshare-pool";
  // Threads kept even when idle; started by the constructor. Negative counts as
  // 0.
  int min_threads = 1;
  // Upper bound on threads; 0 = std::thread::hardware_concurrency(). Raised to
  // max(min_threads, 1) if lower.
  int max_threads = 0;
  // Queued (not yet running) tasks, all priorities together; at least 1.
  size_t max_queue = 65536;
  // A thread above min_threads that has been idle this long exits.
  absl::Duration idle_timeout = absl::Seconds(10);
  // If set, called on the worker thread as each task starts, with the task's
  // priority and how long it waited in the queue; no pool lock is held. It
  // must be cheap and must not block (e.g. observe a histogram).
  std::function<void(Priority priority, absl::Duration wait)> on_task_start;
};

// A snapshot of the pool's figures. Times come from a cycle counter (see
// thread_pool.cc), accurate to well under a microsecond.
struct ThreadPoolStats {
  int threads = 0;                     // live worker threads
  int active = 0;                      // threads running a task now
  size_t queued[kNumPriorities] = {};  // queued tasks per Priority index
  size_t queued_total = 0;
  // Tasks accepted by Execute / Submit.
  uint64_t submitted = 0;
  // Tasks that ran to their end, failed ones included.
  uint64_t completed = 0;
  // Tasks that threw, or whose Submit result was an error.
  uint64_t failed = 0;
  // Execute / Submit calls refused (queue full or shut down).
  uint64_t rejected = 0;
  // Queued tasks dropped by ShutdownNow.
  uint64_t cancelled = 0;
  // Wait: enqueue to start, over the tasks started. Run: start to end, over the
  // tasks completed. Zero until there is a task to measure.
  absl::Duration mean_wait = absl::ZeroDuration();
  absl::Duration max_wait = absl::ZeroDuration();
  absl::Duration mean_run = absl::ZeroDuration();
  absl::Duration max_run = absl::ZeroDuration();
};

namespace internal {
class ThreadPoolState;

// A queued unit of work from Submit, called exactly once. With an OK
// `cancelled` it runs the task and returns whether it succeeded; with an error
// it must not run the task, completes its future with that error and returns
// false.
using PoolTask = absl::AnyInvocable<bool(const absl::Status& cancelled) &&>;
// What the queue holds: an Execute task as given (kept unwrapped, so a small
// callable needs no allocation of its own) or a Submit task.
using QueuedTask = std::variant<absl::AnyInvocable<void() &&>, PoolTask>;
}  // namespace internal

// A pool of worker threads that run tasks by priority. Threads start at
// min_threads and grow, up to max_threads, whenever a task is queued and no
// thread is free to take it; a thread above min_threads that stays idle for
// idle_timeout exits.
class ThreadPool final {
 public:
  explicit ThreadPool(ThreadPoolOptions options = {});
  // Shutdown() (drain) if the pool is not shut down yet.
  ~ThreadPool();

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Queues `task` to run once. Fire and forget: a task that throws is counted
  // as failed and the pool goes on. Never throws. Errors: INVALID_ARGUMENT for
  // an empty task, RESOURCE_EXHAUSTED when max_queue tasks are already queued,
  // FAILED_PRECONDITION after Shutdown/ShutdownNow.
  absl::Status Execute(absl::AnyInvocable<void() &&> task,
                       Priority priority = Priority::kNormal);

  // Queues f() and returns a future of its result. f returns R,
  // absl::StatusOr<R>, absl::Status (R = void) or void; the future carries that
  // result. A throw becomes an INTERNAL error naming the exception's what(); a
  // task dropped by ShutdownNow completes its future with CANCELLED. Then
  // continuations of the future run on the pool thread that ran f. Errors as
  // for Execute.
  template <typename F>
  auto Submit(F&& f, Priority priority = Priority::kNormal) -> absl::StatusOr<
      Future<internal::UnwrapT<std::invoke_result_t<std::decay_t<F>>>>>;

  ThreadPoolStats Stats() const;

  // Pins every current and future worker thread to `cpus`
  // (pthread_setaffinity_np). INVALID_ARGUMENT for an empty list, a CPU number
  // outside [0, configured CPUs) or a set with no CPU this process may use.
  absl::Status SetAffinity(const std::vector<int>& cpus);

  // Refuses new work, runs everything already queued, then joins the threads.
  // Returns once they have ended (called from a pool task: once the others
  // have, see the file comment). Safe to call more than once and from several
  // threads.
  void Shutdown();
  // Refuses new work, cancels every queued task (futures → CANCELLED), and
  // joins the threads once the running tasks finish.
  void ShutdownNow();

  // The options in force: max_threads, min_threads and max_queue after the
  // adjustments documented in ThreadPoolOptions.
  const ThreadPoolOptions& options() const;

 private:
  absl::Status Enqueue(internal::QueuedTask&& task, Priority priority);

  // Shared with the worker threads, so that a thread that destroys the pool
  // from inside a task can still finish its loop after the pool object is gone.
  const std::shared_ptr<internal::ThreadPoolState> state_;
};

template <typename F>
auto ThreadPool::Submit(F&& f, Priority priority) -> absl::StatusOr<
    Future<internal::UnwrapT<std::invoke_result_t<std::decay_t<F>>>>> {
  using R = internal::UnwrapT<std::invoke_result_t<std::decay_t<F>>>;
  Promise<R> promise;
  Future<R> future = promise.GetFuture();
  absl::Status status = Enqueue(
      internal::PoolTask([fn = std::forward<F>(f), p = std::move(promise)](
                             const absl::Status& cancelled) mutable {
        if (!cancelled.ok()) {
          p.SetStatus(cancelled);
          return false;
        }
        internal::Result<R> result = internal::InvokeToResult<R>(std::move(fn));
        const bool ok = result.ok();
        p.SetResult(std::move(result));
        return ok;
      }),
      priority);
  if (!status.ok()) return status;
  return future;
}

}  // namespace tshare::core

#endif  // TSHARE_CORE_THREAD_POOL_H_
