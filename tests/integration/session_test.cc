// Shares.Session against a real server on 127.0.0.1:0: pipelined ops answered
// in order.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "service/server.h"
#include "service/shares_service.h"
#include "tests/integration/test_server.h"
#include "tshare/v1/bus.grpc.pb.h"
#include "tshare/v1/shares.grpc.pb.h"

namespace tshare {
namespace {

using ::testing::HasSubstr;
using namespace tshare::v1;  // NOLINT: protos only

std::unique_ptr<grpc::ClientContext> Context() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  return context;
}

class SessionTest : public ::testing::Test {
 protected:
  static service::ServerOptions Options() {
    service::ServerOptions options = testing::TestServer::DefaultOptions();
    options.max_session_ops = 50;
    return options;
  }
  SessionTest()
      : server_(Options()), stub_(Shares::NewStub(server_.channel())) {}

  // Sends every request, then reads every result.
  std::vector<SessionResult> RunAll(const std::vector<SessionRequest>& requests,
                                    grpc::Status* status,
                                    int* responses = nullptr) {
    auto context = Context();
    auto stream = stub_->Session(context.get());
    for (const SessionRequest& r : requests) EXPECT_TRUE(stream->Write(r));
    stream->WritesDone();
    std::vector<SessionResult> results;
    SessionResponse response;
    int count = 0;
    while (stream->Read(&response)) {
      ++count;
      for (const SessionResult& r : response.results()) results.push_back(r);
    }
    *status = stream->Finish();
    if (responses != nullptr) *responses = count;
    return results;
  }

  testing::TestServer server_;
  std::unique_ptr<Shares::Stub> stub_;
};

TEST_F(SessionTest, AThousandPipelinedOpsAreAnsweredInOrder) {
  // 100 requests of 10 ops, ids 0..999 in groups of four: a set of k<n>, a get
  // of it (OK), a get of a missing key (NOT_FOUND), an append of a string onto
  // the int (INVALID_ARGUMENT).
  std::vector<SessionRequest> requests(100);
  uint64_t id = 0;
  for (SessionRequest& request : requests) {
    for (int i = 0; i < 10; ++i) {
      SessionOp* op = request.add_ops();
      op->set_id(id);
      const std::string key = absl::StrCat("k", id / 4);
      switch (id % 4) {
        case 0:
          op->mutable_set()->set_key(key);
          op->mutable_set()->mutable_value()->set_int_value(
              static_cast<int64_t>(id));
          break;
        case 1:
          op->mutable_get()->set_key(key);
          break;
        case 2:
          op->mutable_get()->set_key(absl::StrCat("missing", id));
          break;
        case 3: {
          UpdateRequest* update = op->mutable_update();
          update->set_key(key);
          update->mutable_append()->set_string_value("x");
          break;
        }
      }
      ++id;
    }
  }
  grpc::Status status;
  int responses = 0;
  std::vector<SessionResult> results = RunAll(requests, &status, &responses);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(results.size(), 1000u);
  EXPECT_LE(responses,
            100);  // results of several requests may share a response
  for (size_t i = 0; i < results.size(); ++i) {
    const SessionResult& r = results[i];
    const uint64_t want_id = i;
    ASSERT_EQ(r.id(), want_id);
    switch (want_id % 4) {
      case 0:
        EXPECT_EQ(r.code(), 0) << r.message();
        EXPECT_EQ(r.set().store_id(), server_.server().store_id());
        EXPECT_GT(r.set().revision(), 0u);
        break;
      case 1:  // the key set by the op just before this one
        EXPECT_EQ(r.code(), 0) << r.message();
        EXPECT_EQ(r.get().value().int_value(),
                  static_cast<int64_t>(want_id - 1));
        EXPECT_EQ(r.get().store_id(), server_.server().store_id());
        break;
      case 2:
        EXPECT_EQ(r.code(), static_cast<int>(grpc::StatusCode::NOT_FOUND));
        EXPECT_THAT(r.message(), HasSubstr("does not exist"));
        EXPECT_EQ(r.result_case(), SessionResult::RESULT_NOT_SET);
        break;
      case 3:
        EXPECT_EQ(r.code(),
                  static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
        EXPECT_THAT(r.message(), HasSubstr("int"));
        break;
    }
  }
}

TEST_F(SessionTest, TooManyOpsRefusesThatRequestOnlyAndTheStreamGoesOn) {
  std::vector<SessionRequest> requests(3);
  for (int i = 0; i < 51; ++i) {
    SessionOp* op = requests[0].add_ops();
    op->set_id(static_cast<uint64_t>(i));
    op->mutable_get()->set_key("k");
  }
  SessionOp* set = requests[1].add_ops();
  set->set_id(100);
  set->mutable_set()->set_key("k");
  set->mutable_set()->mutable_value()->set_bool_value(true);
  SessionOp* empty = requests[2].add_ops();  // an op with nothing set
  empty->set_id(101);
  grpc::Status status;
  std::vector<SessionResult> results = RunAll(requests, &status);
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(results.size(), 53u);
  for (int i = 0; i < 51; ++i) {
    EXPECT_EQ(results[i].id(), static_cast<uint64_t>(i));
    EXPECT_EQ(results[i].code(),
              static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
    EXPECT_THAT(results[i].message(), HasSubstr("--max_session_ops=50"));
  }
  EXPECT_EQ(results[51].id(), 100u);
  EXPECT_EQ(results[51].code(), 0);
  EXPECT_TRUE(results[51].set().created());
  EXPECT_EQ(results[52].id(), 101u);
  EXPECT_EQ(results[52].code(),
            static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_THAT(results[52].message(), HasSubstr("set one of get, set, update"));
}

TEST_F(SessionTest, ResultsLargerThanAClientMessageComeBackInSeveralResponses) {
  // 12 gets of a 700 KB value: 8.4 MB of results for one request, more than
  // the 4 MiB a client accepts in one message by default.
  SessionRequest set;
  SessionOp* op = set.add_ops();
  op->set_id(0);
  op->mutable_set()->set_key("big");
  op->mutable_set()->mutable_value()->set_bytes_value(std::string(700000, 'b'));
  SessionRequest gets;
  for (uint64_t id = 1; id <= 12; ++id) {
    op = gets.add_ops();
    op->set_id(id);
    op->mutable_get()->set_key("big");
  }
  grpc::Status status;
  int responses = 0;
  std::vector<SessionResult> results = RunAll({set, gets}, &status, &responses);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(results.size(), 13u);
  EXPECT_GE(responses, 4);  // one for the set, at least three for the gets
  for (uint64_t id = 0; id < 13; ++id) {
    ASSERT_EQ(results[id].id(), id);
    EXPECT_EQ(results[id].code(), 0) << results[id].message();
    if (id > 0) {
      EXPECT_EQ(results[id].get().value().bytes_value().size(), 700000u);
    }
  }
}

TEST_F(SessionTest, RunsTxnListAndDeleteOps) {
  SessionRequest request;
  SessionOp* op = request.add_ops();
  op->set_id(1);
  TxnRequest* txn = op->mutable_txn();
  for (const char* key : {"a/1", "a/2"}) {
    SetRequest* set = txn->add_success()->mutable_set();
    set->set_key(key);
    set->mutable_value()->set_string_value(key);
  }
  op = request.add_ops();
  op->set_id(2);
  op->mutable_list()->set_prefix("a/");
  op = request.add_ops();
  op->set_id(3);
  op->mutable_delete_()->set_prefix("a/");
  grpc::Status status;
  std::vector<SessionResult> results = RunAll({request}, &status);
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(results.size(), 3u);
  EXPECT_TRUE(results[0].txn().succeeded());
  EXPECT_EQ(results[0].txn().revision(), 1u);
  EXPECT_EQ(results[1].list().kvs_size(), 2);
  EXPECT_EQ(results[1].list().revision(), 1u);
  EXPECT_EQ(results[2].delete_().deleted(), 2u);
  EXPECT_EQ(results[2].delete_().revision(), 2u);
}

TEST_F(SessionTest, PublishOpsReachSubscribersInOpOrder) {
  auto bus = Bus::NewStub(server_.channel());
  grpc::ClientContext sub_context;
  SubscribeRequest subscribe;
  subscribe.add_patterns("events.*");
  subscribe.mutable_progress_interval()->set_nanos(20'000'000);
  auto reader = bus->Subscribe(&sub_context, subscribe);
  BusMessage frame;
  // The first PROGRESS frame: the subscription is registered.
  while (reader->Read(&frame) && frame.kind() != BusMessage::PROGRESS) {
  }
  ASSERT_EQ(frame.kind(), BusMessage::PROGRESS);

  SessionRequest request;
  for (int i = 1; i <= 3; ++i) {
    SessionOp* op = request.add_ops();
    op->set_id(static_cast<uint64_t>(i));
    PublishRequest* publish = op->mutable_publish();
    publish->set_topic("events.new");
    publish->mutable_value()->set_int_value(i * 10);
  }
  SessionOp* bad = request.add_ops();
  bad->set_id(4);
  bad->mutable_publish()->set_topic("events.*");
  bad->mutable_publish()->mutable_value()->set_int_value(1);
  grpc::Status status;
  std::vector<SessionResult> results = RunAll({request}, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(results.size(), 4u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(results[i].code(), 0) << results[i].message();
    EXPECT_EQ(results[i].publish().sequence(), static_cast<uint64_t>(i + 1));
    EXPECT_EQ(results[i].publish().receivers(), 1u);
  }
  EXPECT_EQ(results[3].code(),
            static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_THAT(results[3].message(), HasSubstr("wildcard"));

  for (int i = 1; i <= 3; ++i) {
    do {
      ASSERT_TRUE(reader->Read(&frame));
    } while (frame.kind() == BusMessage::PROGRESS);
    // A subscriber that did not ask for max_batch gets one MESSAGE a frame.
    ASSERT_EQ(frame.kind(), BusMessage::MESSAGE);
    EXPECT_EQ(frame.topic(), "events.new");
    EXPECT_EQ(frame.sequence(), static_cast<uint64_t>(i));
    EXPECT_EQ(frame.value().int_value(), i * 10);
  }
  sub_context.TryCancel();
  reader->Finish();
}

TEST_F(SessionTest, ShutdownEndsTheSessionWithUnavailable) {
  auto context = Context();
  auto stream = stub_->Session(context.get());
  SessionRequest request;
  SessionOp* op = request.add_ops();
  op->set_id(1);
  op->mutable_get()->set_key("k");
  ASSERT_TRUE(stream->Write(request));
  SessionResponse response;
  ASSERT_TRUE(stream->Read(&response));  // the session is running
  server_.server().shares_service().BeginShutdown();
  EXPECT_FALSE(stream->Read(&response));
  grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_message(), "server is shutting down");

  auto late_context = Context();
  auto late = stub_->Session(late_context.get());
  late->WritesDone();
  EXPECT_FALSE(late->Read(&response));
  EXPECT_EQ(late->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace tshare
