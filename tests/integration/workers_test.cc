// Workers over gRPC: the server's own workers and client workers attached
// through Attach, listed and controlled alike.
#include <functional>
#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "tests/integration/test_server.h"
#include "tshare/v1/workers.grpc.pb.h"

namespace tshare {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using testing::TestServer;

constexpr char kCompactor[] = "history-compactor";

// A client process's worker: the client side of one Attach stream.
class ClientWorker {
 public:
  explicit ClientWorker(v1::Workers::Stub& stub)
      : stream_(stub.Attach(&context_)) {}
  ~ClientWorker() {
    if (finished_) return;
    context_.TryCancel();
    stream_->Finish();
  }

  bool Send(const v1::WorkerReport& report) { return stream_->Write(report); }
  bool Hello(const std::string& name) {
    v1::WorkerReport report;
    report.mutable_hello()->set_name(name);
    return Send(report);
  }
  bool State(v1::WorkerInfo::State state, const std::string& progress) {
    v1::WorkerReport report;
    report.mutable_state()->set_state(state);
    report.mutable_state()->set_progress(progress);
    return Send(report);
  }
  bool Goodbye(const std::string& error) {
    v1::WorkerReport report;
    report.mutable_goodbye()->set_error(error);
    return Send(report);
  }
  // The next command; COMMAND_UNSPECIFIED once the stream has ended.
  v1::WorkerCommand Next() {
    v1::WorkerCommand command;
    if (!stream_->Read(&command)) command.Clear();
    return command;
  }
  // Hello, then the ATTACHED answer.
  v1::WorkerCommand Attach(const std::string& name) {
    EXPECT_TRUE(Hello(name));
    return Next();
  }
  grpc::Status Finish() {
    stream_->WritesDone();
    finished_ = true;
    return stream_->Finish();
  }
  grpc::ClientContext& context() { return context_; }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::WorkerReport, v1::WorkerCommand>>
      stream_;
  bool finished_ = false;
};

// An open Workers.Watch stream.
class WorkerWatch {
 public:
  WorkerWatch(v1::Workers::Stub& stub, const std::string& name) {
    v1::WatchWorkersRequest request;
    request.set_name(name);
    reader_ = stub.Watch(&context_, request);
  }
  ~WorkerWatch() {
    context_.TryCancel();
    reader_->Finish();
  }

  // Reads events until one for `name` satisfies `want`; false if the stream
  // ended first.
  bool WaitFor(const std::string& name,
               const std::function<bool(const v1::WorkerEvent&)>& want,
               v1::WorkerEvent* found = nullptr) {
    v1::WorkerEvent event;
    while (reader_->Read(&event)) {
      if (event.worker().name() == name && want(event)) {
        if (found != nullptr) *found = event;
        return true;
      }
    }
    return false;
  }
  bool WaitForState(const std::string& name, v1::WorkerInfo::State state,
                    v1::WorkerEvent* found = nullptr) {
    return WaitFor(
        name,
        [state](const v1::WorkerEvent& e) {
          return e.worker().state() == state;
        },
        found);
  }
  grpc::ClientReader<v1::WorkerEvent>& reader() { return *reader_; }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<v1::WorkerEvent>> reader_;
};

grpc::Status Control(v1::Workers::Stub& stub, const std::string& verb,
                     const std::string& name, v1::WorkerInfo* info = nullptr) {
  v1::WorkerRef ref;
  ref.set_name(name);
  v1::WorkerInfo response;
  grpc::ClientContext context;
  grpc::Status status;
  if (verb == "pause") {
    status = stub.Pause(&context, ref, &response);
  } else if (verb == "resume") {
    status = stub.Resume(&context, ref, &response);
  } else {
    status = stub.Stop(&context, ref, &response);
  }
  if (info != nullptr) *info = response;
  return status;
}

// The worker named `name` in Workers.List; an empty WorkerInfo if it is not
// there.
v1::WorkerInfo Listed(v1::Workers::Stub& stub, const std::string& name) {
  v1::ListWorkersResponse response;
  grpc::ClientContext context;
  EXPECT_TRUE(stub.List(&context, {}, &response).ok());
  for (const v1::WorkerInfo& info : response.workers()) {
    if (info.name() == name) return info;
  }
  return v1::WorkerInfo();
}

TEST(WorkersTest, HistoryCompactorIsAServerWorkerThatCanBePausedAndResumed) {
  TestServer server;
  auto stub = v1::Workers::NewStub(server.channel());
  WorkerWatch watch(*stub, kCompactor);
  v1::WorkerEvent event;
  ASSERT_TRUE(watch.WaitForState(kCompactor, v1::WorkerInfo::RUNNING, &event));
  EXPECT_EQ(event.worker().kind(), v1::WorkerInfo::SERVER);
  EXPECT_TRUE(event.worker().has_started_at());
  EXPECT_EQ(Listed(*stub, kCompactor).kind(), v1::WorkerInfo::SERVER);

  v1::WorkerInfo info;
  ASSERT_TRUE(Control(*stub, "pause", kCompactor, &info).ok());
  EXPECT_EQ(info.state(), v1::WorkerInfo::PAUSED);
  ASSERT_TRUE(watch.WaitForState(kCompactor, v1::WorkerInfo::PAUSED));
  EXPECT_EQ(Listed(*stub, kCompactor).state(), v1::WorkerInfo::PAUSED);
  // Paused twice: the state does not allow it.
  EXPECT_EQ(Control(*stub, "pause", kCompactor).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);

  ASSERT_TRUE(Control(*stub, "resume", kCompactor, &info).ok());
  EXPECT_EQ(info.state(), v1::WorkerInfo::RUNNING);
  ASSERT_TRUE(watch.WaitForState(kCompactor, v1::WorkerInfo::RUNNING));

  ASSERT_TRUE(Control(*stub, "stop", kCompactor, &info).ok());
  ASSERT_TRUE(watch.WaitForState(kCompactor, v1::WorkerInfo::STOPPED));
  EXPECT_EQ(Listed(*stub, kCompactor).state(), v1::WorkerInfo::STOPPED);
}

TEST(WorkersTest, ClientWorkerIsPausedResumedAndStoppedThroughItsStream) {
  TestServer server;
  auto stub = v1::Workers::NewStub(server.channel());
  WorkerWatch watch(*stub, "");
  ClientWorker worker(*stub);

  v1::WorkerCommand attached = worker.Attach("indexer");
  ASSERT_EQ(attached.command(), v1::WorkerCommand::ATTACHED);
  EXPECT_EQ(attached.info().name(), "indexer");
  EXPECT_EQ(attached.info().kind(), v1::WorkerInfo::CLIENT);
  EXPECT_EQ(attached.info().state(), v1::WorkerInfo::RUNNING);
  EXPECT_THAT(attached.info().peer(), Not(IsEmpty()));
  ASSERT_TRUE(watch.WaitForState("indexer", v1::WorkerInfo::RUNNING));
  EXPECT_EQ(Listed(*stub, "indexer").kind(), v1::WorkerInfo::CLIENT);

  // Pause: the state changes at once, the command arrives on the stream, and
  // the pause stays requested until the worker says it holds still.
  v1::WorkerInfo info;
  ASSERT_TRUE(Control(*stub, "pause", "indexer", &info).ok());
  EXPECT_EQ(info.state(), v1::WorkerInfo::PAUSED);
  EXPECT_TRUE(info.pause_requested());
  v1::WorkerCommand command = worker.Next();
  EXPECT_EQ(command.command(), v1::WorkerCommand::PAUSE);
  EXPECT_EQ(command.info().state(), v1::WorkerInfo::PAUSED);
  ASSERT_TRUE(worker.State(v1::WorkerInfo::PAUSED, "10/100"));
  v1::WorkerEvent event;
  ASSERT_TRUE(watch.WaitFor(
      "indexer",
      [](const v1::WorkerEvent& e) {
        return e.worker().state() == v1::WorkerInfo::PAUSED &&
               !e.worker().pause_requested();
      },
      &event));
  EXPECT_EQ(event.kind(), v1::WorkerEvent::CHANGED);
  EXPECT_EQ(event.worker().progress(), "10/100");

  ASSERT_TRUE(Control(*stub, "resume", "indexer", &info).ok());
  EXPECT_EQ(info.state(), v1::WorkerInfo::RUNNING);
  EXPECT_EQ(worker.Next().command(), v1::WorkerCommand::RESUME);
  ASSERT_TRUE(watch.WaitForState("indexer", v1::WorkerInfo::RUNNING));

  ASSERT_TRUE(Control(*stub, "stop", "indexer", &info).ok());
  EXPECT_EQ(info.state(), v1::WorkerInfo::STOPPING);
  EXPECT_TRUE(info.stop_requested());
  EXPECT_EQ(worker.Next().command(), v1::WorkerCommand::STOP);
  ASSERT_TRUE(worker.Goodbye(""));
  EXPECT_TRUE(worker.Finish().ok());
  ASSERT_TRUE(watch.WaitForState("indexer", v1::WorkerInfo::STOPPED));
  EXPECT_EQ(Listed(*stub, "indexer").state(), v1::WorkerInfo::STOPPED);
}

TEST(WorkersTest, BrokenStreamMarksTheWorkerFailedAtOnce) {
  TestServer server;
  auto stub = v1::Workers::NewStub(server.channel());
  WorkerWatch watch(*stub, "crawler");
  ClientWorker worker(*stub);
  ASSERT_EQ(worker.Attach("crawler").command(), v1::WorkerCommand::ATTACHED);
  worker.context().TryCancel();
  v1::WorkerEvent event;
  ASSERT_TRUE(watch.WaitForState("crawler", v1::WorkerInfo::FAILED, &event));
  EXPECT_EQ(event.worker().error(), "client disconnected");
  EXPECT_EQ(Listed(*stub, "crawler").state(), v1::WorkerInfo::FAILED);
}

TEST(WorkersTest, StreamClosedWithoutGoodbyeMarksTheWorkerFailed) {
  TestServer server;
  auto stub = v1::Workers::NewStub(server.channel());
  ClientWorker worker(*stub);
  ASSERT_EQ(worker.Attach("loader").command(), v1::WorkerCommand::ATTACHED);
  EXPECT_EQ(worker.Finish().error_code(), grpc::StatusCode::ABORTED);
  v1::WorkerInfo info = Listed(*stub, "loader");
  EXPECT_EQ(info.state(), v1::WorkerInfo::FAILED);
  EXPECT_EQ(info.error(), "client disconnected");
}

TEST(WorkersTest, GoodbyeEndsTheWorkerStoppedOrFailed) {
  TestServer server;
  auto stub = v1::Workers::NewStub(server.channel());
  {
    ClientWorker worker(*stub);
    ASSERT_EQ(worker.Attach("done").command(), v1::WorkerCommand::ATTACHED);
    ASSERT_TRUE(worker.Goodbye(""));
    EXPECT_TRUE(worker.Finish().ok());
  }
  {
    ClientWorker worker(*stub);
    ASSERT_EQ(worker.Attach("broken").command(), v1::WorkerCommand::ATTACHED);
    ASSERT_TRUE(worker.Goodbye("disk full"));
    EXPECT_TRUE(worker.Finish().ok());
  }
  EXPECT_EQ(Listed(*stub, "done").state(), v1::WorkerInfo::STOPPED);
  v1::WorkerInfo broken = Listed(*stub, "broken");
  EXPECT_EQ(broken.state(), v1::WorkerInfo::FAILED);
  EXPECT_EQ(broken.error(), "disk full");
}

TEST(WorkersTest, PausingAStoppedWorkerIsFailedPrecondition) {
  TestServer server;
  auto stub = v1::Workers::NewStub(server.channel());
  ClientWorker worker(*stub);
  ASSERT_EQ(worker.Attach("finished").command(), v1::WorkerCommand::ATTACHED);
  ASSERT_TRUE(worker.Goodbye(""));
  ASSERT_TRUE(worker.Finish().ok());
  grpc::Status status = Control(*stub, "pause", "finished");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("stopped"));
  EXPECT_EQ(Control(*stub, "resume", "finished").error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Control(*stub, "stop", "finished").error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST(WorkersTest, UnknownWorkerIsNotFoundAndEmptyNameInvalid) {
  TestServer server;
  auto stub = v1::Workers::NewStub(server.channel());
  for (const char* verb : {"pause", "resume", "stop"}) {
    EXPECT_EQ(Control(*stub, verb, "nobody").error_code(),
              grpc::StatusCode::NOT_FOUND)
        << verb;
    EXPECT_EQ(Control(*stub, verb, "").error_code(),
              grpc::StatusCode::INVALID_ARGUMENT)
        << verb;
  }
}

TEST(WorkersTest, NameInUseIsAlreadyExists) {
  TestServer server;
  auto stub = v1::Workers::NewStub(server.channel());
  ClientWorker first(*stub);
  ASSERT_EQ(first.Attach("indexer").command(), v1::WorkerCommand::ATTACHED);

  ClientWorker second(*stub);
  EXPECT_EQ(second.Attach("indexer").command(),
            v1::WorkerCommand::COMMAND_UNSPECIFIED);
  EXPECT_EQ(second.Finish().error_code(), grpc::StatusCode::ALREADY_EXISTS);

  ClientWorker third(*stub);
  EXPECT_EQ(third.Attach(kCompactor).command(),
            v1::WorkerCommand::COMMAND_UNSPECIFIED);
  EXPECT_EQ(third.Finish().error_code(), grpc::StatusCode::ALREADY_EXISTS);

  // The first is untouched.
  EXPECT_EQ(Listed(*stub, "indexer").state(), v1::WorkerInfo::RUNNING);
}

TEST(WorkersTest, EndedClientWorkerCanAttachAgain) {
  TestServer server;
  auto stub = v1::Workers::NewStub(server.channel());
  WorkerWatch watch(*stub, "indexer");
  {
    ClientWorker worker(*stub);
    ASSERT_EQ(worker.Attach("indexer").command(), v1::WorkerCommand::ATTACHED);
    worker.context().TryCancel();
  }
  ASSERT_TRUE(watch.WaitForState("indexer", v1::WorkerInfo::FAILED));
  ClientWorker again(*stub);
  v1::WorkerCommand attached = again.Attach("indexer");
  ASSERT_EQ(attached.command(), v1::WorkerCommand::ATTACHED);
  EXPECT_EQ(attached.info().state(), v1::WorkerInfo::RUNNING);
  ASSERT_TRUE(watch.WaitFor("indexer", [](const v1::WorkerEvent& e) {
    return e.kind() == v1::WorkerEvent::REMOVED;
  }));
  ASSERT_TRUE(watch.WaitForState("indexer", v1::WorkerInfo::RUNNING));
}

TEST(WorkersTest, FirstReportMustBeAValidHello) {
  TestServer server;
  auto stub = v1::Workers::NewStub(server.channel());
  {
    ClientWorker worker(*stub);
    ASSERT_TRUE(worker.State(v1::WorkerInfo::RUNNING, ""));
    EXPECT_EQ(worker.Next().command(), v1::WorkerCommand::COMMAND_UNSPECIFIED);
    EXPECT_EQ(worker.Finish().error_code(),
              grpc::StatusCode::FAILED_PRECONDITION);
  }
  {
    ClientWorker worker(*stub);
    EXPECT_EQ(worker.Attach("").command(),
              v1::WorkerCommand::COMMAND_UNSPECIFIED);
    EXPECT_EQ(worker.Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
}

TEST(WorkersTest, WatchStartsWithASnapshot) {
  TestServer server;
  auto stub = v1::Workers::NewStub(server.channel());
  ClientWorker worker(*stub);
  ASSERT_EQ(worker.Attach("indexer").command(), v1::WorkerCommand::ATTACHED);
  WorkerWatch watch(*stub, "indexer");
  v1::WorkerEvent event;
  ASSERT_TRUE(watch.reader().Read(&event));
  EXPECT_EQ(event.kind(), v1::WorkerEvent::SNAPSHOT);
  EXPECT_EQ(event.worker().name(), "indexer");
  EXPECT_EQ(event.worker().state(), v1::WorkerInfo::RUNNING);
}

}  // namespace
}  // namespace tshare
