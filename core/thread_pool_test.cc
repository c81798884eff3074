#include "core/thread_pool.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/future.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/status_matchers.h"

namespace tshare::core {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::tshare::testing::StatusIs;

MATCHER_P(IsOkAndHolds, expected,
          "is OK and holds " + ::testing::PrintToString(expected)) {
  if (!arg.ok()) {
    *result_listener << "whose status is " << arg.status();
    return false;
  }
  *result_listener << "whose value is " << ::testing::PrintToString(*arg);
  return *arg == expected;
}

// Long enough for any wait in these tests on a loaded machine under a
// sanitizer; reaching it means the behaviour under test is broken, not slow.
constexpr absl::Duration kPatience = absl::Seconds(60);

// How long a task in StatsMeasureWaitAndRunTimes works (sleeps) for.
constexpr absl::Duration kWork = absl::Milliseconds(5);

ThreadPoolOptions Options(int min_threads, int max_threads) {
  ThreadPoolOptions options;
  options.min_threads = min_threads;
  options.max_threads = max_threads;
  return options;
}

// Holds tasks until Open(). Opens itself when destroyed, so that a failed
// assertion never leaves a pool waiting forever on it: declare it after the
// pool.
class Gate final {
 public:
  Gate() = default;
  Gate(const Gate&) = delete;
  Gate& operator=(const Gate&) = delete;
  ~Gate() { Open(); }

  void Open() {
    if (!open_->HasBeenNotified()) open_->Notify();
  }
  // A task that signals `started` (if given) and then waits for the gate.
  absl::AnyInvocable<void() &&> Task(
      absl::Notification* started = nullptr) const {
    return [open = open_, started] {
      if (started != nullptr) started->Notify();
      open->WaitForNotification();
    };
  }
  // Runs a gate task on `pool` and returns once it has started: it holds one
  // of the pool's threads until Open().
  absl::Status Occupy(ThreadPool* pool) const {
    auto started = std::make_shared<absl::Notification>();
    absl::Status s = pool->Execute([open = open_, started] {
      started->Notify();
      open->WaitForNotification();
    });
    if (!s.ok()) return s;
    if (!started->WaitForNotificationWithTimeout(kPatience))
      return absl::DeadlineExceededError("the gate task did not start");
    return absl::OkStatus();
  }

 private:
  std::shared_ptr<absl::Notification> open_ =
      std::make_shared<absl::Notification>();
};

// Polls Stats() until `pred` holds or kPatience passes; returns the last stats
// seen.
template <typename Pred>
ThreadPoolStats PollStatsUntil(const ThreadPool& pool, Pred pred) {
  const absl::Time deadline = absl::Now() + kPatience;
  ThreadPoolStats stats = pool.Stats();
  while (!pred(stats) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(2));
    stats = pool.Stats();
  }
  return stats;
}

// Makes tasks that record their labels in the order they run.
class RunOrder final {
 public:
  absl::AnyInvocable<void() &&> Task(std::string label) {
    return [this, label = std::move(label)] {
      absl::MutexLock lock(&mu_);
      order_.push_back(label);
    };
  }
  // Waits until `n` tasks have run; returns the labels so far.
  std::vector<std::string> WaitFor(size_t n) const {
    struct Want {
      const std::vector<std::string>* order;
      size_t n;
    } want{&order_, n};
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](Want* w) { return w->order->size() >= w->n; }, &want));
    return order_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::string> order_ ABSL_GUARDED_BY(mu_);
};

TEST(ThreadPoolTest, SubmitReturnsTheValue) {
  ThreadPool pool(Options(1, 2));
  ASSERT_OK_AND_ASSIGN(Future<int> future, pool.Submit([] { return 6 * 7; }));
  EXPECT_THAT(future.Get(), IsOkAndHolds(42));
  ASSERT_OK_AND_ASSIGN(Future<std::string> text,
                       pool.Submit([] { return std::string("pooled") + "!"; }));
  EXPECT_THAT(text.Get(), IsOkAndHolds("pooled!"));
}

TEST(ThreadPoolTest, VoidTaskCompletesItsFuture) {
  ThreadPool pool(Options(1, 1));
  std::atomic<int> runs{0};
  ASSERT_OK_AND_ASSIGN(Future<void> done, pool.Submit([&runs] { ++runs; }));
  EXPECT_OK(done.Get());
  EXPECT_EQ(runs.load(), 1);
}

TEST(ThreadPoolTest, StatusAndStatusOrResultsPropagate) {
  ThreadPool pool(Options(1, 2));
  ASSERT_OK_AND_ASSIGN(Future<int> bad,
                       pool.Submit([]() -> absl::StatusOr<int> {
                         return absl::InvalidArgumentError("bad number");
                       }));
  ASSERT_OK_AND_ASSIGN(Future<int> good,
                       pool.Submit([]() -> absl::StatusOr<int> { return 5; }));
  ASSERT_OK_AND_ASSIGN(Future<void> missing, pool.Submit([] {
    return absl::NotFoundError("no such share");
  }));
  EXPECT_THAT(bad.Get(), StatusIs(absl::StatusCode::kInvalidArgument,
                                  HasSubstr("bad number")));
  EXPECT_THAT(good.Get(), IsOkAndHolds(5));
  EXPECT_THAT(missing.Get(), StatusIs(absl::StatusCode::kNotFound,
                                      HasSubstr("no such share")));
}

TEST(ThreadPoolTest, ThrowingTaskFailsItsFutureAndThePoolKeepsWorking) {
  ThreadPool pool(Options(1, 1));
  ASSERT_OK_AND_ASSIGN(Future<int> thrown, pool.Submit([]() -> int {
    throw std::runtime_error("disk on fire");
  }));
  EXPECT_THAT(thrown.Get(),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("disk on fire")));
  ASSERT_OK_AND_ASSIGN(Future<int> after, pool.Submit([] { return 1; }));
  EXPECT_THAT(after.Get(), IsOkAndHolds(1));
  EXPECT_EQ(pool.Stats().failed, 1u);
}

TEST(ThreadPoolTest, ExecuteRunsTheTaskAndCountsAThrowAsFailed) {
  ThreadPool pool(Options(1, 1));
  absl::Notification ran;
  ASSERT_OK(pool.Execute([&ran] { ran.Notify(); }));
  EXPECT_TRUE(ran.WaitForNotificationWithTimeout(kPatience));
  ASSERT_OK(pool.Execute([] { throw std::logic_error("oops"); }));
  // One thread, FIFO: once this has run, the throwing task has finished and
  // been counted.
  ASSERT_OK_AND_ASSIGN(Future<int> after, pool.Submit([] { return 2; }));
  EXPECT_THAT(after.Get(), IsOkAndHolds(2));
  EXPECT_EQ(pool.Stats().failed, 1u);
  EXPECT_THAT(pool.Execute(nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ThreadPoolTest, StrictPriorityOrderAndFifoWithinAPriority) {
  RunOrder run;  // outlives the pool, whose tasks use it
  ThreadPool pool(Options(1, 1));
  Gate gate;
  ASSERT_OK(gate.Occupy(&pool));

  ASSERT_OK(pool.Execute(run.Task("low1"), Priority::kLow));
  ASSERT_OK(pool.Execute(run.Task("normal1"), Priority::kNormal));
  ASSERT_OK(pool.Execute(run.Task("high1"), Priority::kHigh));
  ASSERT_OK(pool.Execute(run.Task("critical1"), Priority::kCritical));
  ASSERT_OK(pool.Execute(run.Task("low2"), Priority::kLow));
  ASSERT_OK(pool.Execute(run.Task("normal2")));
  ASSERT_OK(pool.Execute(run.Task("high2"), Priority::kHigh));
  ASSERT_OK(pool.Execute(run.Task("critical2"), Priority::kCritical));

  ThreadPoolStats stats = pool.Stats();
  EXPECT_EQ(stats.queued[static_cast<int>(Priority::kLow)], 2u);
  EXPECT_EQ(stats.queued[static_cast<int>(Priority::kNormal)], 2u);
  EXPECT_EQ(stats.queued[static_cast<int>(Priority::kHigh)], 2u);
  EXPECT_EQ(stats.queued[static_cast<int>(Priority::kCritical)], 2u);
  EXPECT_EQ(stats.queued_total, 8u);
  EXPECT_EQ(stats.active, 1);

  gate.Open();
  EXPECT_THAT(run.WaitFor(8),
              ElementsAre("critical1", "critical2", "high1", "high2", "normal1",
                          "normal2", "low1", "low2"));
}

TEST(ThreadPoolTest, FullQueueIsResourceExhaustedAndCountedAsRejected) {
  ThreadPoolOptions options = Options(1, 1);
  options.max_queue = 2;
  ThreadPool pool(options);
  Gate gate;
  ASSERT_OK(gate.Occupy(&pool));
  ASSERT_OK(pool.Execute([] {}));
  ASSERT_OK(pool.Execute([] {}, Priority::kCritical));

  EXPECT_THAT(
      pool.Execute([] {}),
      StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("max_queue=2")));
  EXPECT_THAT(
      pool.Submit([] { return 1; }, Priority::kCritical),
      StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("max_queue=2")));
  ThreadPoolStats stats = pool.Stats();
  EXPECT_EQ(stats.rejected, 2u);
  EXPECT_EQ(stats.submitted, 3u);
  EXPECT_EQ(stats.queued_total, 2u);

  gate.Open();
  pool.Shutdown();
  EXPECT_EQ(pool.Stats().completed, 3u);
}

// A busy thread takes what was queued meanwhile in one batch; a task of a
// higher priority queued while that batch is being worked through still starts
// before the rest of it.
TEST(ThreadPoolTest, HigherPriorityTaskQueuedWhileLowerOnesAreTakenRunsNext) {
  RunOrder run;  // outlives the pool, whose tasks use it
  ThreadPool pool(Options(1, 1));
  Gate gate;
  ASSERT_OK(gate.Occupy(&pool));

  Gate low_gate;
  absl::Notification low1_started;
  ASSERT_OK(pool.Execute(
      [&, task = low_gate.Task(&low1_started)]() mutable {
        run.Task("low1")();
        std::move(task)();
      },
      Priority::kLow));
  ASSERT_OK(pool.Execute(run.Task("low2"), Priority::kLow));
  ASSERT_OK(pool.Execute(run.Task("low3"), Priority::kLow));
  gate.Open();
  ASSERT_TRUE(low1_started.WaitForNotificationWithTimeout(kPatience));

  ASSERT_OK(pool.Execute(run.Task("normal"), Priority::kNormal));
  ASSERT_OK(pool.Execute(run.Task("critical"), Priority::kCritical));
  ThreadPoolStats stats = pool.Stats();
  EXPECT_EQ(stats.queued[static_cast<int>(Priority::kLow)], 2u);
  EXPECT_EQ(stats.queued[static_cast<int>(Priority::kNormal)], 1u);
  EXPECT_EQ(stats.queued[static_cast<int>(Priority::kCritical)], 1u);
  EXPECT_EQ(stats.queued_total, 4u);

  // Waits for the tasks, not Shutdown, which would move the inbox itself.
  low_gate.Open();
  EXPECT_THAT(run.WaitFor(5),
              ElementsAre("low1", "critical", "normal", "low2", "low3"));
}

// Room in a full queue comes back as tasks start, for every priority.
TEST(ThreadPoolTest, QueueRoomFreedByStartedTasksIsAcceptedAgain) {
  ThreadPoolOptions options = Options(1, 1);
  options.max_queue = 2;
  ThreadPool pool(options);
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(round);
    Gate gate;
    ASSERT_OK(gate.Occupy(&pool));
    absl::BlockingCounter ran(2);
    ASSERT_OK(pool.Execute([&ran] { ran.DecrementCount(); }));
    ASSERT_OK(pool.Execute([&ran] { ran.DecrementCount(); }, Priority::kHigh));
    EXPECT_THAT(pool.Execute([] {}, Priority::kCritical),
                StatusIs(absl::StatusCode::kResourceExhausted));
    gate.Open();
    ran.Wait();
  }
  pool.Shutdown();
  ThreadPoolStats stats = pool.Stats();
  EXPECT_EQ(stats.submitted, 9u);
  EXPECT_EQ(stats.rejected, 3u);
  EXPECT_EQ(stats.completed, 9u);
  EXPECT_EQ(stats.queued_total, 0u);
}

TEST(ThreadPoolTest, GrowsUnderLoadUpToMaxThreads) {
  constexpr int kMax = 4;
  ThreadPool pool(Options(1, kMax));
  EXPECT_EQ(pool.Stats().threads, 1);
  Gate gate;
  std::vector<absl::Notification> started(kMax);
  for (int i = 0; i < kMax; ++i)
    ASSERT_OK(pool.Execute(gate.Task(&started[i])));
  // Every task blocks until the gate opens, so all of them running means kMax
  // threads.
  for (absl::Notification& n : started)
    ASSERT_TRUE(n.WaitForNotificationWithTimeout(kPatience));
  ThreadPoolStats stats = pool.Stats();
  EXPECT_EQ(stats.threads, kMax);
  EXPECT_EQ(stats.active, kMax);

  // No thread beyond max_threads: more work just queues.
  ASSERT_OK(pool.Execute([] {}));
  ASSERT_OK(pool.Execute([] {}));
  stats = pool.Stats();
  EXPECT_EQ(stats.threads, kMax);
  EXPECT_EQ(stats.queued_total, 2u);

  gate.Open();
  pool.Shutdown();
  stats = pool.Stats();
  EXPECT_EQ(stats.completed, static_cast<uint64_t>(kMax + 2));
  EXPECT_EQ(stats.threads, 0);
}

TEST(ThreadPoolTest, IdleThreadsAboveMinExitAfterIdleTimeout) {
  constexpr int kMax = 3;
  ThreadPoolOptions options = Options(1, kMax);
  options.idle_timeout = absl::Milliseconds(20);
  ThreadPool pool(options);
  Gate gate;
  std::vector<absl::Notification> started(kMax);
  for (int i = 0; i < kMax; ++i)
    ASSERT_OK(pool.Execute(gate.Task(&started[i])));
  for (absl::Notification& n : started)
    ASSERT_TRUE(n.WaitForNotificationWithTimeout(kPatience));
  EXPECT_EQ(pool.Stats().threads, kMax);

  gate.Open();
  ThreadPoolStats stats = PollStatsUntil(pool, [](const ThreadPoolStats& s) {
    return s.threads <= 1 && s.completed == static_cast<uint64_t>(kMax);
  });
  EXPECT_EQ(stats.threads, 1);
  EXPECT_EQ(stats.completed, static_cast<uint64_t>(kMax));

  // The pool still works, and grows again from min_threads.
  ASSERT_OK_AND_ASSIGN(Future<int> after, pool.Submit([] { return 3; }));
  EXPECT_THAT(after.Get(), IsOkAndHolds(3));
}

TEST(ThreadPoolTest, EachQueuedTaskWakesAnIdleThreadUntilAllAreBusy) {
  constexpr int kThreads = 3;
  ThreadPool pool(Options(kThreads, kThreads));
  // Every thread is asleep before the tasks arrive, so each task that starts
  // while the others hold their threads was handed a thread of its own.
  ThreadPoolStats stats = PollStatsUntil(pool, [](const ThreadPoolStats& s) {
    return s.threads == kThreads && s.active == 0;
  });
  ASSERT_EQ(stats.threads, kThreads);
  Gate gate;
  std::vector<absl::Notification> started(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    ASSERT_OK(pool.Execute(gate.Task(&started[i])));
  }
  for (absl::Notification& n : started)
    ASSERT_TRUE(n.WaitForNotificationWithTimeout(kPatience));
  stats = pool.Stats();
  EXPECT_EQ(stats.active, kThreads);
  EXPECT_EQ(stats.threads, kThreads);
  EXPECT_EQ(stats.queued_total, 0u);
}

TEST(ThreadPoolTest, AThreadWaitingOutItsIdleTimeoutIsWokenForNewWork) {
  ThreadPoolOptions options = Options(0, 2);
  options.idle_timeout = kPatience;  // the thread must not leave on its own
  ThreadPool pool(options);
  ASSERT_OK_AND_ASSIGN(Future<int> first, pool.Submit([] { return 1; }));
  EXPECT_THAT(first.Get(), IsOkAndHolds(1));
  ThreadPoolStats stats = PollStatsUntil(pool, [](const ThreadPoolStats& s) {
    return s.completed == 1 && s.active == 0;
  });
  ASSERT_EQ(stats.threads, 1);
  // The idle thread (above min_threads, so asleep with a timeout) takes the
  // task: no second thread starts, and the task does not wait for the timeout.
  ASSERT_OK_AND_ASSIGN(Future<int> second, pool.Submit([] { return 2; }));
  ASSERT_TRUE(second.Wait(kPatience));
  EXPECT_THAT(second.Get(), IsOkAndHolds(2));
  EXPECT_EQ(pool.Stats().threads, 1);
}

TEST(ThreadPoolTest, MinThreadsZeroStartsThreadsOnDemand) {
  ThreadPoolOptions options = Options(0, 2);
  options.idle_timeout = absl::Milliseconds(1);
  ThreadPool pool(options);
  EXPECT_EQ(pool.Stats().threads, 0);
  ASSERT_OK_AND_ASSIGN(Future<int> f, pool.Submit([] { return 8; }));
  EXPECT_THAT(f.Get(), IsOkAndHolds(8));
  EXPECT_EQ(PollStatsUntil(
                pool, [](const ThreadPoolStats& s) { return s.threads == 0; })
                .threads,
            0);
  ASSERT_OK_AND_ASSIGN(Future<int> g, pool.Submit([] { return 9; }));
  EXPECT_THAT(g.Get(), IsOkAndHolds(9));
}

TEST(ThreadPoolTest, StatsMeasureWaitAndRunTimes) {
  ThreadPool pool(Options(1, 1));
  Gate gate;
  absl::Notification started;
  auto gated = gate.Task(&started);
  ASSERT_OK(pool.Execute([&gated]() mutable {
    std::move(gated)();
    absl::SleepFor(kWork);  // the workload, not synchronization
  }));
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(kPatience));
  constexpr int kQueued = 3;
  for (int i = 0; i < kQueued; ++i) {
    ASSERT_OK(pool.Execute([] { absl::SleepFor(kWork); }));
  }
  ASSERT_OK_AND_ASSIGN(Future<void> failing, pool.Submit([] {
    return absl::AbortedError("conflict");
  }));
  gate.Open();
  EXPECT_THAT(failing.Get(), StatusIs(absl::StatusCode::kAborted));
  pool.Shutdown();

  ThreadPoolStats stats = pool.Stats();
  EXPECT_EQ(stats.submitted, static_cast<uint64_t>(kQueued + 2));
  EXPECT_EQ(stats.completed, static_cast<uint64_t>(kQueued + 2));
  EXPECT_EQ(stats.failed, 1u);
  EXPECT_EQ(stats.rejected, 0u);
  EXPECT_EQ(stats.cancelled, 0u);
  EXPECT_EQ(stats.active, 0);
  EXPECT_EQ(stats.queued_total, 0u);
  // The queued tasks waited behind the gated one, which ran for at least kWork.
  EXPECT_GT(stats.mean_wait, absl::ZeroDuration());
  EXPECT_GE(stats.max_wait, kWork);
  EXPECT_GE(stats.max_wait, stats.mean_wait);
  // Four of five tasks slept kWork.
  EXPECT_GE(stats.mean_run, kWork * 4 / 5);
  EXPECT_GE(stats.max_run, kWork);
  EXPECT_GE(stats.max_run, stats.mean_run);
}

TEST(ThreadPoolTest, OnTaskStartSeesEachTasksPriorityAndWaitBeforeItRuns) {
  struct Seen {
    Priority priority;
    absl::Duration wait;
    int ran_before;  // tasks of this test that had run when it was called
  };
  absl::Mutex mu;
  std::vector<Seen> seen;
  std::atomic<int> ran{0};
  ThreadPoolOptions options = Options(1, 1);
  options.on_task_start = [&mu, &seen, &ran](Priority priority,
                                             absl::Duration wait) {
    absl::MutexLock lock(&mu);
    seen.push_back({priority, wait, ran.load()});
  };
  ThreadPool pool(options);
  Gate gate;
  absl::Notification gated;
  ASSERT_OK(pool.Execute(gate.Task(&gated)));  // kNormal, holds the one thread
  gated.WaitForNotification();
  ASSERT_OK(pool.Execute([&ran] { ++ran; }, Priority::kLow));
  ASSERT_OK(pool.Execute([&ran] { ++ran; }, Priority::kCritical));
  absl::SleepFor(kWork);  // the queued tasks wait at least this long
  gate.Open();
  pool.Shutdown();

  absl::MutexLock lock(&mu);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].priority, Priority::kNormal);
  EXPECT_EQ(seen[1].priority, Priority::kCritical);
  EXPECT_EQ(seen[2].priority, Priority::kLow);
  // Called as each task starts, before it runs.
  EXPECT_EQ(seen[1].ran_before, 0);
  EXPECT_EQ(seen[2].ran_before, 1);
  EXPECT_GE(seen[1].wait, kWork);
  EXPECT_GE(seen[2].wait, seen[1].wait);
  EXPECT_GE(pool.Stats().max_wait, seen[2].wait);
}

TEST(ThreadPoolTest, WorkerThreadsAreNamedAfterThePool) {
  auto name_of_worker = [](ThreadPool& pool) -> std::string {
    absl::StatusOr<Future<std::string>> f = pool.Submit([] {
      char name[32] = {};
      pthread_getname_np(pthread_self(), name, sizeof(name));
      return std::string(name);
    });
    if (!f.ok()) return f.status().ToString();
    absl::StatusOr<std::string> name = f->Get();
    return name.ok() ? *name : name.status().ToString();
  };
  ThreadPoolOptions short_name = Options(1, 1);
  short_name.name = "bus";
  ThreadPool bus(short_name);
  EXPECT_EQ(name_of_worker(bus), "bus-0");

  ThreadPoolOptions long_name = Options(1, 1);
  long_name.name = "a-very-long-pool-name";
  ThreadPool pool(long_name);
  EXPECT_EQ(name_of_worker(pool),
            "a-very-long-p-0");  // 15 characters, number kept
}

TEST(ThreadPoolTest, SetAffinityPinsCurrentAndFutureWorkers) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  ASSERT_EQ(sched_getaffinity(0, sizeof(allowed), &allowed), 0);
  if (!CPU_ISSET(0, &allowed))
    GTEST_SKIP() << "this process may not run on CPU 0";

  ThreadPool pool(Options(1, 2));
  EXPECT_THAT(pool.SetAffinity({}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(pool.SetAffinity({99999}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("99999")));
  EXPECT_THAT(pool.SetAffinity({-1}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(pool.Stats().threads, 1);
  ASSERT_OK(pool.SetAffinity({0}));

  // Two tasks that stay running until the gate opens: one on the thread that
  // existed before SetAffinity, one on a thread started after it.
  struct Placement {
    int cpu = -1;
    int allowed_count = 0;
    bool allows_cpu0 = false;
    pthread_t thread;
  };
  Gate gate;
  Placement placements[2];
  absl::Notification started[2];
  for (int i = 0; i < 2; ++i) {
    auto gated = gate.Task(&started[i]);
    ASSERT_OK(pool.Execute(
        [&placement = placements[i], gated = std::move(gated)]() mutable {
          cpu_set_t set;
          CPU_ZERO(&set);
          pthread_getaffinity_np(pthread_self(), sizeof(set), &set);
          placement = Placement{sched_getcpu(), CPU_COUNT(&set),
                                CPU_ISSET(0, &set) != 0, pthread_self()};
          std::move(gated)();
        }));
  }
  for (absl::Notification& n : started)
    ASSERT_TRUE(n.WaitForNotificationWithTimeout(kPatience));
  EXPECT_EQ(pool.Stats().threads, 2);
  EXPECT_FALSE(pthread_equal(placements[0].thread, placements[1].thread));
  for (const Placement& p : placements) {
    EXPECT_EQ(p.cpu, 0);
    EXPECT_EQ(p.allowed_count, 1);
    EXPECT_TRUE(p.allows_cpu0);
  }
}

TEST(ThreadPoolTest, ShutdownRunsEverythingQueued) {
  ThreadPool pool(Options(1, 1));
  Gate gate;
  ASSERT_OK(gate.Occupy(&pool));
  constexpr int kQueued = 50;
  std::atomic<int> ran{0};
  std::vector<Future<int>> futures;
  for (int i = 0; i < kQueued; ++i) {
    ASSERT_OK_AND_ASSIGN(Future<int> f, pool.Submit([&ran, i] {
      ++ran;
      return i;
    }));
    futures.push_back(f);
  }

  std::thread shutdown([&pool] { pool.Shutdown(); });
  // Shutdown has begun once new work is refused; only then let the queue move.
  // Probes that got in before that are queued work like any other.
  int probes = 0;
  const absl::Time deadline = absl::Now() + kPatience;
  while (absl::Now() < deadline) {
    absl::Status probe = pool.Execute([&ran] { ++ran; });
    if (probe.code() == absl::StatusCode::kFailedPrecondition) break;
    ASSERT_OK(probe);
    ++probes;
    absl::SleepFor(absl::Milliseconds(1));
  }
  ThreadPoolStats stats = pool.Stats();
  EXPECT_EQ(stats.queued_total, static_cast<size_t>(kQueued + probes));
  gate.Open();
  shutdown.join();

  EXPECT_EQ(ran.load(), kQueued + probes);
  for (int i = 0; i < kQueued; ++i)
    EXPECT_THAT(futures[i].Get(), IsOkAndHolds(i));
  stats = pool.Stats();
  EXPECT_EQ(stats.completed, static_cast<uint64_t>(kQueued + probes + 1));
  EXPECT_EQ(stats.threads, 0);
}

TEST(ThreadPoolTest, ShutdownNowCancelsQueuedTasksAndLetsTheRunningOneFinish) {
  ThreadPool pool(Options(1, 1));
  Gate gate;
  absl::Notification started;
  auto gated = gate.Task(&started);
  ASSERT_OK_AND_ASSIGN(Future<std::string> running,
                       pool.Submit([&gated]() mutable {
                         std::move(gated)();
                         return std::string("finished");
                       }));
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(kPatience));
  constexpr int kQueued = 5;
  std::atomic<int> ran{0};
  std::vector<Future<int>> queued;
  for (int i = 0; i < kQueued; ++i) {
    ASSERT_OK_AND_ASSIGN(Future<int> f, pool.Submit([&ran] { return ++ran; }));
    queued.push_back(f);
  }
  ASSERT_OK(pool.Execute([&ran] { ++ran; }, Priority::kLow));

  std::thread shutdown([&pool] { pool.ShutdownNow(); });
  // The queued futures are cancelled while the running task is still held by
  // the gate.
  for (Future<int>& f : queued) {
    EXPECT_THAT(f.Get(), StatusIs(absl::StatusCode::kCancelled,
                                  HasSubstr("ShutdownNow")));
  }
  EXPECT_FALSE(running.IsReady());
  gate.Open();
  shutdown.join();

  EXPECT_THAT(running.Get(), IsOkAndHolds("finished"));
  EXPECT_EQ(ran.load(), 0);
  ThreadPoolStats stats = pool.Stats();
  EXPECT_EQ(stats.cancelled, static_cast<uint64_t>(kQueued + 1));
  EXPECT_EQ(stats.completed, 1u);
  EXPECT_EQ(stats.queued_total, 0u);
  EXPECT_EQ(stats.threads, 0);
}

TEST(ThreadPoolTest, NoNewWorkAfterShutdown) {
  ThreadPool pool(Options(1, 2));
  pool.Shutdown();
  EXPECT_THAT(pool.Execute([] {}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(pool.Submit([] { return 1; }),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  pool.Shutdown();  // a second call is harmless

  ThreadPool now(Options(1, 2));
  now.ShutdownNow();
  EXPECT_THAT(
      now.Execute([] {}),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("shut down")));
  EXPECT_THAT(now.Submit([] {}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(pool.Stats().rejected, 2u);
  EXPECT_EQ(now.Stats().rejected, 2u);
}

TEST(ThreadPoolTest, DestroyingThePoolFromItsOwnTaskDrainsAndDoesNotDeadlock) {
  auto pool = std::make_shared<ThreadPool>(Options(1, 1));
  absl::Notification release;
  absl::Notification destroyed;
  std::atomic<int> queued_ran{0};
  int queued_ran_at_destruction = -1;
  ASSERT_OK(pool->Execute([p = pool, &release, &destroyed, &queued_ran,
                           &queued_ran_at_destruction]() mutable {
    release.WaitForNotification();
    p.reset();  // the last reference: ~ThreadPool runs on this pool thread
    queued_ran_at_destruction = queued_ran.load();
    destroyed.Notify();
  }));
  ASSERT_OK(pool->Execute([&queued_ran] { ++queued_ran; }));
  pool.reset();
  release.Notify();
  ASSERT_TRUE(destroyed.WaitForNotificationWithTimeout(kPatience));
  // The only thread was busy destroying the pool, so it ran the queued task
  // itself.
  EXPECT_EQ(queued_ran_at_destruction, 1);
}

TEST(ThreadPoolTest, ShutdownFromOwnTaskWithOtherThreadsRunning) {
  ThreadPool pool(Options(2, 2));
  Gate gate;
  ASSERT_OK(gate.Occupy(&pool));
  ASSERT_OK_AND_ASSIGN(Future<void> shut, pool.Submit([&pool, &gate] {
    gate.Open();
    pool.Shutdown();  // waits for the other thread, does not wait for itself
    return pool.Execute([] {}).code() == absl::StatusCode::kFailedPrecondition
               ? absl::OkStatus()
               : absl::InternalError("pool still accepts work");
  }));
  EXPECT_OK(shut.Get());
  pool.Shutdown();
  EXPECT_EQ(pool.Stats().threads, 0);
}

TEST(ThreadPoolTest, TwoTasksShuttingDownTheirPoolAtOnceDoNotWaitForEachOther) {
  ThreadPool pool(Options(2, 2));
  // Each task waits for the other to be running, so both are inside Shutdown
  // together.
  absl::Notification running[2];
  absl::BlockingCounter both_returned(2);
  for (int i = 0; i < 2; ++i) {
    ASSERT_OK(pool.Execute([&, i] {
      running[i].Notify();
      running[1 - i].WaitForNotification();
      pool.Shutdown();
      both_returned.DecrementCount();
    }));
  }
  both_returned.Wait();
  pool.Shutdown();
  EXPECT_EQ(pool.Stats().threads, 0);
  EXPECT_EQ(pool.Stats().completed, 2u);
}

TEST(ThreadPoolTest, ThenOnASubmittedFutureRunsOnThePoolThread) {
  ThreadPoolOptions options = Options(1, 1);
  options.name = "then";
  ThreadPool pool(options);
  Gate gate;
  auto gated = gate.Task();
  ASSERT_OK_AND_ASSIGN(Future<int> f, pool.Submit([&gated]() mutable {
    std::move(gated)();
    return 20;
  }));
  Future<std::string> where = f.Then([](int v) {
    char name[32] = {};
    pthread_getname_np(pthread_self(), name, sizeof(name));
    return std::string(name) + ":" + std::to_string(v + 1);
  });
  gate.Open();
  EXPECT_THAT(where.Get(), IsOkAndHolds("then-0:21"));
}

TEST(ThreadPoolTest, ManySubmittersAllTasksRun) {
  constexpr int kSubmitters = 4;
  constexpr int kTasksEach = 250;
  ThreadPool pool(Options(1, 4));
  std::atomic<int> ran{0};
  absl::BlockingCounter submitted(kSubmitters);
  std::vector<std::thread> submitters;
  for (int s = 0; s < kSubmitters; ++s) {
    submitters.emplace_back([&, s] {
      for (int i = 0; i < kTasksEach; ++i) {
        const Priority priority =
            static_cast<Priority>((s + i) % kNumPriorities);
        EXPECT_OK(pool.Execute([&ran] { ++ran; }, priority));
      }
      submitted.DecrementCount();
    });
  }
  submitted.Wait();
  for (std::thread& t : submitters) t.join();
  pool.Shutdown();
  EXPECT_EQ(ran.load(), kSubmitters * kTasksEach);
  ThreadPoolStats stats = pool.Stats();
  EXPECT_EQ(stats.completed, static_cast<uint64_t>(kSubmitters * kTasksEach));
  EXPECT_EQ(stats.submitted, static_cast<uint64_t>(kSubmitters * kTasksEach));
  EXPECT_LE(stats.threads, 4);
}

TEST(ThreadPoolTest, OptionsAreNormalized) {
  ThreadPoolOptions options;
  options.min_threads = 3;
  options.max_threads = 1;
  options.max_queue = 0;
  ThreadPool pool(options);
  EXPECT_EQ(pool.options().min_threads, 3);
  EXPECT_EQ(pool.options().max_threads, 3);
  EXPECT_EQ(pool.options().max_queue, 1u);
  EXPECT_EQ(pool.Stats().threads, 3);

  ThreadPool defaults;
  EXPECT_EQ(defaults.options().max_threads,
            std::max(1, static_cast<int>(std::thread::hardware_concurrency())));
  EXPECT_EQ(defaults.options().name, "tshare-pool");
}

TEST(ThreadPoolTest, PriorityNames) {
  EXPECT_STREQ(PriorityName(Priority::kLow), "low");
  EXPECT_STREQ(PriorityName(Priority::kCritical), "critical");
}

}  // namespace
}  // namespace tshare::core
