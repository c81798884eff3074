// Client's unary calls against a real server on 127.0.0.1:0: every call's
// success and error paths, the optimistic Update loop under contention, and the
// async forms.
#include "client/client.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/test_server.h"
#include "tests/status_matchers.h"

namespace tshare::client {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::tshare::testing::IsOk;
using ::tshare::testing::StatusIs;

MATCHER_P(IsOkAndHolds, matcher, "is OK and holds a matching value") {
  if (!arg.ok()) {
    *result_listener << "whose status is " << arg.status();
    return false;
  }
  return ::testing::ExplainMatchResult(matcher, *arg, result_listener);
}

// A loopback port that nothing listens on (bound once, then closed).
int ClosedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Client>> client =
        Client::Connect(server_.address());
    ASSERT_OK(client.status());
    client_ = *std::move(client);
  }

  tshare::testing::TestServer server_;
  std::unique_ptr<Client> client_;
};

TEST(ClientConnectTest, EmptyTargetIsInvalidArgument) {
  EXPECT_THAT(Client::Connect(""), StatusIs(absl::StatusCode::kInvalidArgument,
                                            HasSubstr("HOST:PORT")));
  EXPECT_THAT(Client::Connect("127.0.0.1:1",
                              {.default_deadline = absl::ZeroDuration()}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("default_deadline")));
}

TEST(ClientConnectTest, ConnectTimeoutToAClosedPortIsUnavailable) {
  const std::string target = absl::StrCat("127.0.0.1:", ClosedPort());
  EXPECT_THAT(
      Client::Connect(target, {.connect_timeout = absl::Milliseconds(300)}),
      StatusIs(absl::StatusCode::kUnavailable, HasSubstr(target)));
}

TEST(ClientConnectTest, CallsToAClosedPortFailWithUnavailable) {
  const std::string target = absl::StrCat("127.0.0.1:", ClosedPort());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Client> client, Client::Connect(target));
  EXPECT_THAT(client->Get<int64_t>("k", {.timeout = absl::Seconds(2)}),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr(target)));
}

TEST_F(ClientTest, SetThenGetKeepsEveryKind) {
  ASSERT_OK_AND_ASSIGN(WriteResult w, client_->Set("i", int64_t{-42}));
  EXPECT_EQ(w.version, 1u);
  EXPECT_TRUE(w.created);
  EXPECT_FALSE(w.store_id.empty());
  ASSERT_OK(client_->Set("d", 2.5).status());
  ASSERT_OK(client_->Set("s", std::string("text")).status());
  ASSERT_OK(client_->Set("b", true).status());
  ASSERT_OK(client_->Set("y", Bytes{std::string("\0\1\2", 3)}).status());
  const Json doc =
      Json::parse(R"({"name":"x","tags":["a","b"],"n":3,"ok":true,"z":null})");
  ASSERT_OK(client_->Set("j", doc).status());

  EXPECT_THAT(client_->Get<int64_t>("i"), IsOkAndHolds(-42));
  EXPECT_THAT(client_->Get<double>("d"), IsOkAndHolds(2.5));
  EXPECT_THAT(client_->Get<std::string>("s"),
              IsOkAndHolds(std::string("text")));
  EXPECT_THAT(client_->Get<bool>("b"), IsOkAndHolds(true));
  ASSERT_OK_AND_ASSIGN(Bytes bytes, client_->Get<Bytes>("y"));
  EXPECT_EQ(bytes.data, std::string("\0\1\2", 3));
  ASSERT_OK_AND_ASSIGN(Json json, client_->Get<Json>("j"));
  EXPECT_EQ(json, doc);

  ASSERT_OK_AND_ASSIGN(Versioned<int64_t> v,
                       client_->GetVersioned<int64_t>("i"));
  EXPECT_EQ(v.value, -42);
  EXPECT_EQ(v.version, 1u);
  EXPECT_EQ(v.mod_revision, w.revision);
  EXPECT_EQ(v.create_revision, w.revision);
  EXPECT_GE(v.revision, w.revision);
  EXPECT_EQ(v.store_id, w.store_id);
}

TEST_F(ClientTest, LiteralsPickTheirKinds) {
  ASSERT_OK(client_->Set("visits", 1).status());
  ASSERT_OK_AND_ASSIGN(Value visits, client_->Get<Value>("visits"));
  EXPECT_EQ(visits.kind(), ValueKind::kInt);
  ASSERT_OK(client_->Set("greeting", "hello").status());
  ASSERT_OK_AND_ASSIGN(Value greeting, client_->Get<Value>("greeting"));
  EXPECT_EQ(greeting.kind(), ValueKind::kString);
  EXPECT_EQ(greeting.string_value(), "hello");
  ASSERT_OK_AND_ASSIGN(int small, client_->Get<int>("visits"));
  EXPECT_EQ(small, 1);
}

TEST_F(ClientTest, GetOfAMissingKeyIsNotFound) {
  EXPECT_THAT(client_->Get<int64_t>("nope"),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(client_->GetValue("nope"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(ClientTest, GetOfAnotherKindIsFailedPreconditionNeverAConversion) {
  ASSERT_OK(client_->Set("x", "text").status());
  EXPECT_THAT(client_->Get<int64_t>("x"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("key \"x\" holds a string, not an int")));
  ASSERT_OK(client_->Set("n", 1).status());
  EXPECT_THAT(client_->Get<double>("n"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("not a double")));
  EXPECT_THAT(client_->Get<Json>("n"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(ClientTest, SetIfVersionWritesOnlyOnAMatch) {
  ASSERT_OK_AND_ASSIGN(WriteResult first,
                       client_->Set("k", 1, {.if_version = 0}));
  EXPECT_EQ(first.version, 1u);
  EXPECT_THAT(client_->Set("k", 2, {.if_version = 0}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(client_->Set("k", 2, {.if_version = 7}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK_AND_ASSIGN(WriteResult second,
                       client_->Set("k", 2, {.if_version = 1}));
  EXPECT_EQ(second.version, 2u);
  EXPECT_FALSE(second.created);
  EXPECT_THAT(client_->Get<int64_t>("k"), IsOkAndHolds(2));
}

TEST_F(ClientTest, ExpiredDeadlineIsDeadlineExceeded) {
  EXPECT_THAT(
      client_->Get<int64_t>("k", {.deadline = absl::Now() - absl::Seconds(1)}),
      StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST_F(ClientTest, AtomicOpsReturnTheNewValueAndVersion) {
  ASSERT_OK_AND_ASSIGN(OpResult<int64_t> added, client_->Add("visits", 5));
  EXPECT_EQ(added.value, 5);  // An absent key starts from 0.
  EXPECT_EQ(added.version, 1u);
  ASSERT_OK_AND_ASSIGN(added, client_->Add("visits", 1));
  EXPECT_EQ(added.value, 6);
  EXPECT_EQ(added.version, 2u);
  EXPECT_TRUE(added.changed);

  ASSERT_OK(client_->Set("ratio", 1.5).status());
  ASSERT_OK_AND_ASSIGN(OpResult<double> ratio, client_->Add("ratio", 0.25));
  EXPECT_DOUBLE_EQ(ratio.value, 1.75);

  ASSERT_OK_AND_ASSIGN(OpResult<std::string> log, client_->Append("log", "a"));
  ASSERT_OK_AND_ASSIGN(log, client_->Append("log", std::string("bc")));
  EXPECT_EQ(log.value, "abc");

  ASSERT_OK(client_->Set("blob", Bytes{"x"}).status());
  ASSERT_OK_AND_ASSIGN(OpResult<Bytes> blob,
                       client_->Append("blob", Bytes{"yz"}));
  EXPECT_EQ(blob.value.data, "xyz");

  ASSERT_OK(client_->Set("list", Json::array({1})).status());
  ASSERT_OK_AND_ASSIGN(OpResult<Json> list,
                       client_->Append("list", Json("two")));
  EXPECT_EQ(list.value, Json::parse(R"([1,"two"])"));

  ASSERT_OK(client_->Set("cfg", Json{{"a", 1}, {"b", 2}}).status());
  ASSERT_OK_AND_ASSIGN(
      OpResult<Json> cfg,
      client_->Merge("cfg", Json::parse(R"({"b":null,"c":{"d":true}})")));
  EXPECT_EQ(cfg.value, Json::parse(R"({"a":1,"c":{"d":true}})"));

  ASSERT_OK_AND_ASSIGN(OpResult<int64_t> low, client_->Min("visits", 3));
  EXPECT_EQ(low.value, 3);
  EXPECT_TRUE(low.changed);
  ASSERT_OK_AND_ASSIGN(low, client_->Min("visits", 10));
  EXPECT_EQ(low.value, 3);
  EXPECT_FALSE(low.changed);
  ASSERT_OK_AND_ASSIGN(OpResult<int64_t> high, client_->Max("visits", 9));
  EXPECT_EQ(high.value, 9);

  ASSERT_OK_AND_ASSIGN(OpResult<bool> flag, client_->Toggle("flag"));
  EXPECT_TRUE(flag.value);  // An absent key starts from false.
  ASSERT_OK_AND_ASSIGN(flag, client_->Toggle("flag"));
  EXPECT_FALSE(flag.value);
}

TEST_F(ClientTest, CompareAndSetWritesOnlyOverTheExpectedValue) {
  ASSERT_OK(client_->Set("state", "idle").status());
  ASSERT_OK_AND_ASSIGN(OpResult<std::string> swapped,
                       client_->CompareAndSet("state", "idle", "busy"));
  EXPECT_EQ(swapped.value, "busy");
  EXPECT_THAT(client_->CompareAndSet("state", "idle", "busy"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(client_->CompareAndSet("absent", 1, 2),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(client_->Get<std::string>("state"),
              IsOkAndHolds(std::string("busy")));
}

TEST_F(ClientTest, AnOpOfTheWrongKindIsInvalidArgumentAndChangesNothing) {
  ASSERT_OK(client_->Set("s", "text").status());
  EXPECT_THAT(client_->Add("s", 1),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(client_->Toggle("s"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_OK(client_->Set("n", 1).status());
  EXPECT_THAT(client_->Merge("n", Json{{"a", 1}}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(client_->Append("n", "x"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_OK_AND_ASSIGN(Versioned<std::string> s,
                       client_->GetVersioned<std::string>("s"));
  EXPECT_EQ(s.value, "text");
  EXPECT_EQ(s.version, 1u);
  EXPECT_THAT(
      client_->Apply(Op::Set("n", 2)),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("atomic ops")));
}

TEST_F(ClientTest, AnOpWithIfVersionAppliesOnlyOnAMatch) {
  ASSERT_OK(client_->Set("n", 1).status());
  EXPECT_THAT(client_->Add("n", 1, {.if_version = 5}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK_AND_ASSIGN(OpResult<int64_t> r,
                       client_->Add("n", 1, {.if_version = 1}));
  EXPECT_EQ(r.value, 2);
  EXPECT_EQ(r.version, 2u);
}

TEST_F(ClientTest, DeleteAndDeletePrefix) {
  ASSERT_OK(client_->Set("a", 1).status());
  ASSERT_OK_AND_ASSIGN(DeleteResult gone, client_->Delete("a"));
  EXPECT_EQ(gone.deleted, 1u);
  EXPECT_THAT(client_->Get<int64_t>("a"),
              StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(DeleteResult nothing, client_->Delete("a"));
  EXPECT_EQ(nothing.deleted, 0u);

  ASSERT_OK(client_->Set("v", 1).status());
  EXPECT_THAT(client_->Delete("v", {.if_version = 9}),
              StatusIs(absl::StatusCode::kFailedPrecondition));

  for (int i = 0; i < 5; ++i)
    ASSERT_OK(client_->Set(absl::StrCat("tmp/", i), i).status());
  ASSERT_OK(client_->Set("tmq", 1).status());
  ASSERT_OK_AND_ASSIGN(DeleteResult prefix, client_->DeletePrefix("tmp/"));
  EXPECT_EQ(prefix.deleted, 5u);
  ASSERT_OK_AND_ASSIGN(std::vector<KeyValue> left, client_->List("tm"));
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].key, "tmq");
  EXPECT_THAT(client_->DeletePrefix(""),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(ClientTest, ListReadsEveryPageInKeyOrder) {
  for (int i = 0; i < 25; ++i) {
    ASSERT_OK(client_->Set(absl::StrCat("p/", absl::Dec(i, absl::kZeroPad2)), i)
                  .status());
  }
  ASSERT_OK(client_->Set("q", 0).status());
  ASSERT_OK_AND_ASSIGN(std::vector<KeyValue> all,
                       client_->List("p/", {.page_size = 10}));
  ASSERT_EQ(all.size(), 25u);
  for (int i = 0; i < 25; ++i) {
    EXPECT_EQ(all[i].key, absl::StrCat("p/", absl::Dec(i, absl::kZeroPad2)));
    ASSERT_TRUE(all[i].value.has_value());
    EXPECT_EQ(all[i].value->int_value(), i);
  }
  ASSERT_OK_AND_ASSIGN(
      ListResult page,
      client_->ListPage("p/", {.page_size = 10, .keys_only = true}));
  EXPECT_EQ(page.kvs.size(), 10u);
  EXPECT_FALSE(page.next_page_token.empty());
  EXPECT_FALSE(page.kvs[0].value.has_value());
  EXPECT_EQ(page.kvs[0].version, 1u);
}

TEST_F(ClientTest, TxnRunsThenOrElseAtomically) {
  auto claim = [&] {
    return client_->Txn()
        .If(Compare::Version("leader") == 0)
        .Then(Op::Set("leader", "me"))
        .Then(Op::Add("terms", 1))
        .Else(Op::Get("leader"))
        .Commit();
  };
  ASSERT_OK_AND_ASSIGN(TxnResult won, claim());
  EXPECT_TRUE(won.succeeded);
  ASSERT_EQ(won.results.size(), 2u);
  EXPECT_EQ(won.results[0].kind, TxnOpResult::Kind::kSet);
  EXPECT_TRUE(won.results[0].created);
  EXPECT_EQ(won.results[1].kind, TxnOpResult::Kind::kUpdate);
  ASSERT_TRUE(won.results[1].kv.value.has_value());
  EXPECT_EQ(won.results[1].kv.value->int_value(), 1);
  ASSERT_OK_AND_ASSIGN(Versioned<std::string> leader,
                       client_->GetVersioned<std::string>("leader"));
  ASSERT_OK_AND_ASSIGN(Versioned<int64_t> terms,
                       client_->GetVersioned<int64_t>("terms"));
  EXPECT_EQ(leader.mod_revision,
            terms.mod_revision);  // One revision for the whole Txn.

  ASSERT_OK_AND_ASSIGN(TxnResult lost, claim());
  EXPECT_FALSE(lost.succeeded);
  ASSERT_EQ(lost.results.size(), 1u);
  EXPECT_EQ(lost.results[0].kind, TxnOpResult::Kind::kGet);
  ASSERT_TRUE(lost.results[0].kv.value.has_value());
  EXPECT_EQ(lost.results[0].kv.value->string_value(), "me");

  ASSERT_OK_AND_ASSIGN(TxnResult by_value, client_->Txn()
                                               .If(Compare::Value("terms") > 0)
                                               .If(Compare::Exists("leader"))
                                               .Then(Op::Delete("leader"))
                                               .Commit());
  EXPECT_TRUE(by_value.succeeded);
  EXPECT_THAT(client_->Get<std::string>("leader"),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(ClientTest, TxnWithAFailingOpChangesNothing) {
  ASSERT_OK(client_->Set("s", "text").status());
  EXPECT_THAT(
      client_->Txn().Then(Op::Set("other", 1)).Then(Op::Add("s", 1)).Commit(),
      StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(client_->Get<int64_t>("other"),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(
      client_->Txn().Then(Op::Set("k", 1)).Then(Op::Set("k", 2)).Commit(),
      StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(client_->Txn().Then(Op::Set("s", "x", 9)).Commit(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(client_->Get<std::string>("s"),
              IsOkAndHolds(std::string("text")));
}

TEST_F(ClientTest, WaitForTimesOutWithDeadlineExceeded) {
  ASSERT_OK_AND_ASSIGN(WriteResult w, client_->Set("k", 1));
  EXPECT_THAT(
      client_->WaitFor("k", w.version, absl::Now() + absl::Milliseconds(200)),
      StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_THAT(
      client_->WaitFor("absent", 0, absl::Now() + absl::Milliseconds(100)),
      StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST_F(ClientTest, WaitForAnswersWithTheNextVersion) {
  ASSERT_OK_AND_ASSIGN(WriteResult w, client_->Set("k", 1));
  // Already newer than after_version: answers at once.
  ASSERT_OK_AND_ASSIGN(
      Versioned<int64_t> now,
      client_->WaitFor<int64_t>("k", 0, absl::Now() + absl::Seconds(5)));
  EXPECT_EQ(now.value, 1);
  absl::StatusOr<Versioned<int64_t>> waited;
  std::thread waiter([&] {
    waited = client_->WaitFor<int64_t>("k", w.version,
                                       absl::Now() + absl::Seconds(20));
  });
  ASSERT_OK(client_->Set("k", 2).status());
  waiter.join();
  ASSERT_OK(waited.status());
  EXPECT_EQ(waited->value, 2);
  EXPECT_EQ(waited->version, 2u);
}

TEST_F(ClientTest, UpdateFromEightThreadsLosesNoIncrement) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 500;
  absl::Notification go;
  absl::BlockingCounter done(kThreads);
  std::vector<absl::Status> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      go.WaitForNotification();
      for (int i = 0; i < kPerThread; ++i) {
        absl::StatusOr<OpResult<int64_t>> r =
            client_->Update<int64_t>("counter", [](int64_t& v) { ++v; },
                                     {.call = {.timeout = absl::Seconds(120)}});
        if (!r.ok()) {
          errors[t] = r.status();
          break;
        }
      }
      done.DecrementCount();
    });
  }
  go.Notify();
  done.Wait();
  for (auto& t : threads) t.join();
  for (const absl::Status& e : errors) EXPECT_THAT(e, IsOk());
  ASSERT_OK_AND_ASSIGN(Versioned<int64_t> counter,
                       client_->GetVersioned<int64_t>("counter"));
  EXPECT_EQ(counter.value, kThreads * kPerThread);
  EXPECT_EQ(counter.version, static_cast<uint64_t>(kThreads * kPerThread));
}

TEST_F(ClientTest, UpdateStartsAnAbsentKeyFromTheDefaultValue) {
  ASSERT_OK_AND_ASSIGN(OpResult<Json> cfg,
                       client_->Update<Json>("cfg", [](Json& v) {
                         EXPECT_TRUE(v.is_null());
                         v["retries"] = 3;
                       }));
  EXPECT_EQ(cfg.value, (Json{{"retries", 3}}));
  EXPECT_EQ(cfg.version, 1u);
  ASSERT_OK_AND_ASSIGN(
      OpResult<std::string> s,
      client_->Update<std::string>(
          "name", [](const std::string& v) { return v + "x"; }));
  EXPECT_EQ(s.value, "x");
}

TEST_F(ClientTest, UpdateStopsOnAKindMismatchOrTheFunctionsError) {
  ASSERT_OK(client_->Set("s", "text").status());
  int calls = 0;
  EXPECT_THAT(client_->Update<int64_t>("s", [&](int64_t& v) { ++calls; }),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("holds a string")));
  EXPECT_EQ(calls, 0);
  EXPECT_THAT(
      client_->Update<std::string>(
          "s",
          [](std::string&) { return absl::AbortedError("changed my mind"); }),
      StatusIs(absl::StatusCode::kAborted, HasSubstr("changed my mind")));
  ASSERT_OK_AND_ASSIGN(Versioned<std::string> s,
                       client_->GetVersioned<std::string>("s"));
  EXPECT_EQ(s.version, 1u);
}

TEST_F(ClientTest, HundredGetAsyncInFlightFromOneThread) {
  constexpr int kCalls = 100;
  for (int i = 0; i < kCalls; ++i)
    ASSERT_OK(client_->Set(absl::StrCat("a/", i), i).status());
  std::vector<core::Future<int64_t>> futures;
  for (int i = 0; i < kCalls; ++i)
    futures.push_back(client_->GetAsync<int64_t>(absl::StrCat("a/", i)));
  for (int i = 0; i < kCalls; ++i)
    EXPECT_THAT(futures[i].Get(), IsOkAndHolds(i));

  EXPECT_THAT(client_->GetAsync<int64_t>("absent").Get(),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(client_->GetAsync<std::string>("a/1").Get(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(ClientTest, HundredLongPollsWaitTogetherOnOneThread) {
  // All 100 WaitFor calls are pending on the server at once; only writes
  // complete them.
  constexpr int kCalls = 100;
  std::vector<core::Future<Versioned<Value>>> waits;
  for (int i = 0; i < kCalls; ++i) {
    waits.push_back(client_->WaitForAsync(absl::StrCat("w/", i), 0,
                                          absl::Now() + absl::Seconds(60)));
  }
  for (int i = 0; i < kCalls; ++i) EXPECT_FALSE(waits[i].IsReady());
  std::vector<core::Future<WriteResult>> writes;
  for (int i = 0; i < kCalls; ++i)
    writes.push_back(client_->SetAsync(absl::StrCat("w/", i), i));
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_OK(writes[i].Get().status());
    absl::StatusOr<Versioned<Value>> got = waits[i].Get();
    ASSERT_OK(got.status());
    EXPECT_EQ(got->value.int_value(), i);
  }
}

TEST_F(ClientTest, AsyncFormsOfTheOtherCalls) {
  ASSERT_OK_AND_ASSIGN(OpResult<int64_t> added,
                       client_->AddAsync("n", 3).Get());
  EXPECT_EQ(added.value, 3);
  ASSERT_OK_AND_ASSIGN(OpResult<Value> toggled,
                       client_->ApplyAsync(Op::Toggle("t")).Get());
  EXPECT_TRUE(toggled.value.bool_value());
  ASSERT_OK_AND_ASSIGN(Versioned<int64_t> n,
                       client_->GetVersionedAsync<int64_t>("n").Get());
  EXPECT_EQ(n.value, 3);
  ASSERT_OK_AND_ASSIGN(ListResult page, client_->ListPageAsync("").Get());
  EXPECT_EQ(page.kvs.size(), 2u);
  ASSERT_OK_AND_ASSIGN(TxnResult txn, client_->Txn()
                                          .If(Compare::Value("n") == 3)
                                          .Then(Op::Delete("n"))
                                          .CommitAsync()
                                          .Get());
  EXPECT_TRUE(txn.succeeded);
  ASSERT_OK_AND_ASSIGN(DeleteResult del, client_->DeleteAsync("t").Get());
  EXPECT_EQ(del.deleted, 1u);
  EXPECT_THAT(
      client_->SetAsync("big", std::numeric_limits<uint64_t>::max()).Get(),
      StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(
      client_
          ->AddAsync("s", 1,
                     {.call = {.deadline = absl::Now() - absl::Seconds(1)}})
          .Get(),
      StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST_F(ClientTest, PublishNumbersMessagesPerTopic) {
  ASSERT_OK_AND_ASSIGN(PublishResult first,
                       client_->Publish("orders.new", Json{{"id", 1}}));
  ASSERT_OK_AND_ASSIGN(PublishResult second, client_->Publish("orders.new", 2));
  EXPECT_EQ(second.sequence, first.sequence + 1);
  EXPECT_EQ(second.receivers, 0u);
  ASSERT_OK_AND_ASSIGN(PublishResult async,
                       client_->PublishAsync("orders.new", "x").Get());
  EXPECT_EQ(async.sequence, second.sequence + 1);
  EXPECT_THAT(client_->Publish("orders.*", 1),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace tshare::client
