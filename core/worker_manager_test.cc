#include "core/worker_manager.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/config.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "core/share.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/status_matchers.h"

namespace tshare::core {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::tshare::testing::StatusIs;

// An upper bound for waits that end as soon as the awaited thing happens:
// reaching it means the test failed, not that it was slow.
constexpr absl::Duration kLongTime = absl::Seconds(60);

// Matches an absl::StatusOr<T> that is OK and holds `expected`.
MATCHER_P(HoldsValue, expected,
          "is OK and holds " + ::testing::PrintToString(expected)) {
  if (!arg.ok()) {
    *result_listener << "whose status is " << arg.status();
    return false;
  }
  *result_listener << "which holds " << ::testing::PrintToString(*arg);
  return *arg == expected;
}

// A worker that counts its rounds in `rounds` until it is stopped.
WorkerFn CountingWorker(Share<int64_t> rounds) {
  return [rounds](WorkerContext& context) {
    while (context.Checkpoint()) {
      rounds.Update([](int64_t& n) { ++n; });
      // Pacing, so that the worker does not hog a shared CPU; Stop cuts it
      // short.
      context.SleepFor(absl::Microseconds(100));
    }
  };
}

// Records every event a manager publishes; tests wait on it for a worker to
// reach a state. Declare it after the manager, so that it goes first.
class EventRecorder final {
 public:
  explicit EventRecorder(WorkerManager& manager) : manager_(manager) {
    id_ = manager_.AddListener([this](const WorkerInfo& info) {
      absl::MutexLock lock(&mu_);
      events_.push_back(info);
    });
  }
  ~EventRecorder() { manager_.RemoveListener(id_); }

  // The states that worker `name` went through, in the order they were
  // delivered.
  std::vector<WorkerState> States(const std::string& name) {
    absl::MutexLock lock(&mu_);
    std::vector<WorkerState> states;
    for (const WorkerInfo& info : events_) {
      if (info.name == name) states.push_back(info.state);
    }
    return states;
  }

  // Waits until an event says that worker `name` is in `state`; returns that
  // event.
  WorkerInfo WaitFor(const std::string& name, WorkerState state) {
    auto seen = [&]() {
      mu_.AssertReaderHeld();
      return Find(name, state) != nullptr;
    };
    absl::MutexLock lock(&mu_);
    if (!mu_.AwaitWithTimeout(absl::Condition(&seen), kLongTime)) {
      ADD_FAILURE() << "worker " << name << " never reached " << state;
      return WorkerInfo{};
    }
    return *Find(name, state);
  }

 private:
  const WorkerInfo* Find(const std::string& name, WorkerState state) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    for (const WorkerInfo& info : events_) {
      if (info.name == name && info.state == state) return &info;
    }
    return nullptr;
  }

  WorkerManager& manager_;
  WorkerListenerId id_ = 0;
  absl::Mutex mu_;
  std::vector<WorkerInfo> events_ ABSL_GUARDED_BY(mu_);
};

TEST(WorkerStateTest, NamesEveryState) {
  EXPECT_EQ(WorkerStateName(WorkerState::kStarting), "starting");
  EXPECT_EQ(WorkerStateName(WorkerState::kRunning), "running");
  EXPECT_EQ(WorkerStateName(WorkerState::kPaused), "paused");
  EXPECT_EQ(WorkerStateName(WorkerState::kStopping), "stopping");
  EXPECT_EQ(WorkerStateName(WorkerState::kStopped), "stopped");
  EXPECT_EQ(WorkerStateName(WorkerState::kFailed), "failed");
  EXPECT_TRUE(IsFinal(WorkerState::kStopped));
  EXPECT_TRUE(IsFinal(WorkerState::kFailed));
  EXPECT_FALSE(IsFinal(WorkerState::kStopping));
}

TEST(WorkerManagerTest, SpawnRunsTheFunctionOnItsOwnThread) {
  WorkerManager manager;
  std::thread::id worker_thread;
  std::string seen_name;
  ASSERT_OK(manager.Spawn("once", [&](WorkerContext& context) {
    worker_thread = std::this_thread::get_id();
    seen_name = context.name();
    context.ReportProgress("did the one thing");
  }));
  ASSERT_OK(manager.JoinAll());
  EXPECT_NE(worker_thread, std::this_thread::get_id());
  EXPECT_NE(worker_thread, std::thread::id());
  EXPECT_EQ(seen_name, "once");
  ASSERT_OK_AND_ASSIGN(WorkerInfo info, manager.Info("once"));
  EXPECT_EQ(info.state, WorkerState::kStopped);
  EXPECT_OK(info.status);
  EXPECT_EQ(info.progress, "did the one thing");
  EXPECT_TRUE(info.controllable);
  EXPECT_NE(info.started_at, absl::InfinitePast());
  EXPECT_GE(info.stopped_at, info.started_at);
  EXPECT_EQ(manager.ActiveWorkers(), 0u);
}

TEST(WorkerManagerTest, WorkerIsRunningWhileItsFunctionRuns) {
  WorkerManager manager;
  absl::Notification entered;
  absl::Notification release;
  ASSERT_OK(manager.Spawn("busy", [&](WorkerContext&) {
    entered.Notify();
    release.WaitForNotification();
  }));
  entered.WaitForNotification();
  EXPECT_THAT(manager.State("busy"), HoldsValue(WorkerState::kRunning));
  EXPECT_THAT(manager.IsPaused("busy"), HoldsValue(false));
  EXPECT_EQ(manager.ActiveWorkers(), 1u);
  release.Notify();
  ASSERT_OK(manager.JoinAll());
  EXPECT_THAT(manager.State("busy"), HoldsValue(WorkerState::kStopped));
}

TEST(WorkerManagerTest, PauseHoldsTheWorkerAtItsCheckpointAndResumeReleasesIt) {
  WorkerManager manager;
  Share<int64_t> rounds(0);
  ASSERT_OK(manager.Spawn("counter", CountingWorker(rounds)));
  ASSERT_OK(rounds.WaitUntil([](int64_t n) { return n >= 3; }, kLongTime));

  ASSERT_OK(manager.Pause("counter"));
  EXPECT_THAT(manager.IsPaused("counter"), HoldsValue(true));
  EXPECT_THAT(manager.State("counter"), HoldsValue(WorkerState::kPaused));
  // The worker is now blocked inside Checkpoint(): it cannot count again before
  // Resume.
  ASSERT_OK(manager.WaitUntilParked("counter", kLongTime));
  ASSERT_OK_AND_ASSIGN(WorkerInfo info, manager.Info("counter"));
  EXPECT_TRUE(info.parked);
  const int64_t held_at = rounds.Get();
  const uint64_t version = rounds.version();
  EXPECT_THAT(rounds.WaitForChange(version, absl::Milliseconds(20)),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_EQ(rounds.Get(), held_at);
  EXPECT_THAT(manager.State("counter"), HoldsValue(WorkerState::kPaused));

  ASSERT_OK(manager.Resume("counter"));
  EXPECT_THAT(manager.State("counter"), HoldsValue(WorkerState::kRunning));
  ASSERT_OK(
      rounds.WaitUntil([&](int64_t n) { return n >= held_at + 2; }, kLongTime));
  ASSERT_OK_AND_ASSIGN(info, manager.Info("counter"));
  EXPECT_FALSE(info.parked);

  ASSERT_OK(manager.Stop("counter"));
  ASSERT_OK(manager.JoinAll());
  EXPECT_THAT(manager.State("counter"), HoldsValue(WorkerState::kStopped));
}

TEST(WorkerManagerTest, PauseTakesEffectOnlyAtTheNextCheckpoint) {
  WorkerManager manager;
  absl::Notification entered;
  absl::Notification release;
  std::atomic<int> checkpoints_passed{0};
  ASSERT_OK(manager.Spawn("slow", [&](WorkerContext& context) {
    entered.Notify();
    release.WaitForNotification();  // a long unit of work, with no checkpoint
                                    // inside
    while (context.Checkpoint()) checkpoints_passed.fetch_add(1);
  }));
  entered.WaitForNotification();
  ASSERT_OK(manager.Pause("slow"));
  // Busy outside any checkpoint: paused in state, not yet holding still.
  EXPECT_THAT(
      manager.WaitUntilParked("slow", absl::Milliseconds(10)),
      StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("\"slow\"")));
  ASSERT_OK_AND_ASSIGN(WorkerInfo info, manager.Info("slow"));
  EXPECT_EQ(info.state, WorkerState::kPaused);
  EXPECT_FALSE(info.parked);

  release.Notify();
  ASSERT_OK(manager.WaitUntilParked("slow", kLongTime));
  EXPECT_EQ(checkpoints_passed.load(), 0);
  ASSERT_OK(manager.Stop("slow"));
  ASSERT_OK(manager.JoinAll());
  EXPECT_EQ(checkpoints_passed.load(), 0);
}

TEST(WorkerManagerTest, StopMakesCheckpointReturnFalse) {
  WorkerManager manager;
  absl::Notification entered;
  absl::Notification release;
  bool stop_seen_before = true;
  bool checkpoint_result = true;
  bool stop_seen_after = false;
  ASSERT_OK(manager.Spawn("stoppable", [&](WorkerContext& context) {
    stop_seen_before = context.StopRequested();
    entered.Notify();
    release.WaitForNotification();
    checkpoint_result = context.Checkpoint();
    stop_seen_after = context.StopRequested();
  }));
  entered.WaitForNotification();
  ASSERT_OK(manager.Stop("stoppable"));
  EXPECT_THAT(manager.State("stoppable"), HoldsValue(WorkerState::kStopping));
  EXPECT_EQ(manager.ActiveWorkers(), 1u);
  release.Notify();
  ASSERT_OK(manager.JoinAll());
  EXPECT_FALSE(stop_seen_before);
  EXPECT_FALSE(checkpoint_result);
  EXPECT_TRUE(stop_seen_after);
  EXPECT_THAT(manager.State("stoppable"), HoldsValue(WorkerState::kStopped));
  EXPECT_EQ(manager.ActiveWorkers(), 0u);
}

TEST(WorkerManagerTest, StopReleasesAPausedWorker) {
  WorkerManager manager;
  Share<int64_t> rounds(0);
  ASSERT_OK(manager.Spawn("counter", CountingWorker(rounds)));
  ASSERT_OK(manager.Pause("counter"));
  ASSERT_OK(manager.WaitUntilParked("counter", kLongTime));
  ASSERT_OK(manager.Stop("counter"));
  ASSERT_OK(manager.JoinAll());
  ASSERT_OK_AND_ASSIGN(WorkerInfo info, manager.Info("counter"));
  EXPECT_EQ(info.state, WorkerState::kStopped);
  EXPECT_FALSE(info.parked);
}

TEST(WorkerManagerTest, SleepForEndsAtStop) {
  WorkerManager manager;
  absl::Notification entered;
  bool slept_through = true;
  ASSERT_OK(manager.Spawn("sleeper", [&](WorkerContext& context) {
    entered.Notify();
    slept_through = context.SleepFor(absl::Hours(1));
  }));
  entered.WaitForNotification();
  ASSERT_OK(manager.Stop("sleeper"));
  ASSERT_OK(manager.JoinAll());
  EXPECT_FALSE(slept_through);
}

TEST(WorkerManagerTest, ExceptionMakesTheWorkerFailedAndIsReported) {
  WorkerManager manager;
  ASSERT_OK(manager.Spawn("boom", [](WorkerContext&) -> void {
    throw std::runtime_error("disk full");
  }));
  EXPECT_THAT(manager.JoinAll(),
              StatusIs(absl::StatusCode::kInternal,
                       ::testing::AllOf(HasSubstr("\"boom\""),
                                        HasSubstr("disk full"))));
  EXPECT_THAT(manager.State("boom"), HoldsValue(WorkerState::kFailed));
  ASSERT_OK_AND_ASSIGN(WorkerInfo info, manager.Info("boom"));
  EXPECT_THAT(info.status,
              StatusIs(absl::StatusCode::kInternal, HasSubstr("disk full")));
  EXPECT_NE(info.stopped_at, absl::InfinitePast());
  EXPECT_EQ(manager.ActiveWorkers(), 0u);
}

TEST(WorkerManagerTest, ExceptionThatIsNotAStdExceptionIsReported) {
  WorkerManager manager;
  ASSERT_OK(manager.Spawn("odd", [](WorkerContext&) -> void { throw 42; }));
  EXPECT_THAT(manager.JoinAll(), StatusIs(absl::StatusCode::kInternal,
                                          HasSubstr("not a std::exception")));
  EXPECT_THAT(manager.State("odd"), HoldsValue(WorkerState::kFailed));
}

TEST(WorkerManagerTest, ErrorStatusMakesTheWorkerFailed) {
  WorkerManager manager;
  ASSERT_OK(manager.Spawn("reader", [](WorkerContext&) -> absl::Status {
    return absl::DataLossError("bad block 7");
  }));
  ASSERT_OK(manager.Spawn(
      "fine", [](WorkerContext&) -> absl::Status { return absl::OkStatus(); }));
  EXPECT_THAT(manager.JoinAll(),
              StatusIs(absl::StatusCode::kDataLoss,
                       ::testing::AllOf(HasSubstr("\"reader\""),
                                        HasSubstr("bad block 7"))));
  ASSERT_OK_AND_ASSIGN(WorkerInfo reader, manager.Info("reader"));
  EXPECT_EQ(reader.state, WorkerState::kFailed);
  EXPECT_THAT(reader.status,
              StatusIs(absl::StatusCode::kDataLoss, "bad block 7"));
  EXPECT_THAT(manager.State("fine"), HoldsValue(WorkerState::kStopped));
}

TEST(WorkerManagerTest, JoinAllReportsTheFirstFailureAndKeepsEveryError) {
  WorkerManager manager;
  ASSERT_OK(manager.Spawn("first", [](WorkerContext&) -> absl::Status {
    return absl::UnavailableError("first went wrong");
  }));
  EXPECT_THAT(manager.JoinAll(), StatusIs(absl::StatusCode::kUnavailable));
  ASSERT_OK(manager.Spawn("second", [](WorkerContext&) -> absl::Status {
    return absl::AbortedError("second went wrong");
  }));
  EXPECT_THAT(manager.JoinAll(), StatusIs(absl::StatusCode::kUnavailable,
                                          HasSubstr("first went wrong")));
  std::vector<WorkerInfo> infos = manager.List();
  ASSERT_EQ(infos.size(), 2u);
  EXPECT_THAT(infos[0].status, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(infos[1].status, StatusIs(absl::StatusCode::kAborted));
}

TEST(WorkerManagerTest, AddedThreadIsJoinedByJoinAllAndCannotBePaused) {
  WorkerManager manager;
  absl::Notification release;
  bool ran = false;
  ASSERT_OK(manager.Add("legacy", std::thread([&] {
                          release.WaitForNotification();
                          ran = true;
                        })));
  EXPECT_THAT(manager.State("legacy"), HoldsValue(WorkerState::kRunning));
  EXPECT_EQ(manager.ActiveWorkers(), 1u);
  EXPECT_THAT(manager.Pause("legacy"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("no WorkerContext")));
  EXPECT_THAT(manager.Resume("legacy"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("no WorkerContext")));
  EXPECT_THAT(manager.Stop("legacy"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("no WorkerContext")));
  EXPECT_THAT(manager.WaitUntilParked("legacy", absl::Milliseconds(1)),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  release.Notify();
  ASSERT_OK(manager.JoinAll());
  EXPECT_TRUE(ran);
  ASSERT_OK_AND_ASSIGN(WorkerInfo info, manager.Info("legacy"));
  EXPECT_EQ(info.state, WorkerState::kStopped);
  EXPECT_FALSE(info.controllable);
  EXPECT_EQ(manager.ActiveWorkers(), 0u);
}

TEST(WorkerManagerTest, AddRefusesAThreadThatIsNotJoinable) {
  WorkerManager manager;
  EXPECT_THAT(
      manager.Add("nothing", std::thread()),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not joinable")));
  EXPECT_THAT(manager.Names(), IsEmpty());
}

TEST(WorkerManagerTest, UnknownNameIsNotFoundEverywhere) {
  WorkerManager manager;
  ASSERT_OK(manager.Spawn("known", [](WorkerContext&) {}));
  const auto not_found = StatusIs(absl::StatusCode::kNotFound,
                                  HasSubstr("no worker named \"ghost\""));
  EXPECT_THAT(manager.Pause("ghost"), not_found);
  EXPECT_THAT(manager.Resume("ghost"), not_found);
  EXPECT_THAT(manager.Stop("ghost"), not_found);
  EXPECT_THAT(manager.WaitUntilParked("ghost", absl::Milliseconds(1)),
              not_found);
  EXPECT_THAT(manager.Remove("ghost"), not_found);
  EXPECT_THAT(manager.IsPaused("ghost"), not_found);
  EXPECT_THAT(manager.State("ghost"), not_found);
  EXPECT_THAT(manager.Info("ghost"), not_found);
  ASSERT_OK(manager.JoinAll());
  EXPECT_THAT(manager.Names(), ElementsAre("known"));
}

TEST(WorkerManagerTest, NameInUseAlreadyExistsAndLeavesTheWorkerAlone) {
  WorkerManager manager;
  absl::Notification entered;
  absl::Notification release;
  ASSERT_OK(manager.Spawn("dup", [&](WorkerContext&) {
    entered.Notify();
    release.WaitForNotification();
  }));
  entered.WaitForNotification();
  bool second_ran = false;
  EXPECT_THAT(manager.Spawn("dup", [&](WorkerContext&) { second_ran = true; }),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("\"dup\"")));
  std::thread spare([] {});
  EXPECT_THAT(manager.Add("dup", std::move(spare)),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(manager.Attach("dup"),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(manager.State("dup"), HoldsValue(WorkerState::kRunning));
  EXPECT_EQ(manager.ActiveWorkers(), 1u);
  release.Notify();
  ASSERT_OK(manager.JoinAll());
  EXPECT_FALSE(second_ran);
  // Add refused the thread, so it is still ours to join.
  ASSERT_TRUE(spare.joinable());
  spare.join();
}

TEST(WorkerManagerTest, EmptyNameOrFunctionIsInvalid) {
  WorkerManager manager;
  EXPECT_THAT(manager.Spawn("", [](WorkerContext&) {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
  std::function<void(WorkerContext&)> nothing;
  EXPECT_THAT(manager.Spawn("nothing", nothing),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("empty function")));
  EXPECT_THAT(manager.Attach(""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(manager.Names(), IsEmpty());
}

TEST(WorkerManagerTest, TransitionTheStateDoesNotAllowIsFailedPrecondition) {
  WorkerManager manager;
  absl::Notification entered;
  absl::Notification release;
  ASSERT_OK(manager.Spawn("w", [&](WorkerContext& context) {
    entered.Notify();
    release.WaitForNotification();  // holds each state below until released
    while (context.Checkpoint()) {
    }
  }));
  entered.WaitForNotification();
  const auto refused = [](const char* state) {
    return StatusIs(absl::StatusCode::kFailedPrecondition,
                    HasSubstr(std::string("worker \"w\" is ") + state));
  };
  EXPECT_THAT(manager.Resume("w"), refused("running"));
  EXPECT_THAT(
      manager.WaitUntilParked("w", absl::Milliseconds(1)),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not paused")));
  ASSERT_OK(manager.Pause("w"));
  EXPECT_THAT(manager.Pause("w"), refused("paused"));
  ASSERT_OK(manager.Stop("w"));
  EXPECT_THAT(manager.Pause("w"), refused("stopping"));
  EXPECT_THAT(manager.Resume("w"), refused("stopping"));
  EXPECT_THAT(manager.Stop("w"), refused("stopping"));
  release.Notify();
  ASSERT_OK(manager.JoinAll());
  EXPECT_THAT(manager.Pause("w"), refused("stopped"));
  EXPECT_THAT(manager.Resume("w"), refused("stopped"));
  EXPECT_THAT(manager.Stop("w"), refused("stopped"));
  EXPECT_THAT(manager.State("w"), HoldsValue(WorkerState::kStopped));
}

TEST(WorkerManagerTest, NamesAndListAreSorted) {
  WorkerManager manager;
  for (const char* name : {"charlie", "alpha", "bravo"}) {
    ASSERT_OK(manager.Spawn(name, [](WorkerContext&) {}));
  }
  EXPECT_THAT(manager.Names(), ElementsAre("alpha", "bravo", "charlie"));
  ASSERT_OK(manager.JoinAll());
  std::vector<std::string> listed;
  for (const WorkerInfo& info : manager.List()) listed.push_back(info.name);
  EXPECT_THAT(listed, ElementsAre("alpha", "bravo", "charlie"));
}

TEST(WorkerManagerTest, ActiveWorkersCountsWorkersThatHaveNotEnded) {
  WorkerManager manager;
  EventRecorder recorder(manager);
  EXPECT_EQ(manager.ActiveWorkers(), 0u);
  Share<int64_t> rounds(0);
  ASSERT_OK(manager.Spawn("a", CountingWorker(rounds)));
  ASSERT_OK(manager.Spawn("b", CountingWorker(rounds)));
  ASSERT_OK(manager.Spawn("c", CountingWorker(rounds)));
  ASSERT_OK(manager.Spawn("quick", [](WorkerContext&) {}));
  recorder.WaitFor("quick", WorkerState::kStopped);
  EXPECT_EQ(manager.ActiveWorkers(), 3u);
  ASSERT_OK(manager.Pause("a"));
  EXPECT_EQ(manager.ActiveWorkers(), 3u);  // paused still counts
  ASSERT_OK(manager.Stop("b"));
  recorder.WaitFor("b", WorkerState::kStopped);
  EXPECT_EQ(manager.ActiveWorkers(), 2u);
  ASSERT_OK(manager.Remove("c"));
  EXPECT_EQ(manager.ActiveWorkers(), 1u);
  EXPECT_THAT(manager.Names(), ElementsAre("a", "b", "quick"));
}

TEST(WorkerManagerTest, RemoveStopsJoinsAndForgets) {
  WorkerManager manager;
  Share<int64_t> rounds(0);
  ASSERT_OK(manager.Spawn("counter", CountingWorker(rounds)));
  ASSERT_OK(manager.Spawn("other", CountingWorker(rounds)));
  ASSERT_OK_AND_ASSIGN(WorkerInfo last, manager.Remove("counter"));
  EXPECT_EQ(last.name, "counter");
  EXPECT_EQ(last.state, WorkerState::kStopped);
  EXPECT_THAT(manager.State("counter"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(manager.Remove("counter"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(manager.Names(), ElementsAre("other"));
  // The name is free again.
  ASSERT_OK(manager.Spawn("counter", [](WorkerContext&) {}));
  EXPECT_THAT(manager.Names(), ElementsAre("counter", "other"));
}

TEST(WorkerManagerTest, RemoveReturnsTheErrorOfAFailedWorker) {
  WorkerManager manager;
  ASSERT_OK(manager.Spawn("broken", [](WorkerContext&) -> absl::Status {
    return absl::InternalError("wiring");
  }));
  ASSERT_OK_AND_ASSIGN(WorkerInfo last, manager.Remove("broken"));
  EXPECT_EQ(last.state, WorkerState::kFailed);
  EXPECT_THAT(last.status, StatusIs(absl::StatusCode::kInternal, "wiring"));
  EXPECT_OK(manager.JoinAll());  // forgotten workers no longer count
}

TEST(WorkerManagerTest, RemoveReleasesAPausedWorkerAndJoinsAnAddedThread) {
  WorkerManager manager;
  Share<int64_t> rounds(0);
  ASSERT_OK(manager.Spawn("paused", CountingWorker(rounds)));
  ASSERT_OK(manager.Pause("paused"));
  ASSERT_OK(manager.WaitUntilParked("paused", kLongTime));
  ASSERT_OK_AND_ASSIGN(WorkerInfo paused, manager.Remove("paused"));
  EXPECT_EQ(paused.state, WorkerState::kStopped);

  std::atomic<bool> ran{false};
  ASSERT_OK(manager.Add("thread", std::thread([&] { ran = true; })));
  ASSERT_OK_AND_ASSIGN(WorkerInfo thread, manager.Remove("thread"));
  EXPECT_TRUE(ran.load());
  EXPECT_EQ(thread.state, WorkerState::kStopped);
  EXPECT_THAT(manager.Names(), IsEmpty());
}

TEST(WorkerManagerTest, RemoveAllStopsAndForgetsEveryWorker) {
  WorkerManager manager;
  Share<int64_t> rounds(0);
  ASSERT_OK(manager.Spawn("b-running", CountingWorker(rounds)));
  ASSERT_OK(manager.Spawn("a-paused", CountingWorker(rounds)));
  ASSERT_OK(manager.Pause("a-paused"));
  ASSERT_OK(manager.Add("c-thread", std::thread([] {})));
  ASSERT_OK(manager.Spawn("d-failed", [](WorkerContext&) -> absl::Status {
    return absl::CancelledError("gave up");
  }));
  ASSERT_OK_AND_ASSIGN(std::vector<WorkerInfo> last, manager.RemoveAll());
  ASSERT_EQ(last.size(), 4u);
  EXPECT_EQ(last[0].name, "a-paused");
  EXPECT_EQ(last[0].state, WorkerState::kStopped);
  EXPECT_EQ(last[1].name, "b-running");
  EXPECT_EQ(last[1].state, WorkerState::kStopped);
  EXPECT_EQ(last[2].name, "c-thread");
  EXPECT_EQ(last[2].state, WorkerState::kStopped);
  EXPECT_EQ(last[3].name, "d-failed");
  EXPECT_EQ(last[3].state, WorkerState::kFailed);
  EXPECT_THAT(last[3].status, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_THAT(manager.Names(), IsEmpty());
  EXPECT_EQ(manager.ActiveWorkers(), 0u);
  EXPECT_OK(manager.JoinAll());
}

TEST(WorkerManagerTest, AWorkerCannotWaitForItself) {
  WorkerManager manager;
  absl::Status join_all;
  absl::Status remove_self;
  absl::Status remove_all;
  ASSERT_OK(manager.Spawn("selfish", [&](WorkerContext&) {
    join_all = manager.JoinAll();
    remove_self = manager.Remove("selfish").status();
    remove_all = manager.RemoveAll().status();
  }));
  ASSERT_OK(manager.JoinAll());
  EXPECT_THAT(join_all, StatusIs(absl::StatusCode::kFailedPrecondition,
                                 HasSubstr("selfish")));
  EXPECT_THAT(remove_self, StatusIs(absl::StatusCode::kFailedPrecondition,
                                    HasSubstr("itself")));
  EXPECT_THAT(remove_all, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(manager.Names(), ElementsAre("selfish"));
}

TEST(WorkerManagerTest, DestructorStopsAndJoinsEverything) {
  Share<int64_t> rounds(0);
  std::vector<WorkerInfo> stopped;
  {
    WorkerManager manager;
    manager.AddListener([&stopped](const WorkerInfo& info) {
      if (IsFinal(info.state)) stopped.push_back(info);
    });
    ASSERT_OK(manager.Spawn("running", CountingWorker(rounds)));
    ASSERT_OK(manager.Spawn("paused", CountingWorker(rounds)));
    ASSERT_OK(manager.Pause("paused"));
  }
  // Every worker has ended, so its last event has been delivered.
  ASSERT_EQ(stopped.size(), 2u);
  EXPECT_EQ(stopped[0].state, WorkerState::kStopped);
  EXPECT_EQ(stopped[1].state, WorkerState::kStopped);
}

TEST(WorkerManagerTest, ListenerSeesEveryStateChangeInOrder) {
  WorkerManager manager;
  EventRecorder recorder(manager);
  Share<int64_t> rounds(0);
  ASSERT_OK(manager.Spawn("w", CountingWorker(rounds)));
  recorder.WaitFor("w", WorkerState::kRunning);
  ASSERT_OK(manager.Pause("w"));
  ASSERT_OK(manager.WaitUntilParked("w", kLongTime));
  ASSERT_OK(manager.Resume("w"));
  ASSERT_OK(manager.Stop("w"));
  ASSERT_OK(manager.JoinAll());
  const WorkerInfo last = recorder.WaitFor("w", WorkerState::kStopped);
  EXPECT_NE(last.stopped_at, absl::InfinitePast());
  EXPECT_THAT(recorder.States("w"),
              ElementsAre(WorkerState::kStarting, WorkerState::kRunning,
                          WorkerState::kPaused, WorkerState::kRunning,
                          WorkerState::kStopping, WorkerState::kStopped));
}

TEST(WorkerManagerTest, ListenerSeesAFailureWithItsStatus) {
  WorkerManager manager;
  EventRecorder recorder(manager);
  ASSERT_OK(manager.Spawn("bad", [](WorkerContext&) -> absl::Status {
    return absl::PermissionDeniedError("no access");
  }));
  const WorkerInfo failed = recorder.WaitFor("bad", WorkerState::kFailed);
  EXPECT_THAT(failed.status,
              StatusIs(absl::StatusCode::kPermissionDenied, "no access"));
  EXPECT_THAT(recorder.States("bad"),
              ElementsAre(WorkerState::kStarting, WorkerState::kRunning,
                          WorkerState::kFailed));
}

TEST(WorkerManagerTest, ListenerRunsWithoutTheManagersLockAndMayCallIt) {
  WorkerManager manager;
  absl::Mutex mu;
  std::vector<std::string>
      seen;  // "<state> <active workers> <state read back>"
  manager.AddListener([&](const WorkerInfo& info) {
    // Each of these takes the manager's lock: they would deadlock if it were
    // held here.
    const size_t active = manager.ActiveWorkers();
    absl::StatusOr<WorkerState> state = manager.State(info.name);
    absl::MutexLock lock(&mu);
    seen.push_back(
        std::string(WorkerStateName(info.state)) + " " +
        std::to_string(active) + " " +
        (state.ok() ? std::string(WorkerStateName(*state)) : "absent"));
  });
  absl::Notification release;
  ASSERT_OK(manager.Spawn(
      "w", [&](WorkerContext&) { release.WaitForNotification(); }));
  ASSERT_OK(manager.Pause("w"));
  release.Notify();
  ASSERT_OK(manager.JoinAll());
  absl::MutexLock lock(&mu);
  ASSERT_GE(seen.size(), 3u);
  EXPECT_EQ(seen.back(), "stopped 0 stopped");
}

TEST(WorkerManagerTest, RemovedListenerIsNotCalledAgain) {
  WorkerManager manager;
  std::atomic<int> calls{0};
  const WorkerListenerId id =
      manager.AddListener([&](const WorkerInfo&) { calls.fetch_add(1); });
  ASSERT_OK(manager.Spawn("first", [](WorkerContext&) {}));
  ASSERT_OK(manager.JoinAll());
  const int before = calls.load();
  EXPECT_EQ(before, 3);  // starting, running, stopped
  manager.RemoveListener(id);
  ASSERT_OK(manager.Spawn("second", [](WorkerContext&) {}));
  ASSERT_OK(manager.JoinAll());
  EXPECT_EQ(calls.load(), before);
  manager.RemoveListener(id);  // unknown ids are ignored
}

TEST(WorkerManagerTest, AttachedWorkerIsDrivenByItsOwner) {
  WorkerManager manager;
  EventRecorder recorder(manager);
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<WorkerControl> remote,
                       manager.Attach("remote"));
  EXPECT_THAT(manager.State("remote"), HoldsValue(WorkerState::kStarting));
  ASSERT_OK(manager.Pause("remote"));
  ASSERT_OK(
      manager.Resume("remote"));  // it never began, so it is starting again
  EXPECT_THAT(manager.State("remote"), HoldsValue(WorkerState::kStarting));
  remote->MarkRunning();
  remote->ReportProgress("3 of 9");
  EXPECT_THAT(manager.State("remote"), HoldsValue(WorkerState::kRunning));
  ASSERT_OK_AND_ASSIGN(WorkerInfo info, manager.Info("remote"));
  EXPECT_EQ(info.progress, "3 of 9");
  EXPECT_EQ(manager.ActiveWorkers(), 1u);

  // The owner learns of the stop through a listener and ends the worker.
  manager.AddListener([remote](const WorkerInfo& info) {
    if (info.name == "remote" && info.state == WorkerState::kStopping) {
      remote->Finish(absl::UnavailableError("client went away"));
    }
  });
  ASSERT_OK(manager.Stop("remote"));
  EXPECT_THAT(manager.JoinAll(), StatusIs(absl::StatusCode::kUnavailable,
                                          HasSubstr("client went away")));
  EXPECT_THAT(recorder.States("remote"),
              ElementsAre(WorkerState::kStarting, WorkerState::kPaused,
                          WorkerState::kStarting, WorkerState::kRunning,
                          WorkerState::kStopping, WorkerState::kFailed));
  ASSERT_OK_AND_ASSIGN(WorkerInfo last, manager.Remove("remote"));
  EXPECT_EQ(last.state, WorkerState::kFailed);
}

TEST(WorkerManagerTest, JoinAllWaitsForAnAttachedWorkerToFinish) {
  WorkerManager manager;
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<WorkerControl> remote,
                       manager.Attach("remote"));
  remote->MarkRunning();
  absl::Notification joined;
  absl::Status join_status;
  std::thread joiner([&] {
    join_status = manager.JoinAll();
    joined.Notify();
  });
  EXPECT_FALSE(joined.HasBeenNotified());
  remote->Finish(absl::OkStatus());
  joined.WaitForNotification();
  joiner.join();
  EXPECT_OK(join_status);
  EXPECT_THAT(manager.State("remote"), HoldsValue(WorkerState::kStopped));
}

TEST(WorkerManagerTest, SpawnAcceptsMoveOnlyFunctions) {
  WorkerManager manager;
  auto payload = std::make_unique<int>(7);
  int seen = 0;
  ASSERT_OK(manager.Spawn("move-only", [p = std::move(payload),
                                        &seen](WorkerContext&) { seen = *p; }));
  ASSERT_OK(manager.JoinAll());
  EXPECT_EQ(seen, 7);
}

TEST(WorkerManagerTest, SpawnTakesAbslAnyInvocableOfEitherKind) {
  WorkerManager manager;
  bool ran = false;
  absl::AnyInvocable<void(WorkerContext&)> plain = [&](WorkerContext&) {
    ran = true;
  };
  absl::AnyInvocable<absl::Status(WorkerContext&)> checked =
      [](WorkerContext&) { return absl::AbortedError("checked failed"); };
  ASSERT_OK(manager.Spawn("plain", std::move(plain)));
  ASSERT_OK(manager.Spawn("checked", std::move(checked)));
  EXPECT_THAT(manager.JoinAll(), StatusIs(absl::StatusCode::kAborted,
                                          HasSubstr("checked failed")));
  EXPECT_TRUE(ran);
  EXPECT_THAT(manager.State("plain"), HoldsValue(WorkerState::kStopped));
  absl::AnyInvocable<void(WorkerContext&)> empty;
  EXPECT_THAT(manager.Spawn("empty", std::move(empty)),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(SpawnWorkersTest, WorkersShareOneCounter) {
  Share<int64_t> counter(0);
  constexpr int kIncrements = 1000;
  absl::BlockingCounter all_started(3);
  auto add = [&](Share<int64_t> share, WorkerContext& context) {
    all_started.DecrementCount();
    for (int i = 0; i < kIncrements && context.Checkpoint(); ++i) {
      share.Update([](int64_t& n) { ++n; });
    }
  };
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<WorkerManager> workers,
      SpawnWorkers(counter, {
                                {"producer", add},
                                {"consumer", add},
                                {"auditor",
                                 [&](Share<int64_t> share,
                                     WorkerContext& context) -> absl::Status {
                                   all_started.DecrementCount();
                                   for (int i = 0; i < kIncrements; ++i) {
                                     if (!context.Checkpoint())
                                       return absl::CancelledError("");
                                     share.Update([](int64_t& n) { ++n; });
                                   }
                                   return absl::OkStatus();
                                 }},
                            }));
  all_started.Wait();
  ASSERT_OK(workers->JoinAll());
  EXPECT_EQ(counter.Get(), 3 * kIncrements);
  EXPECT_THAT(workers->Names(), ElementsAre("auditor", "consumer", "producer"));
  EXPECT_EQ(workers->ActiveWorkers(), 0u);
}

TEST(SpawnWorkersTest, WorkersCanBePausedLikeAnyOther) {
  Share<int64_t> counter(0);
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<WorkerManager> workers,
      SpawnWorkers(counter, {{"ticker",
                              [](Share<int64_t> share, WorkerContext& context) {
                                while (context.Checkpoint()) {
                                  share.Update([](int64_t& n) { ++n; });
                                  context.SleepFor(absl::Microseconds(100));
                                }
                              }}}));
  ASSERT_OK(counter.WaitUntil([](int64_t n) { return n > 0; }, kLongTime));
  ASSERT_OK(workers->Pause("ticker"));
  ASSERT_OK(workers->WaitUntilParked("ticker", kLongTime));
  ASSERT_OK(workers->Stop("ticker"));
  ASSERT_OK(workers->JoinAll());
  EXPECT_THAT(workers->State("ticker"), HoldsValue(WorkerState::kStopped));
}

TEST(SpawnWorkersTest, BadListStartsNothing) {
  Share<int64_t> counter(0);
  auto add = [](Share<int64_t> share, WorkerContext&) {
    share.Update([](int64_t& n) { ++n; });
  };
  EXPECT_THAT(
      SpawnWorkers(counter, {{"same", add}, {"other", add}, {"same", add}}),
      StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("\"same\"")));
  EXPECT_THAT(SpawnWorkers(counter, {{"named", add}, {"", add}}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  std::function<void(Share<int64_t>, WorkerContext&)> empty;
  EXPECT_THAT(
      SpawnWorkers(counter, {{"named", add}, {"empty", empty}}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"empty\"")));
  EXPECT_EQ(counter.Get(), 0);
  EXPECT_EQ(counter.version(), 0u);
}

TEST(SpawnWorkersTest, AcceptsAnyCopyableHandle) {
  auto counter = std::make_shared<std::atomic<int64_t>>(0);
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<WorkerManager> workers,
      SpawnWorkers(counter,
                   {{"one", [](std::shared_ptr<std::atomic<int64_t>> c,
                               WorkerContext&) { c->fetch_add(1); }},
                    {"two", [](auto c, WorkerContext&) { c->fetch_add(2); }}}));
  ASSERT_OK(workers->JoinAll());
  EXPECT_EQ(counter->load(), 3);
}

TEST(WorkerControlTest, DrivesAWorkerWithoutAManager) {
  auto control = std::make_shared<WorkerControl>("standalone", nullptr);
  absl::Notification running;
  int rounds = 0;
  std::thread thread([control, &running, &rounds] {
    control->MarkRunning();
    WorkerContext context(*control);
    running.Notify();
    while (context.Checkpoint()) ++rounds;
    control->Finish(absl::OkStatus());
  });
  running.WaitForNotification();
  ASSERT_OK(control->Pause());
  ASSERT_OK(control->WaitUntilParked(kLongTime));
  const int held_at =
      rounds;  // parked: the worker cannot touch `rounds` until released
  EXPECT_TRUE(control->Info().parked);
  EXPECT_EQ(rounds, held_at);
  ASSERT_OK(control->Stop());
  EXPECT_TRUE(control->WaitUntilFinished(kLongTime));
  thread.join();
  EXPECT_EQ(control->state(), WorkerState::kStopped);
  EXPECT_FALSE(control->Info().parked);
  control->Finish(absl::InternalError("late"));  // ignored: already finished
  EXPECT_OK(control->Info().status);
}

TEST(WorkerControlTest, TimedCheckpointReturnsWhileStillPaused) {
  WorkerControl control("paused", nullptr);
  WorkerContext context(control);
  ASSERT_OK(control.Pause());
  EXPECT_TRUE(context.Checkpoint(absl::Milliseconds(1)));
  EXPECT_TRUE(context.PauseRequested());
  EXPECT_FALSE(context.StopRequested());
  ASSERT_OK(control.Stop());
  EXPECT_FALSE(context.Checkpoint(absl::Milliseconds(1)));
  EXPECT_FALSE(context.Checkpoint());
  EXPECT_FALSE(context.PauseRequested());
}

TEST(WorkerControlTest, FinishEndsCheckpointsAndWaits) {
  WorkerControl control("w", nullptr);
  WorkerContext context(control);
  EXPECT_FALSE(control.WaitUntilFinished(absl::Milliseconds(1)));
  control.MarkRunning();
  EXPECT_TRUE(context.Checkpoint());
  control.Finish(absl::AbortedError("lost"));
  EXPECT_FALSE(context.Checkpoint());
  EXPECT_FALSE(context.SleepFor(absl::Hours(1)));
  EXPECT_TRUE(control.WaitUntilFinished(absl::Milliseconds(1)));
  EXPECT_EQ(control.state(), WorkerState::kFailed);
  EXPECT_THAT(control.Info().status, StatusIs(absl::StatusCode::kAborted));
}

}  // namespace
}  // namespace tshare::core
