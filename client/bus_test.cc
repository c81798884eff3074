// Client::Publish / Subscribe against a real server, including a subscriber
// whose connection breaks (through a TCP proxy) and a slow subscriber whose
// server queue overflows: every message is either delivered or counted as
// missed.
#include "client/bus.h"

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
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
#include "tshare/v1/bus.grpc.pb.h"

namespace tshare::client {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::tshare::client::testing::Recorder;
using ::tshare::client::testing::TcpProxy;
using ::tshare::testing::StatusIs;
using ::tshare::testing::TestServer;

constexpr absl::Duration kWait = absl::Seconds(20);

class BusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(client_, Client::Connect(server_.address()));
  }

  static MessageCallback RecordInto(Recorder<BusMessage>& recorder) {
    return [&recorder](const BusMessage& m) { recorder.Add(m); };
  }

  TestServer server_;
  std::unique_ptr<Client> client_;
};

TEST_F(BusTest, DeliversMatchingMessagesInPublishOrder) {
  Recorder<BusMessage> got;
  ASSERT_OK_AND_ASSIGN(
      SubscriptionHandle sub,
      client_->Subscribe({"orders.*", "audit.>"}, RecordInto(got),
                         {.progress_interval = absl::Milliseconds(50)}));
  ASSERT_TRUE(sub.WaitUntilConnected(absl::Now() + kWait));
  const absl::Time before = absl::Now() - absl::Seconds(1);
  for (int i = 1; i <= 5; ++i)
    ASSERT_OK(client_->Publish("orders.new", i).status());
  ASSERT_OK(
      client_->Publish("orders.new.deep", 0).status());  // "*" is one segment.
  ASSERT_OK(client_->Publish("other", 0).status());
  ASSERT_OK(client_->Publish("audit.a.b", Json{{"who", "me"}}).status());
  ASSERT_TRUE(got.WaitForSize(6, kWait));
  const std::vector<BusMessage> messages = got.Items();
  ASSERT_EQ(messages.size(), 6u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(messages[i].topic, "orders.new");
    EXPECT_EQ(messages[i].value.int_value(), i + 1);
    EXPECT_EQ(messages[i].missed, 0u);
    EXPECT_FALSE(messages[i].loss.has_value());
    EXPECT_GT(messages[i].published_at, before);
    if (i > 0) EXPECT_EQ(messages[i].sequence, messages[i - 1].sequence + 1);
  }
  EXPECT_EQ(messages[5].topic, "audit.a.b");
  EXPECT_EQ(messages[5].value.json_value(), (Json{{"who", "me"}}));
  EXPECT_TRUE(sub.active());
}

TEST_F(BusTest, BadSubscriptionsAreRefused) {
  EXPECT_THAT(
      client_->Subscribe({}, [](const BusMessage&) {}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("patterns")));
  EXPECT_THAT(client_->Subscribe({"a"}, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument));
  for (uint32_t max_batch : {0u, 1025u}) {
    EXPECT_THAT(client_->Subscribe({"a"}, [](const BusMessage&) {},
                                   {.max_batch = max_batch}),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr(absl::StrCat("max_batch=", max_batch,
                                                " is outside 1..1024"))));
  }
  // A pattern only the server can judge: the subscription ends with its status.
  ASSERT_OK_AND_ASSIGN(
      SubscriptionHandle sub,
      client_->Subscribe({"orders.>.x"}, [](const BusMessage&) {}));
  EXPECT_FALSE(sub.WaitUntilConnected(absl::Now() + kWait));
  EXPECT_FALSE(sub.active());
  EXPECT_THAT(sub.status(), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("orders.>.x")));
}

TEST_F(BusTest, StopEndsDeliveryAndIsIdempotent) {
  Recorder<BusMessage> got;
  ASSERT_OK_AND_ASSIGN(
      SubscriptionHandle sub,
      client_->Subscribe({"t"}, RecordInto(got),
                         {.progress_interval = absl::Milliseconds(50)}));
  ASSERT_TRUE(sub.WaitUntilConnected(absl::Now() + kWait));
  ASSERT_OK(client_->Publish("t", 1).status());
  ASSERT_TRUE(got.WaitForSize(1, kWait));
  sub.Stop();
  sub.Stop();
  EXPECT_FALSE(sub.active());
  ASSERT_OK(client_->Publish("t", 2).status());
  // A second subscriber proves the message went out; the stopped one never gets
  // it.
  Recorder<BusMessage> other;
  ASSERT_OK_AND_ASSIGN(
      SubscriptionHandle sub2,
      client_->Subscribe({"t"}, RecordInto(other),
                         {.progress_interval = absl::Milliseconds(50)}));
  ASSERT_TRUE(sub2.WaitUntilConnected(absl::Now() + kWait));
  ASSERT_OK(client_->Publish("t", 3).status());
  ASSERT_TRUE(other.WaitForSize(1, kWait));
  EXPECT_EQ(got.size(), 1u);
}

TEST_F(BusTest, ASubscriberReconnectsAndReportsTheMessagesItMissed) {
  TcpProxy proxy(server_.address());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Client> via_proxy,
                       Client::Connect(proxy.address()));
  Recorder<BusMessage> got;
  ASSERT_OK_AND_ASSIGN(
      SubscriptionHandle sub,
      via_proxy->Subscribe({"events"}, RecordInto(got),
                           {.progress_interval = absl::Milliseconds(50)}));
  ASSERT_TRUE(sub.WaitUntilConnected(absl::Now() + kWait));
  ASSERT_OK_AND_ASSIGN(PublishResult first, client_->Publish("events", 1));
  ASSERT_TRUE(got.WaitForSize(1, kWait));

  proxy.SetBlocked(true);
  proxy.CutAll();
  // Published while the subscriber is cut off: the bus keeps no history, these
  // are missed.
  ASSERT_OK(client_->Publish("events", 2).status());
  ASSERT_OK(client_->Publish("events", 3).status());
  proxy.SetBlocked(false);

  // Publish until one arrives on the new stream (the server has the
  // subscription again).
  uint64_t last = 0;
  const absl::Time deadline = absl::Now() + kWait;
  while (got.size() < 2 && absl::Now() < deadline) {
    ASSERT_OK_AND_ASSIGN(PublishResult r, client_->Publish("events", 4));
    last = r.sequence;
    got.WaitForSize(2, absl::Milliseconds(200));
  }
  ASSERT_GE(got.size(), 2u);
  ASSERT_OK_AND_ASSIGN(PublishResult final_message,
                       client_->Publish("events", 5));
  ASSERT_TRUE(got.WaitUntil(
      [&](const std::vector<BusMessage>& ms) {
        return ms.back().sequence == final_message.sequence;
      },
      kWait));
  EXPECT_GE(sub.reconnects(), 1u);
  EXPECT_GE(proxy.forwarded(), 2);

  // Every message up to the last is either delivered or counted as missed,
  // never both.
  const std::vector<BusMessage> messages = got.Items();
  EXPECT_EQ(messages.front().sequence, first.sequence);
  uint64_t accounted = first.sequence - 1;
  uint64_t missed = 0;
  for (const BusMessage& m : messages) {
    EXPECT_EQ(m.sequence, accounted + m.missed + 1)
        << "gap misreported at " << m.sequence;
    accounted = m.sequence;
    missed += m.missed;
  }
  EXPECT_EQ(accounted, final_message.sequence);
  EXPECT_GE(missed, 2u);  // At least the two published while cut off.
  EXPECT_GE(final_message.sequence, last);
}

TEST_F(BusTest, ASlowSubscriberGetsEveryMessageOrItsCount) {
  constexpr int kMessages = 200;
  absl::Notification release;
  Recorder<BusMessage> got;
  ASSERT_OK_AND_ASSIGN(
      SubscriptionHandle sub,
      client_->Subscribe({"bulk"},
                         [&](const BusMessage& m) {
                           release.WaitForNotification();
                           got.Add(m);
                         },
                         {.policy = OverflowPolicy::kDropOldest,
                          .max_queue = 4,
                          .progress_interval = absl::Milliseconds(50),
                          .max_buffered_frames = 1}));
  ASSERT_TRUE(sub.WaitUntilConnected(absl::Now() + kWait));
  const std::string payload(256 * 1024, 'x');
  uint64_t last = 0;
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_OK_AND_ASSIGN(PublishResult r, client_->Publish("bulk", payload));
    last = r.sequence;
  }
  release.Notify();
  ASSERT_TRUE(got.WaitUntil(
      [&](const std::vector<BusMessage>& ms) {
        return !ms.empty() && ms.back().sequence == last;
      },
      kWait));
  const std::vector<BusMessage> messages = got.Items();
  uint64_t delivered = 0;
  uint64_t missed = 0;
  bool loss_reported = false;
  for (size_t i = 0; i < messages.size(); ++i) {
    ++delivered;
    missed += messages[i].missed;
    if (messages[i].loss.has_value()) loss_reported = true;
    if (i > 0) {
      EXPECT_EQ(messages[i].sequence,
                messages[i - 1].sequence + messages[i].missed + 1);
    }
  }
  EXPECT_EQ(delivered + missed + messages.front().sequence - 1, last);
  // A queue of 4 cannot hold 200 messages of 256 KiB that nobody reads: some
  // were dropped, and the server said so.
  EXPECT_GT(missed, 0u);
  EXPECT_TRUE(loss_reported);
}

// A Bus server whose Subscribe calls stay silent (no message, no progress
// frame) until the test sends one frame on a call, so the client's dead-stream
// detection is what ends them.
class SilentSubscribeCall final
    : public grpc::ServerWriteReactor<v1::BusMessage> {
 public:
  // Writes one frame (at most one per call in these tests).
  void Send(v1::BusMessage frame) {
    frame_ = std::move(frame);
    StartWrite(&frame_);
  }
  bool WaitCancelled(absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithDeadline(absl::Condition(&cancelled_),
                                 absl::Now() + timeout);
  }

  void OnWriteDone(bool /*ok*/) override {}
  void OnCancel() override ABSL_LOCKS_EXCLUDED(mu_) {
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
    }
    Finish(grpc::Status::CANCELLED);
  }
  void OnDone() override {}

 private:
  v1::BusMessage frame_;
  absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

class SilentBus final : public v1::Bus::CallbackService {
 public:
  grpc::ServerWriteReactor<v1::BusMessage>* Subscribe(
      grpc::CallbackServerContext* /*context*/,
      const v1::SubscribeRequest* request) override ABSL_LOCKS_EXCLUDED(mu_) {
    auto call = std::make_unique<SilentSubscribeCall>();
    SilentSubscribeCall* raw = call.get();
    absl::MutexLock lock(&mu_);
    requests_.push_back(*request);
    calls_.push_back(std::move(call));
    return raw;
  }
  // The n-th Subscribe call (0-based) once it arrived; nullptr after `timeout`.
  SilentSubscribeCall* WaitForCall(size_t n,
                                   const v1::SubscribeRequest** request)
      ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    auto arrived = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return calls_.size() > n;
    };
    if (!mu_.AwaitWithDeadline(absl::Condition(&arrived), absl::Now() + kWait))
      return nullptr;
    *request = &requests_[n];
    return calls_[n].get();
  }

 private:
  absl::Mutex mu_;
  std::deque<v1::SubscribeRequest> requests_ ABSL_GUARDED_BY(mu_);
  // Kept until the server is gone: a reactor must outlive its OnDone.
  std::vector<std::unique_ptr<SilentSubscribeCall>> calls_ ABSL_GUARDED_BY(mu_);
};

// A SilentBus on 127.0.0.1:0 and a Client connected to it.
class SilentBusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(&service);
    server = builder.BuildAndStart();
    ASSERT_NE(server, nullptr);
    ASSERT_OK_AND_ASSIGN(client,
                         Client::Connect(absl::StrCat("127.0.0.1:", port)));
  }
  void TearDown() override {
    client.reset();
    if (server != nullptr) {
      server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
    }
  }

  SilentBus service;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<Client> client;
};

TEST_F(SilentBusTest, ASubscriptionThatHearsNothingIsCancelledAndReconnected) {
  Recorder<BusMessage> got;
  {
    ASSERT_OK_AND_ASSIGN(
        SubscriptionHandle sub,
        client->Subscribe({"orders.*"},
                          [&got](const BusMessage& m) { got.Add(m); },
                          {.progress_interval = absl::Milliseconds(50),
                           .dead_after = absl::Milliseconds(300)}));
    const v1::SubscribeRequest* request = nullptr;
    SilentSubscribeCall* first = service.WaitForCall(0, &request);
    ASSERT_NE(first, nullptr);
    EXPECT_THAT(request->patterns(), ElementsAre("orders.*"));
    EXPECT_EQ(request->progress_interval().nanos(), 50000000);
    // Not even a progress frame within dead_after: the client cancels the
    // stream and subscribes again.
    ASSERT_TRUE(first->WaitCancelled(kWait));
    SilentSubscribeCall* second = service.WaitForCall(1, &request);
    ASSERT_NE(second, nullptr);
    EXPECT_THAT(request->patterns(), ElementsAre("orders.*"));
    v1::BusMessage frame;
    frame.set_kind(v1::BusMessage::MESSAGE);
    frame.set_topic("orders.new");
    frame.mutable_value()->set_int_value(7);
    frame.set_sequence(1);
    second->Send(frame);
    ASSERT_TRUE(got.WaitForSize(1, kWait));
    EXPECT_EQ(got.Items()[0].topic, "orders.new");
    EXPECT_EQ(got.Items()[0].sequence, 1u);
    EXPECT_EQ(sub.reconnects(), 1u);
    EXPECT_TRUE(sub.active());
  }  // the handle stops the subscription (cancelling the second call)
}

// A BATCH frame reaches the callback as its messages, one by one and in order,
// the frame's loss on the first of them; the request asked for the batch size.
TEST_F(SilentBusTest, ABatchFrameIsDeliveredMessageByMessage) {
  Recorder<BusMessage> got;
  {
    ASSERT_OK_AND_ASSIGN(
        SubscriptionHandle sub,
        client->Subscribe({"orders.*"},
                          [&got](const BusMessage& m) { got.Add(m); },
                          {.max_batch = 8}));
    const v1::SubscribeRequest* request = nullptr;
    SilentSubscribeCall* call = service.WaitForCall(0, &request);
    ASSERT_NE(call, nullptr);
    EXPECT_EQ(request->max_batch(), 8u);
    v1::BusMessage frame;
    frame.set_kind(v1::BusMessage::BATCH);
    frame.mutable_loss()->set_dropped(2);
    frame.mutable_loss()->set_total_dropped(2);
    for (uint64_t sequence : {3, 4, 5}) {
      v1::BusMessage* m = frame.add_messages();
      m->set_kind(v1::BusMessage::MESSAGE);
      m->set_topic("orders.new");
      m->mutable_value()->set_int_value(static_cast<int64_t>(sequence) * 10);
      m->set_sequence(sequence);
    }
    call->Send(frame);
    ASSERT_TRUE(got.WaitForSize(3, kWait));
    const std::vector<BusMessage> messages = got.Items();
    ASSERT_EQ(messages.size(), 3u);
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(messages[i].topic, "orders.new");
      EXPECT_EQ(messages[i].sequence, i + 3);
      EXPECT_EQ(messages[i].value,
                Value::Int(static_cast<int64_t>(i + 3) * 10));
      EXPECT_EQ(messages[i].missed, 0u);
    }
    ASSERT_TRUE(messages[0].loss.has_value());
    EXPECT_EQ(messages[0].loss->dropped, 2u);
    EXPECT_FALSE(messages[1].loss.has_value());
    EXPECT_FALSE(messages[2].loss.has_value());
  }
}

}  // namespace
}  // namespace tshare::client
