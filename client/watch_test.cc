// Client::Watch: against a real server (ordering, snapshots, replay, stop
// semantics, a broken connection through a TCP proxy, a server restart with a
// new store) and against a scripted Shares server that controls every frame (a
// dead stream, resume points, duplicates, a store change, loss, a terminal
// error).
#include "client/watch.h"

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "client/testing/recorder.h"
#include "client/testing/tcp_proxy.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/integration/test_server.h"
#include "tests/status_matchers.h"
#include "tshare/v1/shares.grpc.pb.h"

namespace tshare::client {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::tshare::client::testing::Recorder;
using ::tshare::client::testing::TcpProxy;
using ::tshare::testing::StatusIs;
using ::tshare::testing::TestServer;

constexpr absl::Duration kWait = absl::Seconds(20);

// One delivered change, flattened for comparisons.
struct Seen {
  std::string key;
  bool put = true;
  std::optional<int64_t> value;
  uint64_t revision = 0;
  friend bool operator==(const Seen& a, const Seen& b) {
    return a.key == b.key && a.put == b.put && a.value == b.value;
  }
  friend std::ostream& operator<<(std::ostream& os, const Seen& s) {
    os << (s.put ? "put " : "delete ") << s.key;
    if (s.value.has_value()) os << "=" << *s.value;
    return os << "@" << s.revision;
  }
};

Seen Put(std::string key, int64_t value) {
  return Seen{std::move(key), true, value, 0};
}
Seen Del(std::string key) {
  return Seen{std::move(key), false, std::nullopt, 0};
}

// Records every update and, flattened, every change event.
struct Sink {
  Recorder<WatchUpdate> updates;
  Recorder<Seen> changes;

  // Records the update before its changes, so that a test that waited for a
  // change finds its update recorded too.
  WatchCallback Callback() {
    return [this](const WatchUpdate& u) {
      updates.Add(u);
      if (u.kind == WatchUpdate::Kind::kChanges) {
        for (const WatchEvent& e : u.events) {
          Seen s;
          s.key = e.kv.key;
          s.put = e.type == WatchEvent::Type::kPut;
          if (e.kv.value.has_value() && e.kv.value->kind() == ValueKind::kInt) {
            s.value = e.kv.value->int_value();
          }
          s.revision = e.revision();
          changes.Add(s);
        }
      }
    };
  }
};

// Revisions strictly increase across updates (the events of one transaction
// share one).
void ExpectIncreasingRevisions(const std::vector<Seen>& seen) {
  for (size_t i = 1; i < seen.size(); ++i) {
    EXPECT_LE(seen[i - 1].revision, seen[i].revision) << "at " << i;
  }
}

class WatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(client_, Client::Connect(server_.address()));
  }

  TestServer server_;
  std::unique_ptr<Client> client_;
};

TEST_F(WatchTest, DeliversEveryChangeOnceInRevisionOrder) {
  ASSERT_OK(
      client_->Set("cfg/old", 1).status());  // Before the watch: not delivered.
  Sink sink;
  ASSERT_OK_AND_ASSIGN(
      WatchHandle watch,
      client_->Watch("cfg/", sink.Callback(), {.prefix = true}));
  ASSERT_OK(client_->Set("cfg/a", 1).status());
  ASSERT_OK(client_->Set("other", 9).status());
  ASSERT_OK(client_->Set("cfg/b", 2).status());
  ASSERT_OK(client_->Add("cfg/a", 10).status());
  ASSERT_OK(client_->Delete("cfg/b").status());
  ASSERT_OK(client_->Txn()
                .Then(Op::Set("cfg/x", 5))
                .Then(Op::Set("cfg/y", 6))
                .Commit()
                .status());
  ASSERT_TRUE(sink.changes.WaitForSize(6, kWait));
  const std::vector<Seen> seen = sink.changes.Items();
  EXPECT_THAT(seen,
              ElementsAre(Put("cfg/a", 1), Put("cfg/b", 2), Put("cfg/a", 11),
                          Del("cfg/b"), Put("cfg/x", 5), Put("cfg/y", 6)));
  ExpectIncreasingRevisions(seen);
  EXPECT_EQ(seen[4].revision,
            seen[5].revision);  // One transaction, one revision.
  EXPECT_TRUE(watch.active());
  EXPECT_EQ(watch.last_revision(), seen[5].revision);
  EXPECT_EQ(watch.reconnects(), 0u);
}

TEST_F(WatchTest, AKeyWatchSeesOnlyThatKeyWithPreviousValues) {
  Sink sink;
  ASSERT_OK_AND_ASSIGN(WatchHandle watch,
                       client_->Watch("k", sink.Callback(), {.prev_kv = true}));
  ASSERT_OK(client_->Set("k2", 1).status());
  ASSERT_OK(client_->Set("k", 1).status());
  ASSERT_OK(client_->Set("k", 2).status());
  ASSERT_TRUE(sink.changes.WaitForSize(2, kWait));
  EXPECT_THAT(sink.changes.Items(), ElementsAre(Put("k", 1), Put("k", 2)));
  std::vector<WatchUpdate> updates = sink.updates.Items();
  const WatchEvent& last = updates.back().events.back();
  ASSERT_TRUE(last.prev_kv.has_value());
  EXPECT_EQ(last.prev_kv->value->int_value(), 1);
}

TEST_F(WatchTest, SnapshotStartsWithOneResyncUpdate) {
  ASSERT_OK(client_->Set("s/a", 1).status());
  ASSERT_OK(client_->Set("s/b", 2).status());
  Sink sink;
  ASSERT_OK_AND_ASSIGN(WatchHandle watch,
                       client_->Watch("s/", sink.Callback(),
                                      {.prefix = true, .snapshot = true}));
  // The snapshot is read when the stream reaches the server; changes after it
  // follow.
  ASSERT_TRUE(sink.updates.WaitForSize(1, kWait));
  ASSERT_OK(client_->Set("s/c", 3).status());
  ASSERT_TRUE(sink.changes.WaitForSize(1, kWait));
  const std::vector<WatchUpdate> updates = sink.updates.Items();
  ASSERT_GE(updates.size(), 2u);
  EXPECT_EQ(updates[0].kind, WatchUpdate::Kind::kResync);
  EXPECT_FALSE(updates[0].store_changed);
  std::set<std::string> keys;
  for (const KeyValue& kv : updates[0].snapshot) keys.insert(kv.key);
  EXPECT_EQ(keys, (std::set<std::string>{"s/a", "s/b"}));
  EXPECT_THAT(sink.changes.Items(), ElementsAre(Put("s/c", 3)));
  EXPECT_GT(sink.changes.Items()[0].revision, updates[0].revision);
}

TEST_F(WatchTest, StartRevisionReplaysHistory) {
  ASSERT_OK_AND_ASSIGN(WriteResult first, client_->Set("h", 1));
  ASSERT_OK(client_->Set("h", 2).status());
  Sink sink;
  ASSERT_OK_AND_ASSIGN(
      WatchHandle watch,
      client_->Watch("h", sink.Callback(), {.start_revision = first.revision}));
  ASSERT_OK(client_->Set("h", 3).status());
  ASSERT_TRUE(sink.changes.WaitForSize(3, kWait));
  EXPECT_THAT(sink.changes.Items(),
              ElementsAre(Put("h", 1), Put("h", 2), Put("h", 3)));
}

TEST_F(WatchTest, BadOptionsAreInvalidArgument) {
  EXPECT_THAT(client_->Watch("k", nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(client_->Watch("k", [](const WatchUpdate&) {},
                             {.progress_interval = absl::Milliseconds(1)}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("progress_interval")));
  EXPECT_THAT(client_->Watch("k", [](const WatchUpdate&) {},
                             {.start_revision = 3, .snapshot = true}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("start_revision")));
}

TEST_F(WatchTest, StopWaitsForARunningCallbackAndNoneRunsAfter) {
  absl::Notification entered;
  absl::Notification release;
  absl::Mutex mu;
  int calls = 0;
  ASSERT_OK_AND_ASSIGN(WatchHandle watch,
                       client_->Watch("k", [&](const WatchUpdate&) {
                         {
                           absl::MutexLock lock(&mu);
                           ++calls;
                         }
                         if (!entered.HasBeenNotified()) entered.Notify();
                         release.WaitForNotification();
                       }));
  ASSERT_OK(client_->Set("k", 1).status());
  entered.WaitForNotification();
  absl::Notification stopped;
  std::thread stopper([&] {
    watch.Stop();
    stopped.Notify();
  });
  // Stop cannot return while the callback runs.
  EXPECT_FALSE(stopped.WaitForNotificationWithTimeout(absl::Milliseconds(100)));
  release.Notify();
  stopper.join();
  EXPECT_TRUE(stopped.HasBeenNotified());
  EXPECT_FALSE(watch.active());
  ASSERT_OK(client_->Set("k", 2).status());
  ASSERT_OK(client_->Set("k", 3).status());
  // A later watch sees these, the stopped one must not have.
  Sink after;
  ASSERT_OK_AND_ASSIGN(
      WatchHandle later,
      client_->Watch("k", after.Callback(), {.start_revision = 1}));
  ASSERT_TRUE(after.changes.WaitForSize(3, kWait));
  absl::MutexLock lock(&mu);
  EXPECT_EQ(calls, 1);
}

TEST_F(WatchTest, StopFromInsideTheCallbackEndsTheWatch) {
  absl::Notification handle_ready;
  WatchHandle watch;
  Recorder<int64_t> seen;
  ASSERT_OK_AND_ASSIGN(watch, client_->Watch("k", [&](const WatchUpdate& u) {
    seen.Add(u.events.front().kv.value->int_value());
    handle_ready.WaitForNotification();
    watch.Stop();
  }));
  handle_ready.Notify();
  ASSERT_OK(client_->Set("k", 1).status());
  ASSERT_TRUE(seen.WaitForSize(1, kWait));
  ASSERT_OK(client_->Set("k", 2).status());
  watch.Stop();  // Waits for the watch's thread to be done.
  EXPECT_EQ(seen.Items(), std::vector<int64_t>{1});
  EXPECT_FALSE(watch.active());
}

TEST_F(WatchTest, ACallbackExceptionIsCountedAndTheWatchGoesOn) {
  Recorder<int64_t> seen;
  ASSERT_OK_AND_ASSIGN(
      WatchHandle watch, client_->Watch("k", [&](const WatchUpdate& u) {
        const int64_t v = u.events.front().kv.value->int_value();
        seen.Add(v);
        if (v == 1) throw std::runtime_error("bad update");
      }));
  ASSERT_OK(client_->Set("k", 1).status());
  ASSERT_TRUE(seen.WaitForSize(1, kWait));
  ASSERT_OK(client_->Set("k", 2).status());
  ASSERT_TRUE(seen.WaitForSize(2, kWait));
  EXPECT_EQ(seen.Items(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(watch.callback_exceptions(), 1u);
  EXPECT_TRUE(watch.active());
}

TEST_F(WatchTest, SurvivesABrokenConnectionAndResumesWithoutLossOrRepeat) {
  TcpProxy proxy(server_.address());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Client> via_proxy,
                       Client::Connect(proxy.address()));
  Sink sink;
  ASSERT_OK_AND_ASSIGN(
      WatchHandle watch,
      via_proxy->Watch(
          "r/", sink.Callback(),
          {.prefix = true, .progress_interval = absl::Milliseconds(100)}));
  ASSERT_OK(client_->Set("r/a", 1).status());
  ASSERT_TRUE(sink.changes.WaitForSize(1, kWait));

  // Cut the connection and keep the client out; write meanwhile through the
  // direct client.
  proxy.SetBlocked(true);
  proxy.CutAll();
  ASSERT_OK(client_->Set("r/b", 2).status());
  ASSERT_OK(client_->Set("r/a", 3).status());
  ASSERT_OK(client_->Delete("r/b").status());
  ASSERT_OK(client_->Txn()
                .Then(Op::Set("r/c", 4))
                .Then(Op::Set("r/d", 5))
                .Commit()
                .status());
  proxy.SetBlocked(false);

  ASSERT_TRUE(sink.changes.WaitForSize(6, kWait));
  ASSERT_OK(client_->Set("r/e", 6).status());
  ASSERT_TRUE(sink.changes.WaitForSize(7, kWait));
  const std::vector<Seen> seen = sink.changes.Items();
  EXPECT_THAT(
      seen, ElementsAre(Put("r/a", 1), Put("r/b", 2), Put("r/a", 3), Del("r/b"),
                        Put("r/c", 4), Put("r/d", 5), Put("r/e", 6)));
  ExpectIncreasingRevisions(seen);
  EXPECT_GE(watch.reconnects(), 1u);
  EXPECT_GE(proxy.forwarded(), 2);
  for (const WatchUpdate& u : sink.updates.Items()) {
    EXPECT_NE(u.kind, WatchUpdate::Kind::kResync)
        << "the store did not change: resume, not resync";
  }
}

TEST(WatchRestartTest,
     AServerRestartWithANewStoreResyncsThenDeliversEachChangeOnce) {
  auto first = std::make_unique<TestServer>();
  const int port = first->server().port();
  const std::string old_store = first->server().store_id();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Client> client,
                       Client::Connect(first->address()));
  Sink sink;
  ASSERT_OK_AND_ASSIGN(
      WatchHandle watch,
      client->Watch(
          "x/", sink.Callback(),
          {.prefix = true, .progress_interval = absl::Milliseconds(100)}));
  ASSERT_OK(client->Set("x/before", 1).status());
  ASSERT_TRUE(sink.changes.WaitForSize(1, kWait));

  first.reset();  // The watch's stream ends with UNAVAILABLE; the client keeps
                  // retrying.
  tshare::service::ServerOptions options = TestServer::DefaultOptions();
  options.listen = absl::StrCat("127.0.0.1:", port);
  TestServer second(options);
  ASSERT_NE(second.server().store_id(), old_store);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Client> direct,
                       Client::Connect(second.address()));
  ASSERT_OK(direct->Set("x/after", 2).status());

  // One RESYNC with the new store's state, then each later change once.
  ASSERT_TRUE(sink.updates.WaitUntil(
      [](const std::vector<WatchUpdate>& us) {
        for (const WatchUpdate& u : us) {
          if (u.kind == WatchUpdate::Kind::kResync) return true;
        }
        return false;
      },
      kWait));
  ASSERT_OK(direct->Set("x/later", 3).status());
  ASSERT_OK(direct->Set("x/after", 4).status());
  ASSERT_TRUE(sink.changes.WaitForSize(3, kWait));

  const std::vector<WatchUpdate> updates = sink.updates.Items();
  int resyncs = 0;
  std::vector<Seen> after_resync;
  std::set<std::string> snapshot;
  for (const WatchUpdate& u : updates) {
    if (u.kind == WatchUpdate::Kind::kResync) {
      ++resyncs;
      EXPECT_TRUE(u.store_changed);
      EXPECT_EQ(u.store_id, second.server().store_id());
      for (const KeyValue& kv : u.snapshot) snapshot.insert(kv.key);
      continue;
    }
    if (resyncs == 0) continue;
    for (const WatchEvent& e : u.events)
      after_resync.push_back(Put(e.kv.key, e.kv.value->int_value()));
  }
  EXPECT_EQ(resyncs, 1);
  EXPECT_EQ(snapshot, (std::set<std::string>{"x/after"}));
  EXPECT_THAT(after_resync, ElementsAre(Put("x/later", 3), Put("x/after", 4)));
  EXPECT_EQ(watch.store_id(), second.server().store_id());
}

// ---- A scripted Shares server
// -----------------------------------------------------------------

// One Watch call of the scripted server; the test sends its frames and ends it.
class WatchCall final : public grpc::ServerWriteReactor<v1::WatchEvent> {
 public:
  explicit WatchCall(v1::WatchRequest request) : request_(std::move(request)) {}

  const v1::WatchRequest& request() const { return request_; }

  void Send(v1::WatchEvent frame) ABSL_LOCKS_EXCLUDED(mu_) {
    const v1::WatchEvent* to_write = nullptr;
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      queue_.push_back(std::move(frame));
      if (writing_) return;
      writing_ = true;
      to_write = &queue_.front();
    }
    StartWrite(to_write);
  }

  // Ends the call once the frames sent so far are written.
  void End(grpc::Status status) ABSL_LOCKS_EXCLUDED(mu_) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      if (writing_) {
        end_ = std::move(status);
        return;
      }
      finished_ = true;
    }
    Finish(status);
  }

  bool WaitCancelled(absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithDeadline(absl::Condition(&cancelled_),
                                 absl::Now() + timeout);
  }
  bool WaitDone(absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithDeadline(absl::Condition(&done_),
                                 absl::Now() + timeout);
  }

  void OnWriteDone(bool ok) override ABSL_LOCKS_EXCLUDED(mu_) {
    const v1::WatchEvent* next = nullptr;
    std::optional<grpc::Status> end;
    {
      absl::MutexLock lock(&mu_);
      queue_.pop_front();
      if (ok && !queue_.empty()) {
        next = &queue_.front();
      } else {
        writing_ = false;
        if (end_.has_value() && !finished_) {
          finished_ = true;
          end = std::move(end_);
        }
      }
    }
    if (next != nullptr) StartWrite(next);
    if (end.has_value()) Finish(*end);
  }
  void OnCancel() override ABSL_LOCKS_EXCLUDED(mu_) {
    bool finish = false;
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      if (!finished_ && !writing_) {
        finished_ = true;
        finish = true;
      } else if (!finished_) {
        end_ = grpc::Status::CANCELLED;
      }
    }
    if (finish) Finish(grpc::Status::CANCELLED);
  }
  void OnDone() override ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    done_ = true;
  }

 private:
  const v1::WatchRequest request_;
  absl::Mutex mu_;
  std::deque<v1::WatchEvent> queue_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> end_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

// A Shares server whose List answers with the store the test sets and whose
// Watch calls the test drives frame by frame.
class ScriptedShares final : public v1::Shares::CallbackService {
 public:
  void SetStore(std::string id, uint64_t revision) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    store_id_ = std::move(id);
    revision_ = revision;
  }

  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* context,
                                 const v1::ListRequest* /*request*/,
                                 v1::ListResponse* response) override
      ABSL_LOCKS_EXCLUDED(mu_) {
    {
      absl::MutexLock lock(&mu_);
      response->set_store_id(store_id_);
      response->set_revision(revision_);
    }
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerWriteReactor<v1::WatchEvent>* Watch(
      grpc::CallbackServerContext* /*context*/,
      const v1::WatchRequest* request) override ABSL_LOCKS_EXCLUDED(mu_) {
    auto call = std::make_unique<WatchCall>(*request);
    WatchCall* raw = call.get();
    absl::MutexLock lock(&mu_);
    calls_.push_back(std::move(call));
    return raw;
  }

  // The n-th Watch call (0-based), once it arrived; nullptr after `timeout`.
  WatchCall* WaitForCall(size_t n, absl::Duration timeout = kWait)
      ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    auto arrived = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return calls_.size() > n;
    };
    if (!mu_.AwaitWithDeadline(absl::Condition(&arrived),
                               absl::Now() + timeout))
      return nullptr;
    return calls_[n].get();
  }
  size_t calls() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return calls_.size();
  }

 private:
  mutable absl::Mutex mu_;
  std::string store_id_ ABSL_GUARDED_BY(mu_) = "store-1";
  uint64_t revision_ ABSL_GUARDED_BY(mu_) = 10;
  // Kept until the server is gone: a reactor must outlive its OnDone.
  std::vector<std::unique_ptr<WatchCall>> calls_ ABSL_GUARDED_BY(mu_);
};

v1::WatchEvent Changes(const std::string& store,
                       std::vector<std::pair<std::string, uint64_t>> puts) {
  v1::WatchEvent frame;
  frame.set_kind(v1::WatchEvent::CHANGES);
  frame.set_store_id(store);
  for (const auto& [key, revision] : puts) {
    v1::Event* e = frame.add_events();
    e->set_type(v1::Event::PUT);
    e->mutable_kv()->set_key(key);
    e->mutable_kv()->mutable_value()->set_int_value(
        static_cast<int64_t>(revision));
    e->mutable_kv()->set_version(1);
    e->mutable_kv()->set_mod_revision(revision);
    frame.set_revision(revision);
  }
  return frame;
}

v1::WatchEvent Frame(v1::WatchEvent::Kind kind, const std::string& store,
                     uint64_t revision) {
  v1::WatchEvent frame;
  frame.set_kind(kind);
  frame.set_store_id(store);
  frame.set_revision(revision);
  return frame;
}

class ScriptedWatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_OK_AND_ASSIGN(client_,
                         Client::Connect(absl::StrCat("127.0.0.1:", port)));
  }
  void TearDown() override {
    client_.reset();
    server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  }

  // Each event's key, in delivery order.
  static std::vector<std::string> Keys(const Sink& sink) {
    std::vector<std::string> keys;
    for (const Seen& s : sink.changes.Items()) keys.push_back(s.key);
    return keys;
  }

  ScriptedShares service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<Client> client_;
};

TEST_F(ScriptedWatchTest, ADeadStreamIsCancelledAndResumedWhereItLeftOff) {
  Sink sink;
  ASSERT_OK_AND_ASSIGN(
      WatchHandle watch,
      client_->Watch("k", sink.Callback(),
                     {.progress_interval = absl::Milliseconds(50),
                      .dead_after = absl::Milliseconds(300)}));
  WatchCall* first = service_.WaitForCall(0);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->request().key(), "k");
  EXPECT_EQ(first->request().start_revision(),
            11u);  // After the store's revision (10).
  EXPECT_EQ(first->request().progress_interval().nanos(), 50000000);
  // The server sends nothing, not even progress: the client gives up on the
  // stream.
  ASSERT_TRUE(first->WaitCancelled(kWait));
  WatchCall* second = service_.WaitForCall(1);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->request().start_revision(), 11u);
  EXPECT_FALSE(second->request().snapshot());
  second->Send(Changes("store-1", {{"k", 12}}));
  ASSERT_TRUE(sink.changes.WaitForSize(1, kWait));
  EXPECT_EQ(sink.changes.Items()[0].revision, 12u);
  EXPECT_EQ(watch.reconnects(), 1u);
}

TEST_F(ScriptedWatchTest, ResumesInsideASplitTransactionAndDropsRepeats) {
  Sink sink;
  ASSERT_OK_AND_ASSIGN(WatchHandle watch,
                       client_->Watch("p/", sink.Callback(), {.prefix = true}));
  WatchCall* first = service_.WaitForCall(0);
  ASSERT_NE(first, nullptr);
  first->Send(Changes("store-1", {{"p/a", 11}}));
  // Revision 12 (one transaction) arrives in two frames, then the stream
  // breaks.
  first->Send(Changes("store-1", {{"p/b", 12}}));
  first->Send(Changes("store-1", {{"p/c", 12}}));
  ASSERT_TRUE(sink.changes.WaitForSize(3, kWait));
  first->End(grpc::Status(grpc::StatusCode::UNAVAILABLE, "gone"));

  WatchCall* second = service_.WaitForCall(1);
  ASSERT_NE(second, nullptr);
  // Revision 12 may not have been delivered whole: ask for it again.
  EXPECT_EQ(second->request().start_revision(), 12u);
  second->Send(
      Changes("store-1", {{"p/a", 11}, {"p/b", 12}, {"p/c", 12}, {"p/d", 12}}));
  second->Send(Changes("store-1", {{"p/e", 13}}));
  ASSERT_TRUE(sink.changes.WaitForSize(5, kWait));
  second->Send(Frame(v1::WatchEvent::PROGRESS, "store-1", 20));
  second->End(grpc::Status(grpc::StatusCode::UNAVAILABLE, "gone again"));

  // After a progress frame the resume point is past it.
  WatchCall* third = service_.WaitForCall(2);
  ASSERT_NE(third, nullptr);
  EXPECT_EQ(third->request().start_revision(), 21u);
  third->Send(Changes("store-1", {{"p/f", 21}}));
  ASSERT_TRUE(sink.changes.WaitForSize(6, kWait));
  EXPECT_THAT(Keys(sink),
              ElementsAre("p/a", "p/b", "p/c", "p/d", "p/e", "p/f"));
  EXPECT_EQ(watch.last_revision(), 21u);
}

TEST_F(ScriptedWatchTest, AnotherStoreIdResyncsAndHandsOverOneResyncUpdate) {
  Sink sink;
  ASSERT_OK_AND_ASSIGN(WatchHandle watch,
                       client_->Watch("p/", sink.Callback(), {.prefix = true}));
  WatchCall* first = service_.WaitForCall(0);
  ASSERT_NE(first, nullptr);
  first->Send(Changes("store-1", {{"p/a", 11}}));
  ASSERT_TRUE(sink.changes.WaitForSize(1, kWait));
  // The server restarts with a new in-memory store: revisions start over.
  service_.SetStore("store-2", 3);
  first->End(grpc::Status(grpc::StatusCode::UNAVAILABLE, "restarting"));

  WatchCall* second = service_.WaitForCall(1);
  ASSERT_NE(second, nullptr);
  EXPECT_TRUE(second->request().snapshot());
  EXPECT_EQ(second->request().start_revision(), 0u);
  second->Send(Frame(v1::WatchEvent::RESYNC_BEGIN, "store-2", 3));
  v1::WatchEvent snapshot = Changes("store-2", {{"p/x", 2}, {"p/y", 3}});
  snapshot.set_kind(v1::WatchEvent::SNAPSHOT);
  snapshot.set_revision(3);
  second->Send(snapshot);
  second->Send(Frame(v1::WatchEvent::RESYNC_END, "store-2", 3));
  second->Send(Changes("store-2", {{"p/z", 4}}));
  ASSERT_TRUE(sink.changes.WaitForSize(2, kWait));

  const std::vector<WatchUpdate> updates = sink.updates.Items();
  ASSERT_EQ(updates.size(), 3u);
  EXPECT_EQ(updates[0].kind, WatchUpdate::Kind::kChanges);
  EXPECT_EQ(updates[1].kind, WatchUpdate::Kind::kResync);
  EXPECT_TRUE(updates[1].store_changed);
  EXPECT_EQ(updates[1].revision, 3u);
  EXPECT_EQ(updates[1].store_id, "store-2");
  ASSERT_EQ(updates[1].snapshot.size(), 2u);
  EXPECT_EQ(updates[1].snapshot[0].key, "p/x");
  EXPECT_EQ(updates[2].kind, WatchUpdate::Kind::kChanges);
  EXPECT_EQ(updates[2].events[0].kv.key, "p/z");
  EXPECT_EQ(watch.store_id(), "store-2");
  EXPECT_EQ(watch.last_revision(), 4u);
}

TEST_F(ScriptedWatchTest, AFrameFromAnotherStoreMidStreamTriggersAResync) {
  Sink sink;
  ASSERT_OK_AND_ASSIGN(WatchHandle watch, client_->Watch("k", sink.Callback()));
  WatchCall* first = service_.WaitForCall(0);
  ASSERT_NE(first, nullptr);
  service_.SetStore("store-9", 1);
  first->Send(Changes("store-9", {{"k", 1}}));
  ASSERT_TRUE(first->WaitCancelled(kWait));
  WatchCall* second = service_.WaitForCall(1);
  ASSERT_NE(second, nullptr);
  EXPECT_TRUE(second->request().snapshot());
  EXPECT_EQ(sink.changes.size(),
            0u);  // Nothing of the other store was delivered as a change.
}

TEST_F(ScriptedWatchTest, LossIsReportedEvenOnAProgressFrame) {
  Sink sink;
  ASSERT_OK_AND_ASSIGN(WatchHandle watch, client_->Watch("k", sink.Callback()));
  WatchCall* call = service_.WaitForCall(0);
  ASSERT_NE(call, nullptr);
  v1::WatchEvent changes = Changes("store-1", {{"k", 15}});
  changes.mutable_loss()->set_conflated(3);
  changes.mutable_loss()->set_total_conflated(3);
  call->Send(changes);
  v1::WatchEvent progress = Frame(v1::WatchEvent::PROGRESS, "store-1", 16);
  progress.mutable_loss()->set_dropped(2);
  progress.mutable_loss()->set_total_dropped(2);
  call->Send(progress);
  ASSERT_TRUE(sink.updates.WaitForSize(2, kWait));
  const std::vector<WatchUpdate> updates = sink.updates.Items();
  ASSERT_TRUE(updates[0].loss.has_value());
  EXPECT_EQ(updates[0].loss->conflated, 3u);
  EXPECT_EQ(updates[0].events.size(), 1u);
  ASSERT_TRUE(updates[1].loss.has_value());
  EXPECT_EQ(updates[1].loss->dropped, 2u);
  EXPECT_TRUE(updates[1].events.empty());
}

TEST_F(ScriptedWatchTest, ARefusedWatchEndsWithOneEndedUpdate) {
  Sink sink;
  ASSERT_OK_AND_ASSIGN(WatchHandle watch, client_->Watch("k", sink.Callback()));
  WatchCall* call = service_.WaitForCall(0);
  ASSERT_NE(call, nullptr);
  call->End(
      grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "max_queue too large"));
  ASSERT_TRUE(sink.updates.WaitForSize(1, kWait));
  const WatchUpdate ended = sink.updates.Items()[0];
  EXPECT_EQ(ended.kind, WatchUpdate::Kind::kEnded);
  EXPECT_THAT(ended.status, StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("max_queue")));
  watch.Stop();
  EXPECT_FALSE(watch.active());
  EXPECT_EQ(service_.calls(), 1u);
}

TEST(WatchUnreachableTest, WatchOfAnUnreachableServerIsUnavailable) {
  TestServer server;
  const std::string address = server.address();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Client> client,
                       Client::Connect("127.0.0.1:1"));
  EXPECT_THAT(client->Watch("k", [](const WatchUpdate&) {}, {},
                            {.timeout = absl::Seconds(2)}),
              StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace tshare::client
