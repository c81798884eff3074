// Shares unary RPCs and WaitFor against a real server on 127.0.0.1:0.
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "service/server.h"
#include "service/shares_service.h"
#include "service/store.h"
#include "tests/integration/test_server.h"
#include "tshare/v1/shares.grpc.pb.h"

namespace tshare {
namespace {

using ::testing::HasSubstr;
using namespace tshare::v1;  // NOLINT: protos only

std::unique_ptr<grpc::ClientContext> Context(
    absl::Duration timeout = absl::Seconds(20)) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return context;
}

// Polls `done` until it holds (for conditions only the server side can see).
template <typename Predicate>
bool Eventually(Predicate done, absl::Duration timeout = absl::Seconds(20)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

class SharesTest : public ::testing::Test {
 protected:
  static service::ServerOptions Options() {
    service::ServerOptions options = testing::TestServer::DefaultOptions();
    options.max_key_bytes = 64;
    options.max_value_bytes = 256;
    options.max_txn_ops = 8;
    options.max_page_size = 20;
    return options;
  }

  SharesTest()
      : server_(Options()), stub_(Shares::NewStub(server_.channel())) {}

  grpc::Status SetInt(const std::string& key, int64_t v,
                      SetResponse* response = nullptr) {
    SetRequest request;
    request.set_key(key);
    request.mutable_value()->set_int_value(v);
    SetResponse local;
    return stub_->Set(Context().get(), request,
                      response != nullptr ? response : &local);
  }
  grpc::Status Get(const std::string& key, GetResponse* response) {
    GetRequest request;
    request.set_key(key);
    return stub_->Get(Context().get(), request, response);
  }
  grpc::Status Update(const UpdateRequest& request, UpdateResponse* response) {
    return stub_->Update(Context().get(), request, response);
  }
  service::Store& store() { return server_.server().store(); }

  testing::TestServer server_;
  std::unique_ptr<Shares::Stub> stub_;
};

TEST_F(SharesTest, SetThenGetReturnsValueVersionAndRevision) {
  SetResponse set;
  ASSERT_TRUE(SetInt("visits", 1, &set).ok());
  EXPECT_EQ(set.version(), 1u);
  EXPECT_EQ(set.revision(), 1u);
  EXPECT_TRUE(set.created());
  EXPECT_EQ(set.store_id(), server_.server().store_id());
  GetResponse got;
  ASSERT_TRUE(Get("visits", &got).ok());
  EXPECT_EQ(got.value().int_value(), 1);
  EXPECT_EQ(got.version(), 1u);
  EXPECT_EQ(got.revision(), 1u);
  EXPECT_EQ(got.create_revision(), 1u);
  EXPECT_EQ(got.mod_revision(), 1u);
  EXPECT_EQ(got.store_id(), set.store_id());
  // The JSON a grpcurl user reads back.
  std::string json;
  google::protobuf::util::JsonPrintOptions print;
  ASSERT_TRUE(
      google::protobuf::util::MessageToJsonString(got.value(), &json, print)
          .ok());
  EXPECT_EQ(json, R"({"intValue":"1"})");
}

TEST_F(SharesTest, GetErrors) {
  GetResponse got;
  EXPECT_EQ(Get("missing", &got).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Get("", &got).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  grpc::Status s = Get(std::string(65, 'k'), &got);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("--max_key_bytes=64"));
}

TEST_F(SharesTest, SetErrorsChangeNothing) {
  SetRequest request;
  request.set_key("k");
  SetResponse response;
  grpc::Status unset = stub_->Set(Context().get(), request, &response);
  EXPECT_EQ(unset.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(unset.error_message(), HasSubstr("set one of int_value"));
  request.mutable_value()->set_string_value(std::string(300, 'v'));
  grpc::Status s = stub_->Set(Context().get(), request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("--max_value_bytes=256 bytes"));
  request.mutable_value()->set_int_value(1);
  request.set_key(std::string(65, 'k'));
  EXPECT_EQ(stub_->Set(Context().get(), request, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  request.set_key("k");
  request.set_if_version(3);
  s = stub_->Set(Context().get(), request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(store().revision(), 0u);
  request.set_if_version(0);
  ASSERT_TRUE(stub_->Set(Context().get(), request, &response).ok());
  EXPECT_EQ(stub_->Set(Context().get(), request, &response).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(SharesTest, UpdateOpsAndTheirErrors) {
  UpdateRequest add;
  add.set_key("n");
  add.mutable_add()->set_int_value(5);
  UpdateResponse r;
  ASSERT_TRUE(Update(add, &r).ok());
  EXPECT_EQ(r.value().int_value(), 5);
  EXPECT_TRUE(r.changed());

  UpdateRequest min = add;
  min.mutable_min()->set_int_value(7);
  ASSERT_TRUE(Update(min, &r).ok());
  EXPECT_FALSE(r.changed());
  EXPECT_EQ(r.value().int_value(), 5);
  UpdateRequest max = add;
  max.mutable_max()->set_int_value(7);
  ASSERT_TRUE(Update(max, &r).ok());
  EXPECT_EQ(r.value().int_value(), 7);

  UpdateRequest overflow = add;
  overflow.mutable_add()->set_int_value(INT64_MAX);
  EXPECT_EQ(Update(overflow, &r).error_code(), grpc::StatusCode::OUT_OF_RANGE);

  UpdateRequest mismatch = add;
  mismatch.mutable_append()->set_string_value("x");
  grpc::Status s = Update(mismatch, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("int"));
  EXPECT_THAT(s.error_message(), HasSubstr("string"));

  UpdateRequest toggle;
  toggle.set_key("flag");
  toggle.mutable_toggle();
  ASSERT_TRUE(Update(toggle, &r).ok());
  EXPECT_TRUE(r.value().bool_value());

  UpdateRequest merge;
  merge.set_key("cfg");
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(
          R"({"a":1,"b":{"c":2}})", merge.mutable_merge()->mutable_json_value())
          .ok());
  ASSERT_TRUE(Update(merge, &r).ok());
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(
                  R"({"b":null})", merge.mutable_merge()->mutable_json_value())
                  .ok());
  ASSERT_TRUE(Update(merge, &r).ok());
  EXPECT_EQ(r.value().json_value().struct_value().fields().size(), 1u);
  EXPECT_EQ(r.version(), 2u);

  UpdateRequest cas;
  cas.set_key("n");
  cas.mutable_compare_and_set()->mutable_expected()->set_int_value(1);
  cas.mutable_compare_and_set()->mutable_new_value()->set_int_value(2);
  EXPECT_EQ(Update(cas, &r).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  cas.mutable_compare_and_set()->mutable_expected()->set_int_value(7);
  ASSERT_TRUE(Update(cas, &r).ok());
  EXPECT_EQ(r.value().int_value(), 2);
  cas.set_key("absent");
  EXPECT_EQ(Update(cas, &r).error_code(), grpc::StatusCode::NOT_FOUND);

  UpdateRequest none;
  none.set_key("n");
  s = Update(none, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("set one of add, append"));

  UpdateRequest guarded = add;
  guarded.set_if_version(99);
  EXPECT_EQ(Update(guarded, &r).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(SharesTest, DeleteByKeyAndPrefix) {
  ASSERT_TRUE(SetInt("a/1", 1).ok());
  ASSERT_TRUE(SetInt("a/2", 1).ok());
  ASSERT_TRUE(SetInt("b", 1).ok());
  DeleteRequest request;
  request.set_prefix("a/");
  DeleteResponse response;
  ASSERT_TRUE(stub_->Delete(Context().get(), request, &response).ok());
  EXPECT_EQ(response.deleted(), 2u);
  EXPECT_EQ(response.revision(), 4u);
  request.Clear();
  request.set_key("b");
  request.set_if_version(5);
  EXPECT_EQ(stub_->Delete(Context().get(), request, &response).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  request.clear_if_version();
  ASSERT_TRUE(stub_->Delete(Context().get(), request, &response).ok());
  EXPECT_EQ(response.deleted(), 1u);
  ASSERT_TRUE(stub_->Delete(Context().get(), request, &response).ok());
  EXPECT_EQ(response.deleted(), 0u);
  request.set_prefix("x");
  EXPECT_EQ(stub_->Delete(Context().get(), request, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  request.Clear();
  EXPECT_EQ(stub_->Delete(Context().get(), request, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(SharesTest, ListPagesAndRefusesBadInput) {
  for (int i = 0; i < 25; ++i)
    ASSERT_TRUE(SetInt(absl::StrFormat("k%02d", i), i).ok());
  ListRequest request;
  request.set_prefix("k");
  request.set_page_size(10);
  std::vector<std::string> keys;
  do {
    ListResponse page;
    ASSERT_TRUE(stub_->List(Context().get(), request, &page).ok());
    for (const KeyValue& kv : page.kvs()) keys.push_back(kv.key());
    EXPECT_EQ(page.store_id(), server_.server().store_id());
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty());
  ASSERT_EQ(keys.size(), 25u);
  EXPECT_EQ(keys.front(), "k00");
  EXPECT_EQ(keys.back(), "k24");

  ListResponse page;
  request.set_page_size(21);
  grpc::Status s = stub_->List(Context().get(), request, &page);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("--max_page_size=20"));
  request.set_page_size(5);
  request.set_page_token("not a token");
  EXPECT_EQ(stub_->List(Context().get(), request, &page).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(SharesTest, TxnCommitsAtOneRevisionAndRefusesBadInput) {
  ASSERT_TRUE(SetInt("x", 10).ok());
  TxnRequest txn;
  Compare* c = txn.add_compares();
  c->set_key("x");
  c->set_operator_(Compare::GREATER);
  c->mutable_value()->set_int_value(3);
  UpdateRequest* dec = txn.add_success()->mutable_update();
  dec->set_key("x");
  dec->mutable_add()->set_int_value(-3);
  UpdateRequest* inc = txn.add_success()->mutable_update();
  inc->set_key("y");
  inc->mutable_add()->set_int_value(3);
  txn.add_failure()->mutable_get()->set_key("x");
  TxnResponse r;
  ASSERT_TRUE(stub_->Txn(Context().get(), txn, &r).ok());
  EXPECT_TRUE(r.succeeded());
  EXPECT_EQ(r.revision(), 2u);
  EXPECT_EQ(r.results(0).update().revision(), 2u);
  EXPECT_EQ(r.results(1).update().revision(), 2u);
  EXPECT_EQ(store().revision(), 2u);

  TxnRequest dup;
  dup.add_success()->mutable_set()->set_key("x");
  dup.mutable_success(0)->mutable_set()->mutable_value()->set_int_value(1);
  *dup.add_success() = dup.success(0);
  grpc::Status s = stub_->Txn(Context().get(), dup, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  TxnRequest big;
  for (int i = 0; i < 9; ++i) big.add_success()->mutable_get()->set_key("x");
  s = stub_->Txn(Context().get(), big, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("--max_txn_ops=8"));
  EXPECT_EQ(store().revision(), 2u);
}

TEST_F(SharesTest, TxnVersionAndExistenceComparesPickTheBranch) {
  ASSERT_TRUE(SetInt("x", 1).ok());  // version 1, revision 1
  // Create y only if x is still at version 1 and y does not exist yet; else
  // read x.
  TxnRequest txn;
  Compare* version = txn.add_compares();
  version->set_key("x");
  version->set_operator_(Compare::EQUAL);
  version->set_version(1);
  Compare* absent = txn.add_compares();
  absent->set_key("y");
  absent->set_operator_(Compare::EQUAL);
  absent->set_exists(false);
  SetRequest* create = txn.add_success()->mutable_set();
  create->set_key("y");
  create->mutable_value()->set_int_value(5);
  txn.add_failure()->mutable_get()->set_key("x");

  TxnResponse first;
  ASSERT_TRUE(stub_->Txn(Context().get(), txn, &first).ok());
  EXPECT_TRUE(first.succeeded());
  ASSERT_EQ(first.results_size(), 1);
  EXPECT_TRUE(first.results(0).set().created());
  EXPECT_EQ(first.results(0).set().revision(), 2u);
  EXPECT_EQ(first.revision(), 2u);

  // y exists now: the failure branch runs, reads x and changes nothing.
  TxnResponse second;
  ASSERT_TRUE(stub_->Txn(Context().get(), txn, &second).ok());
  EXPECT_FALSE(second.succeeded());
  ASSERT_EQ(second.results_size(), 1);
  EXPECT_EQ(second.results(0).get().value().int_value(), 1);
  EXPECT_EQ(second.results(0).get().version(), 1u);
  EXPECT_EQ(store().revision(), 2u);

  // A get of an absent key aborts the branch with NOT_FOUND, and so does a
  // failing write after a good one: neither changes anything.
  TxnRequest missing;
  missing.add_success()->mutable_get()->set_key("nope");
  TxnResponse r;
  grpc::Status s = stub_->Txn(Context().get(), missing, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("nope"));

  TxnRequest conflict;
  SetRequest* good = conflict.add_success()->mutable_set();
  good->set_key("z");
  good->mutable_value()->set_int_value(9);
  SetRequest* stale = conflict.add_success()->mutable_set();
  stale->set_key("x");
  stale->mutable_value()->set_int_value(2);
  stale->set_if_version(7);  // x is at version 1
  s = stub_->Txn(Context().get(), conflict, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  GetResponse z;
  EXPECT_EQ(Get("z", &z).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(store().revision(), 2u);
}

TEST_F(SharesTest, EightClientsAddingConcurrentlyLoseNothing) {
  constexpr int kClients = 8;
  constexpr int kAdds = 1000;
  std::vector<std::vector<uint64_t>> versions(kClients);
  absl::BlockingCounter done(kClients);
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      auto stub = Shares::NewStub(server_.NewChannel());
      UpdateRequest add;
      add.set_key("counter");
      add.mutable_add()->set_int_value(1);
      for (int i = 0; i < kAdds; ++i) {
        UpdateResponse r;
        grpc::Status s = stub->Update(Context().get(), add, &r);
        EXPECT_TRUE(s.ok()) << s.error_message();
        versions[c].push_back(r.version());
      }
      done.DecrementCount();
    });
  }
  done.Wait();
  for (std::thread& t : clients) t.join();
  GetResponse got;
  ASSERT_TRUE(Get("counter", &got).ok());
  EXPECT_EQ(got.value().int_value(), kClients * kAdds);
  std::set<uint64_t> distinct;
  for (const auto& v : versions) distinct.insert(v.begin(), v.end());
  EXPECT_EQ(distinct.size(), static_cast<size_t>(kClients * kAdds));
  EXPECT_EQ(*distinct.begin(), 1u);
  EXPECT_EQ(*distinct.rbegin(), static_cast<uint64_t>(kClients * kAdds));
}

TEST_F(SharesTest, TxnTransfersKeepTheSumUnderConcurrentWriters) {
  ASSERT_TRUE(SetInt("acct/a", 500).ok());
  ASSERT_TRUE(SetInt("acct/b", 500).ok());
  constexpr int kWriters = 4;
  constexpr int kTransfers = 200;
  absl::Notification writers_done;
  std::vector<std::thread> writers;
  absl::BlockingCounter finished(kWriters);
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      auto stub = Shares::NewStub(server_.NewChannel());
      const std::string from = w % 2 ? "acct/a" : "acct/b";
      const std::string to = w % 2 ? "acct/b" : "acct/a";
      for (int i = 0; i < kTransfers; ++i) {
        TxnRequest txn;  // move 7 if the source has at least 7
        Compare* c = txn.add_compares();
        c->set_key(from);
        c->set_operator_(Compare::GREATER);
        c->mutable_value()->set_int_value(6);
        UpdateRequest* out = txn.add_success()->mutable_update();
        out->set_key(from);
        out->mutable_add()->set_int_value(-7);
        UpdateRequest* in = txn.add_success()->mutable_update();
        in->set_key(to);
        in->mutable_add()->set_int_value(7);
        TxnResponse r;
        grpc::Status s = stub->Txn(Context().get(), txn, &r);
        EXPECT_TRUE(s.ok()) << s.error_message();
      }
      finished.DecrementCount();
    });
  }
  std::thread reader([&] {
    auto stub = Shares::NewStub(server_.NewChannel());
    TxnRequest read;
    read.add_success()->mutable_get()->set_key("acct/a");
    read.add_success()->mutable_get()->set_key("acct/b");
    int reads = 0;
    while (!writers_done.HasBeenNotified() || reads < 10) {
      TxnResponse r;
      ASSERT_TRUE(stub->Txn(Context().get(), read, &r).ok());
      const int64_t a = r.results(0).get().value().int_value();
      const int64_t b = r.results(1).get().value().int_value();
      ASSERT_EQ(a + b, 1000)
          << "a=" << a << " b=" << b << " at revision " << r.revision();
      ASSERT_GE(a, 0);
      ASSERT_GE(b, 0);
      ++reads;
    }
  });
  finished.Wait();
  writers_done.Notify();
  for (std::thread& t : writers) t.join();
  reader.join();
  GetResponse a;
  GetResponse b;
  ASSERT_TRUE(Get("acct/a", &a).ok());
  ASSERT_TRUE(Get("acct/b", &b).ok());
  EXPECT_EQ(a.value().int_value() + b.value().int_value(), 1000);
}

// --- WaitFor ---

class WaitForCall {
 public:
  WaitForCall(Shares::Stub* stub, const WaitForRequest& request,
              absl::Duration deadline = absl::Seconds(20))
      : context_(Context(deadline)), request_(request) {
    stub->async()->WaitFor(context_.get(), &request_, &response_,
                           [this](grpc::Status s) {
                             status_ = std::move(s);
                             done_.Notify();
                           });
  }
  ~WaitForCall() {
    context_->TryCancel();
    done_.WaitForNotification();
  }
  bool done() const { return done_.HasBeenNotified(); }
  const grpc::Status& Wait() {
    done_.WaitForNotification();
    return status_;
  }
  const GetResponse& response() const { return response_; }
  grpc::ClientContext* context() { return context_.get(); }

 private:
  std::unique_ptr<grpc::ClientContext> context_;
  WaitForRequest request_;
  GetResponse response_;
  grpc::Status status_;
  absl::Notification done_;
};

TEST_F(SharesTest, WaitForWakesOnlyOnItsKey) {
  ASSERT_TRUE(SetInt("watched", 1).ok());
  WaitForRequest request;
  request.set_key("watched");
  request.set_after_version(1);
  WaitForCall call(stub_.get(), request);
  ASSERT_TRUE(Eventually([&] { return store().waiter_count() == 1; }));

  ASSERT_TRUE(SetInt("other", 1).ok());
  ASSERT_TRUE(SetInt("other", 2).ok());
  // The store fires waiters inside the Set that causes it, before the Set
  // answers: the waiter is still registered, so nothing woke it.
  EXPECT_EQ(store().waiter_count(), 1u);
  EXPECT_FALSE(call.done());

  ASSERT_TRUE(SetInt("watched", 42).ok());
  const grpc::Status& s = call.Wait();
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(call.response().value().int_value(), 42);
  EXPECT_EQ(call.response().version(), 2u);
  EXPECT_EQ(store().waiter_count(), 0u);
}

TEST_F(SharesTest, WaitForAnswersAtOnceWhenAlreadyPastTheVersion) {
  ASSERT_TRUE(SetInt("k", 7).ok());
  WaitForRequest request;
  request.set_key("k");  // after_version 0: once the key exists
  GetResponse response;
  ASSERT_TRUE(stub_->WaitFor(Context().get(), request, &response).ok());
  EXPECT_EQ(response.value().int_value(), 7);
}

TEST_F(SharesTest, WaitForTimesOutWithDeadlineExceeded) {
  WaitForRequest request;
  request.set_key("never");
  request.mutable_timeout()->set_nanos(30 * 1000 * 1000);
  GetResponse response;
  grpc::Status s = stub_->WaitFor(Context().get(), request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_THAT(s.error_message(),
              HasSubstr("\"never\""));  // the server's own answer
  EXPECT_TRUE(Eventually([&] { return store().waiter_count() == 0; }));

  request.clear_timeout();  // the call's deadline applies too
  s = stub_->WaitFor(Context(absl::Milliseconds(50)).get(), request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(Eventually([&] { return store().waiter_count() == 0; }));

  request.mutable_timeout()->set_seconds(-1);
  EXPECT_EQ(stub_->WaitFor(Context().get(), request, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  request.clear_timeout();
  request.set_key("");
  EXPECT_EQ(stub_->WaitFor(Context().get(), request, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(SharesTest, WaitForWithoutAnyDeadlineWaitsForTheChange) {
  WaitForRequest request;
  request.set_key("k");  // after_version 0: until the key exists
  WaitForCall call(stub_.get(), request, absl::InfiniteDuration());
  ASSERT_TRUE(Eventually([&] { return store().waiter_count() == 1; }));
  ASSERT_TRUE(SetInt("k", 5).ok());
  ASSERT_TRUE(call.Wait().ok());
  EXPECT_EQ(call.response().value().int_value(), 5);
  EXPECT_EQ(call.response().version(), 1u);
}

TEST_F(SharesTest, CancelledWaitForIsUnregistered) {
  WaitForRequest request;
  request.set_key("k");
  WaitForCall call(stub_.get(), request);
  ASSERT_TRUE(Eventually([&] { return store().waiter_count() == 1; }));
  call.context()->TryCancel();
  EXPECT_EQ(call.Wait().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(Eventually([&] { return store().waiter_count() == 0; }));
}

TEST_F(SharesTest, ShutdownEndsWaitForAndRefusesNewCalls) {
  WaitForRequest request;
  request.set_key("k");
  WaitForCall call(stub_.get(), request);
  ASSERT_TRUE(Eventually([&] { return store().waiter_count() == 1; }));
  server_.server().shares_service().BeginShutdown();
  const grpc::Status& s = call.Wait();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(s.error_message(), "server is shutting down");
  GetResponse got;
  EXPECT_EQ(Get("k", &got).error_code(), grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace tshare
