// Client::RunWorker against a real server: the server lists, pauses, resumes
// and stops the worker through Workers calls; a broken Attach stream marks it
// FAILED and the client reattaches (through a TCP proxy the test cuts).
#include "client/worker.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "client/testing/tcp_proxy.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/integration/test_server.h"
#include "tests/status_matchers.h"
#include "tshare/v1/workers.grpc.pb.h"

namespace tshare::client {
namespace {

using ::testing::HasSubstr;
using ::tshare::client::testing::TcpProxy;
using ::tshare::testing::IsOk;
using ::tshare::testing::StatusIs;
using ::tshare::testing::TestServer;

constexpr absl::Duration kWait = absl::Seconds(20);

// Steps of a worker that loops on Checkpoint.
class Steps final {
 public:
  void Step() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    ++steps_;
  }
  int64_t count() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return steps_;
  }
  bool WaitAbove(int64_t n, absl::Duration timeout) const
      ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    auto above = [&]()
                     ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return steps_ > n; };
    return mu_.AwaitWithDeadline(absl::Condition(&above),
                                 absl::Now() + timeout);
  }

 private:
  mutable absl::Mutex mu_;
  int64_t steps_ ABSL_GUARDED_BY(mu_) = 0;
};

// A worker that reports "started", then steps until asked to stop.
auto LoopingWorker(Steps& steps) {
  return [&steps](WorkerContext& ctx) -> absl::Status {
    ctx.ReportProgress("started");
    while (ctx.Checkpoint()) {
      steps.Step();
      ctx.SleepFor(absl::Milliseconds(2));
    }
    return absl::OkStatus();
  };
}

class WorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(client_, Client::Connect(server_.address()));
    workers_ = v1::Workers::NewStub(server_.NewChannel());
  }

  // Reads Workers.Watch for `name` until the server shows it in a state that
  // `pred` accepts.
  std::optional<v1::WorkerInfo> WaitForWorker(
      const std::string& name,
      std::function<bool(const v1::WorkerInfo&)> pred) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + kWait));
    v1::WatchWorkersRequest request;
    request.set_name(name);
    std::unique_ptr<grpc::ClientReader<v1::WorkerEvent>> reader =
        workers_->Watch(&ctx, request);
    v1::WorkerEvent event;
    std::optional<v1::WorkerInfo> found;
    while (reader->Read(&event)) {
      if (event.kind() != v1::WorkerEvent::REMOVED && pred(event.worker())) {
        found = event.worker();
        ctx.TryCancel();
        break;
      }
    }
    reader->Finish().ok();
    return found;
  }
  std::optional<v1::WorkerInfo> WaitForState(const std::string& name,
                                             v1::WorkerInfo::State state) {
    return WaitForWorker(name, [state](const v1::WorkerInfo& w) {
      return w.state() == state && !w.pause_requested();
    });
  }

  absl::StatusOr<v1::WorkerInfo> Control(
      grpc::Status (v1::Workers::Stub::*call)(grpc::ClientContext*,
                                              const v1::WorkerRef&,
                                              v1::WorkerInfo*),
      const std::string& name) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + kWait));
    v1::WorkerRef ref;
    ref.set_name(name);
    v1::WorkerInfo info;
    grpc::Status status = (workers_.get()->*call)(&ctx, ref, &info);
    if (!status.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          status.error_message());
    }
    return info;
  }

  TestServer server_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<v1::Workers::Stub> workers_;
};

TEST_F(WorkerTest, TheServerListsTheWorkerWithItsProgress) {
  Steps steps;
  ASSERT_OK_AND_ASSIGN(WorkerHandle worker,
                       client_->RunWorker("indexer", LoopingWorker(steps)));
  EXPECT_EQ(worker.name(), "indexer");
  std::optional<v1::WorkerInfo> info = WaitForWorker(
      "indexer",
      [](const v1::WorkerInfo& w) { return w.progress() == "started"; });
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->kind(), v1::WorkerInfo::CLIENT);
  EXPECT_EQ(info->state(), v1::WorkerInfo::RUNNING);
  EXPECT_FALSE(info->peer().empty());
  EXPECT_TRUE(worker.attached());
  EXPECT_EQ(worker.state(), WorkerState::kRunning);
  EXPECT_OK(worker.Stop());
}

TEST_F(WorkerTest, PausedAndResumedThroughWorkersCalls) {
  Steps steps;
  ASSERT_OK_AND_ASSIGN(WorkerHandle worker,
                       client_->RunWorker("w", LoopingWorker(steps)));
  ASSERT_TRUE(steps.WaitAbove(0, kWait));
  ASSERT_OK(Control(&v1::Workers::Stub::Pause, "w").status());
  // The worker reaches a checkpoint and acknowledges: PAUSED, no longer
  // pause_requested.
  ASSERT_TRUE(WaitForState("w", v1::WorkerInfo::PAUSED).has_value());
  EXPECT_EQ(worker.state(), WorkerState::kPaused);
  const int64_t paused_at = steps.count();
  ASSERT_OK(Control(&v1::Workers::Stub::Resume, "w").status());
  ASSERT_TRUE(steps.WaitAbove(paused_at, kWait));
  ASSERT_TRUE(WaitForState("w", v1::WorkerInfo::RUNNING).has_value());
  EXPECT_EQ(worker.state(), WorkerState::kRunning);
  EXPECT_OK(worker.Stop());
}

TEST_F(WorkerTest, ListedPausedResumedAndStoppedFromAnotherClient) {
  Steps steps;
  ASSERT_OK_AND_ASSIGN(WorkerHandle worker,
                       client_->RunWorker("w", LoopingWorker(steps)));
  ASSERT_TRUE(steps.WaitAbove(0, kWait));
  // Another client process would do the same: control goes through the server.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Client> controller,
                       Client::Connect(server_.address()));

  ASSERT_OK_AND_ASSIGN(std::vector<WorkerInfo> listed,
                       controller->ListWorkers());
  bool saw_server_worker = false;
  bool saw_w = false;
  for (const WorkerInfo& info : listed) {
    if (info.name == "w") {
      saw_w = true;
      EXPECT_EQ(info.kind, WorkerInfo::Kind::kClient);
      EXPECT_EQ(info.state, WorkerState::kRunning);
      EXPECT_FALSE(info.peer.empty());
      EXPECT_GT(info.started_at, absl::Now() - absl::Hours(1));
    } else if (info.kind == WorkerInfo::Kind::kServer) {
      saw_server_worker = true;  // history-compactor
    }
  }
  EXPECT_TRUE(saw_w);
  EXPECT_TRUE(saw_server_worker);

  ASSERT_OK_AND_ASSIGN(WorkerInfo paused, controller->PauseWorker("w"));
  EXPECT_EQ(paused.name, "w");
  EXPECT_TRUE(paused.pause_requested || paused.state == WorkerState::kPaused);
  ASSERT_TRUE(WaitForState("w", v1::WorkerInfo::PAUSED).has_value());
  EXPECT_EQ(worker.state(), WorkerState::kPaused);
  const int64_t paused_at = steps.count();

  ASSERT_OK(controller->ResumeWorker("w").status());
  ASSERT_TRUE(steps.WaitAbove(paused_at, kWait));

  ASSERT_OK_AND_ASSIGN(WorkerInfo stopping, controller->StopWorker("w"));
  EXPECT_TRUE(stopping.stop_requested ||
              stopping.state == WorkerState::kStopped);
  EXPECT_OK(worker.Join());
  ASSERT_TRUE(WaitForState("w", v1::WorkerInfo::STOPPED).has_value());

  // The errors, with their codes: no such worker, no name, an ended worker.
  EXPECT_THAT(controller->PauseWorker("nobody").status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("nobody")));
  EXPECT_THAT(controller->ResumeWorker("").status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(controller->PauseWorker("w").status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(WorkerTest, StoppedThroughAWorkersCallTheFunctionReturns) {
  Steps steps;
  ASSERT_OK_AND_ASSIGN(WorkerHandle worker,
                       client_->RunWorker("w", LoopingWorker(steps)));
  ASSERT_TRUE(steps.WaitAbove(0, kWait));
  ASSERT_OK(Control(&v1::Workers::Stub::Stop, "w").status());
  EXPECT_OK(worker.Join());
  EXPECT_EQ(worker.state(), WorkerState::kStopped);
  ASSERT_TRUE(WaitForState("w", v1::WorkerInfo::STOPPED).has_value());
}

TEST_F(WorkerTest, APausedWorkerStopsFromThePause) {
  Steps steps;
  ASSERT_OK_AND_ASSIGN(WorkerHandle worker,
                       client_->RunWorker("w", LoopingWorker(steps)));
  ASSERT_OK(Control(&v1::Workers::Stub::Pause, "w").status());
  ASSERT_TRUE(WaitForState("w", v1::WorkerInfo::PAUSED).has_value());
  EXPECT_OK(worker.Stop());
  EXPECT_EQ(worker.state(), WorkerState::kStopped);
  ASSERT_TRUE(WaitForState("w", v1::WorkerInfo::STOPPED).has_value());
}

TEST_F(WorkerTest, AnErrorOfTheFunctionMarksTheWorkerFailed) {
  ASSERT_OK_AND_ASSIGN(
      WorkerHandle worker,
      client_->RunWorker("w", [](WorkerContext& ctx) -> absl::Status {
        ctx.Checkpoint();
        return absl::DataLossError("disk full");
      }));
  EXPECT_THAT(worker.Join(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("disk full")));
  EXPECT_EQ(worker.state(), WorkerState::kFailed);
  std::optional<v1::WorkerInfo> info =
      WaitForState("w", v1::WorkerInfo::FAILED);
  ASSERT_TRUE(info.has_value());
  EXPECT_THAT(info->error(), HasSubstr("disk full"));
}

TEST_F(WorkerTest, AVoidFunctionAndTheHandlesStop) {
  absl::Notification started;
  ASSERT_OK_AND_ASSIGN(WorkerHandle worker,
                       client_->RunWorker("v", [&](WorkerContext& ctx) {
                         started.Notify();
                         while (!ctx.StopRequested())
                           ctx.SleepFor(absl::Seconds(10));
                       }));
  started.WaitForNotification();
  EXPECT_OK(worker.Stop());
  EXPECT_OK(worker.Stop());  // Idempotent.
  ASSERT_TRUE(WaitForState("v", v1::WorkerInfo::STOPPED).has_value());
  absl::Status result;
  EXPECT_TRUE(worker.JoinUntil(absl::Now(), &result));
  EXPECT_THAT(result, IsOk());
}

TEST_F(WorkerTest, ANameInUseIsAlreadyExistsAndABadNameInvalidArgument) {
  Steps steps;
  ASSERT_OK_AND_ASSIGN(WorkerHandle worker,
                       client_->RunWorker("dup", LoopingWorker(steps)));
  EXPECT_THAT(client_->RunWorker("dup", LoopingWorker(steps)),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(client_->RunWorker("", LoopingWorker(steps)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(client_->RunWorker(std::string(10000, 'x'), LoopingWorker(steps)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_OK(worker.Stop());
}

TEST_F(WorkerTest, ABrokenAttachStreamMarksItFailedThenTheClientReattaches) {
  TcpProxy proxy(server_.address());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Client> via_proxy,
                       Client::Connect(proxy.address()));
  Steps steps;
  ASSERT_OK_AND_ASSIGN(WorkerHandle worker,
                       via_proxy->RunWorker("w", LoopingWorker(steps)));
  ASSERT_TRUE(WaitForWorker("w", [](const v1::WorkerInfo& w) {
                return w.progress() == "started";
              }).has_value());

  proxy.SetBlocked(true);
  proxy.CutAll();
  std::optional<v1::WorkerInfo> failed =
      WaitForState("w", v1::WorkerInfo::FAILED);
  ASSERT_TRUE(failed.has_value());
  EXPECT_THAT(failed->error(), HasSubstr("disconnected"));
  const int64_t during = steps.count();
  ASSERT_TRUE(
      steps.WaitAbove(during, kWait));  // The function keeps running meanwhile.

  proxy.SetBlocked(false);
  // Reattached under the same name, with its progress reported again.
  ASSERT_TRUE(WaitForWorker("w", [](const v1::WorkerInfo& w) {
                return w.state() == v1::WorkerInfo::RUNNING &&
                       w.progress() == "started";
              }).has_value());
  EXPECT_GE(worker.reattaches(), 1u);

  // The new registration is controlled as before.
  ASSERT_OK(Control(&v1::Workers::Stub::Stop, "w").status());
  EXPECT_OK(worker.Join());
  ASSERT_TRUE(WaitForState("w", v1::WorkerInfo::STOPPED).has_value());
}

TEST_F(WorkerTest, APausedWorkerStaysPausedAcrossAReattach) {
  TcpProxy proxy(server_.address());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Client> via_proxy,
                       Client::Connect(proxy.address()));
  Steps steps;
  ASSERT_OK_AND_ASSIGN(WorkerHandle worker,
                       via_proxy->RunWorker("w", LoopingWorker(steps)));
  ASSERT_OK(Control(&v1::Workers::Stub::Pause, "w").status());
  ASSERT_TRUE(WaitForState("w", v1::WorkerInfo::PAUSED).has_value());

  proxy.SetBlocked(true);
  proxy.CutAll();
  ASSERT_TRUE(WaitForState("w", v1::WorkerInfo::FAILED).has_value());
  const int64_t paused_at = steps.count();
  proxy.SetBlocked(false);

  // The client pauses its new registration and acknowledges: PAUSED again.
  ASSERT_TRUE(WaitForWorker("w", [](const v1::WorkerInfo& w) {
                return w.state() == v1::WorkerInfo::PAUSED &&
                       !w.pause_requested();
              }).has_value());
  EXPECT_EQ(worker.state(), WorkerState::kPaused);
  EXPECT_EQ(steps.count(), paused_at);
  ASSERT_OK(Control(&v1::Workers::Stub::Resume, "w").status());
  ASSERT_TRUE(steps.WaitAbove(paused_at, kWait));
  EXPECT_OK(worker.Stop());
}

TEST_F(WorkerTest, AStopWhileDetachedIsReportedAfterTheReattach) {
  TcpProxy proxy(server_.address());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Client> via_proxy,
                       Client::Connect(proxy.address()));
  Steps steps;
  ASSERT_OK_AND_ASSIGN(
      WorkerHandle worker,
      via_proxy->RunWorker("w", LoopingWorker(steps),
                           {.goodbye_timeout = absl::Seconds(30)}));
  ASSERT_TRUE(steps.WaitAbove(0, kWait));
  proxy.SetBlocked(true);
  proxy.CutAll();
  ASSERT_TRUE(WaitForState("w", v1::WorkerInfo::FAILED).has_value());
  worker.RequestStop();
  proxy.SetBlocked(false);
  EXPECT_OK(worker.Join());
  // The goodbye reached the server on the new stream: STOPPED, not left FAILED.
  ASSERT_TRUE(WaitForState("w", v1::WorkerInfo::STOPPED).has_value());
}

}  // namespace
}  // namespace tshare::client
