// Bus over gRPC: publish, wildcard subscriptions, per-subscriber order and flow
// control.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "tests/integration/test_server.h"
#include "tshare/v1/admin.grpc.pb.h"
#include "tshare/v1/bus.grpc.pb.h"

namespace tshare {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::TestServer;

v1::PublishResponse Publish(v1::Bus::Stub& stub, const std::string& topic,
                            int64_t value) {
  v1::PublishRequest request;
  request.set_topic(topic);
  request.mutable_value()->set_int_value(value);
  v1::PublishResponse response;
  grpc::ClientContext context;
  grpc::Status status = stub.Publish(&context, request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return response;
}

grpc::Status PublishStatus(v1::Bus::Stub& stub,
                           const v1::PublishRequest& request) {
  v1::PublishResponse response;
  grpc::ClientContext context;
  return stub.Publish(&context, request, &response);
}

// An open Subscribe stream. Start() returns once the server has registered it:
// the first frame of a stream with a short progress interval is a PROGRESS
// frame, and the server only sends one to a registered subscription.
class Subscriber {
 public:
  Subscriber(v1::Bus::Stub& stub, v1::SubscribeRequest request) {
    if (!request.has_progress_interval()) {
      request.mutable_progress_interval()->set_nanos(20'000'000);
    }
    reader_ = stub.Subscribe(&context_, request);
  }
  ~Subscriber() {
    if (finished_) return;
    context_.TryCancel();
    reader_->Finish();
  }

  // Reads until the first PROGRESS frame; false if the stream ended.
  bool Start() {
    v1::BusMessage frame;
    while (reader_->Read(&frame)) {
      if (frame.kind() == v1::BusMessage::PROGRESS) return true;
    }
    return false;
  }

  // The next MESSAGE frame (PROGRESS frames skipped); false if the stream
  // ended.
  bool Next(v1::BusMessage* message) {
    while (reader_->Read(message)) {
      if (message->kind() == v1::BusMessage::MESSAGE) return true;
    }
    return false;
  }

  grpc::ClientReader<v1::BusMessage>& reader() { return *reader_; }
  grpc::ClientContext& context() { return context_; }
  grpc::Status Finish() {
    finished_ = true;
    return reader_->Finish();
  }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<v1::BusMessage>> reader_;
  bool finished_ = false;
};

v1::SubscribeRequest Patterns(std::vector<std::string> patterns) {
  v1::SubscribeRequest request;
  for (std::string& p : patterns) request.add_patterns(std::move(p));
  return request;
}

TEST(BusTest, PublishNumbersMessagesPerTopic) {
  TestServer server;
  auto stub = v1::Bus::NewStub(server.channel());
  EXPECT_EQ(Publish(*stub, "orders.new", 1).sequence(), 1u);
  EXPECT_EQ(Publish(*stub, "orders.new", 2).sequence(), 2u);
  EXPECT_EQ(Publish(*stub, "orders.old", 3).sequence(), 1u);
  EXPECT_EQ(Publish(*stub, "orders.new", 4).receivers(), 0u);
}

TEST(BusTest, WildcardsSelectTopics) {
  TestServer server;
  auto stub = v1::Bus::NewStub(server.channel());
  Subscriber one_segment(*stub, Patterns({"orders.*"}));
  Subscriber rest(*stub, Patterns({"orders.>"}));
  Subscriber exact(*stub, Patterns({"orders.eu.new"}));
  ASSERT_TRUE(one_segment.Start());
  ASSERT_TRUE(rest.Start());
  ASSERT_TRUE(exact.Start());

  EXPECT_EQ(Publish(*stub, "orders", 0).receivers(), 0u);
  EXPECT_EQ(Publish(*stub, "orders.new", 1).receivers(), 2u);
  EXPECT_EQ(Publish(*stub, "orders.eu.new", 2).receivers(), 2u);
  EXPECT_EQ(Publish(*stub, "shipping.new", 3).receivers(), 0u);
  EXPECT_EQ(Publish(*stub, "orders.old", 4).receivers(), 2u);

  auto read = [](Subscriber& s, int n) {
    std::vector<std::string> got;
    v1::BusMessage m;
    for (int i = 0; i < n && s.Next(&m); ++i) {
      got.push_back(absl::StrCat(m.topic(), "#", m.sequence(), "=",
                                 m.value().int_value()));
    }
    return got;
  };
  EXPECT_THAT(read(one_segment, 2),
              ElementsAre("orders.new#1=1", "orders.old#1=4"));
  EXPECT_THAT(read(rest, 3), ElementsAre("orders.new#1=1", "orders.eu.new#1=2",
                                         "orders.old#1=4"));
  EXPECT_THAT(read(exact, 1), ElementsAre("orders.eu.new#1=2"));
}

TEST(BusTest, EachSubscriberGetsEveryMessageInPublishOrder) {
  TestServer server;
  auto stub = v1::Bus::NewStub(server.channel());
  Subscriber first(*stub, Patterns({"sensors.>"}));
  Subscriber second(*stub, Patterns({"sensors.a", "sensors.b"}));
  ASSERT_TRUE(first.Start());
  ASSERT_TRUE(second.Start());

  constexpr int kPerTopic = 200;
  std::vector<std::thread> publishers;
  for (const char* topic : {"sensors.a", "sensors.b"}) {
    publishers.emplace_back([&stub, topic] {
      for (int i = 1; i <= kPerTopic; ++i) Publish(*stub, topic, i);
    });
  }
  for (std::thread& t : publishers) t.join();

  for (Subscriber* s : {&first, &second}) {
    std::map<std::string, uint64_t> last;
    v1::BusMessage m;
    for (int i = 0; i < 2 * kPerTopic; ++i) {
      ASSERT_TRUE(s->Next(&m));
      // Within a topic: every sequence, in order, each carrying the value
      // published with it.
      EXPECT_EQ(m.sequence(), last[m.topic()] + 1) << m.topic();
      EXPECT_EQ(m.value().int_value(), static_cast<int64_t>(m.sequence()));
      EXPECT_FALSE(m.has_loss());
      last[m.topic()] = m.sequence();
    }
    EXPECT_EQ(last["sensors.a"], static_cast<uint64_t>(kPerTopic));
    EXPECT_EQ(last["sensors.b"], static_cast<uint64_t>(kPerTopic));
  }
}

TEST(BusTest, IdleStreamGetsProgressFrames) {
  TestServer server;
  auto stub = v1::Bus::NewStub(server.channel());
  Subscriber s(*stub, Patterns({"quiet.*"}));
  ASSERT_TRUE(s.Start());
  Publish(*stub, "quiet.one", 7);
  v1::BusMessage frame;
  ASSERT_TRUE(s.reader().Read(&frame));
  EXPECT_EQ(frame.kind(), v1::BusMessage::MESSAGE);
  EXPECT_EQ(frame.value().int_value(), 7);
  EXPECT_TRUE(frame.has_published_at());
  ASSERT_TRUE(s.reader().Read(&frame));
  EXPECT_EQ(frame.kind(), v1::BusMessage::PROGRESS);
  EXPECT_TRUE(frame.topic().empty());
}

TEST(BusTest, BadTopicsAndPatternsAreInvalidArgument) {
  service::ServerOptions options = TestServer::DefaultOptions();
  options.max_topic_bytes = 16;
  options.max_subscriptions_per_stream = 2;
  options.subscription_queue = 10;
  options.max_subscription_queue = 100;
  TestServer server(options);
  auto stub = v1::Bus::NewStub(server.channel());

  v1::PublishRequest publish;
  publish.mutable_value()->set_int_value(1);
  for (const char* topic :
       {"", "orders.*", "orders.>", "orders..new", "a.very.long.topic.name"}) {
    publish.set_topic(topic);
    grpc::Status status = PublishStatus(*stub, publish);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << topic;
  }
  publish.set_topic("orders.*");
  EXPECT_THAT(PublishStatus(*stub, publish).error_message(),
              HasSubstr("wildcard"));
  publish.set_topic("a.very.long.topic.name");
  EXPECT_THAT(PublishStatus(*stub, publish).error_message(),
              HasSubstr("--max_topic_bytes=16"));
  publish.set_topic("orders.new");
  publish.clear_value();
  EXPECT_EQ(PublishStatus(*stub, publish).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  std::vector<v1::SubscribeRequest> bad;
  bad.push_back(Patterns({}));
  bad.push_back(Patterns({"orders..new"}));
  bad.push_back(Patterns({"orders.>.new"}));
  bad.push_back(Patterns({"a.*", "b.*", "c.*"}));
  bad.push_back(Patterns({"a.very.long.topic.name"}));
  bad.push_back(Patterns({"ok"}));
  bad.back().set_max_queue(101);
  bad.push_back(Patterns({"ok"}));
  bad.back().set_policy(static_cast<v1::OverflowPolicy>(99));
  bad.push_back(Patterns({"ok"}));
  bad.back().mutable_progress_interval()->set_nanos(1'000'000);
  bad.push_back(Patterns({"ok"}));
  bad.back().set_max_batch(1025);
  for (const v1::SubscribeRequest& request : bad) {
    grpc::ClientContext context;
    auto reader = stub->Subscribe(&context, request);
    v1::BusMessage m;
    EXPECT_FALSE(reader->Read(&m));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << request.ShortDebugString();
  }
  grpc::ClientContext context;
  auto reader = stub->Subscribe(&context, bad.back());
  v1::BusMessage m;
  EXPECT_FALSE(reader->Read(&m));
  EXPECT_THAT(reader->Finish().error_message(),
              HasSubstr("max_batch=1025 exceeds 1024"));
}

// A channel whose streams get a small flow-control window that never grows, so
// that a subscriber that stops reading stalls the server's writes after a few
// large messages.
std::shared_ptr<grpc::Channel> SmallWindowChannel(const TestServer& server) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 64 * 1024);
  return grpc::CreateCustomChannel(server.address(),
                                   grpc::InsecureChannelCredentials(), args);
}

// Messages large enough that the first one fills the stalled stream's window.
constexpr int kBigValueBytes = 256 * 1024;

void PublishBig(v1::Bus::Stub& stub, const std::string& topic, int n) {
  v1::PublishRequest request;
  request.set_topic(topic);
  request.mutable_value()->set_string_value(std::string(kBigValueBytes, 'x'));
  for (int i = 0; i < n; ++i) ASSERT_TRUE(PublishStatus(stub, request).ok());
}

// What a stalled subscriber got once it read again.
struct Drained {
  std::vector<std::pair<std::string, uint64_t>> received;  // topic, sequence
  uint64_t dropped = 0;    // sum of loss.dropped over all frames
  uint64_t conflated = 0;  // sum of loss.conflated
  uint64_t last_total_dropped = 0;
  uint64_t last_total_conflated = 0;
  v1::SubscriptionInfo info;  // the server's view at the end
};

// Reads the stalled subscriber (the one whose max_queue is `max_queue`) until
// the server has handled all `published` messages for it (Admin shows them
// delivered or lost and its queue empty), then one more PROGRESS frame, which
// carries any loss not reported yet.
Drained Drain(Subscriber& s, v1::Admin::Stub& admin, uint64_t published,
              uint32_t max_queue) {
  Drained out;
  bool settled = false;
  v1::BusMessage frame;
  while (s.reader().Read(&frame)) {
    if (frame.has_loss()) {
      out.dropped += frame.loss().dropped();
      out.conflated += frame.loss().conflated();
      out.last_total_dropped = frame.loss().total_dropped();
      out.last_total_conflated = frame.loss().total_conflated();
    }
    if (frame.kind() == v1::BusMessage::MESSAGE) {
      out.received.emplace_back(frame.topic(), frame.sequence());
      continue;
    }
    if (settled) break;
    v1::ListSubscriptionsResponse list;
    grpc::ClientContext context;
    EXPECT_TRUE(admin.ListSubscriptions(&context, {}, &list).ok());
    // The stalled subscriber is the one with the small max_queue.
    for (const v1::SubscriptionInfo& info : list.subscriptions()) {
      if (info.kind() != v1::SubscriptionInfo::SUBSCRIPTION ||
          info.max_queue() != max_queue) {
        continue;
      }
      out.info = info;
      settled =
          info.queue_depth() == 0 &&
          info.delivered() + info.dropped() + info.conflated() == published;
    }
  }
  return out;
}

v1::SubscribeRequest Stalling(const std::string& pattern, uint32_t max_queue,
                              v1::OverflowPolicy policy) {
  v1::SubscribeRequest request = Patterns({pattern});
  request.set_max_queue(max_queue);
  request.set_policy(policy);
  request.mutable_progress_interval()->set_nanos(50'000'000);
  return request;
}

// Messages that wait for a stalled subscriber leave in BATCH frames once it
// reads again, at most max_batch of them and about 1 MiB (so 3 of these 256 KiB
// messages, not the 8 max_batch allows); a subscriber that did not ask gets
// them one a frame. Both see every message, in order.
TEST(BusFlowControlTest, WaitingMessagesLeaveInBatchesOfMaxBatch) {
  TestServer server;
  auto stub = v1::Bus::NewStub(server.channel());
  // Each on a connection of its own.
  auto batched_stub = v1::Bus::NewStub(SmallWindowChannel(server));
  auto single_stub = v1::Bus::NewStub(SmallWindowChannel(server));
  v1::SubscribeRequest batched_request =
      Stalling("big.*", 100, v1::DROP_OLDEST);
  batched_request.set_max_batch(8);
  Subscriber batched(*batched_stub, batched_request);
  Subscriber single(*single_stub, Stalling("big.*", 100, v1::DROP_OLDEST));
  ASSERT_TRUE(batched.Start());
  ASSERT_TRUE(single.Start());
  constexpr int kMessages = 12;
  PublishBig(*stub, "big.one", kMessages);

  std::vector<uint64_t> batched_sequences;
  int batch_frames = 0;
  v1::BusMessage frame;
  while (static_cast<int>(batched_sequences.size()) < kMessages &&
         batched.reader().Read(&frame)) {
    if (frame.kind() == v1::BusMessage::MESSAGE) {
      batched_sequences.push_back(frame.sequence());
    } else if (frame.kind() == v1::BusMessage::BATCH) {
      ++batch_frames;
      EXPECT_GE(frame.messages_size(), 2);
      EXPECT_LE(frame.messages_size(), 3);
      for (const v1::BusMessage& m : frame.messages()) {
        EXPECT_EQ(m.kind(), v1::BusMessage::MESSAGE);
        EXPECT_EQ(m.topic(), "big.one");
        EXPECT_EQ(m.value().string_value().size(), kBigValueBytes);
        batched_sequences.push_back(m.sequence());
      }
    }
  }
  // The first message stalled the window; the other 11 waited behind it.
  EXPECT_GE(batch_frames, 4);
  std::vector<uint64_t> single_sequences;
  while (static_cast<int>(single_sequences.size()) < kMessages &&
         single.reader().Read(&frame)) {
    EXPECT_NE(frame.kind(), v1::BusMessage::BATCH);
    if (frame.kind() == v1::BusMessage::MESSAGE) {
      single_sequences.push_back(frame.sequence());
    }
  }
  std::vector<uint64_t> all(kMessages);
  for (int i = 0; i < kMessages; ++i) all[i] = static_cast<uint64_t>(i + 1);
  EXPECT_EQ(batched_sequences, all);
  EXPECT_EQ(single_sequences, all);
}

TEST(BusFlowControlTest, DropOldestKeepsTheNewestAndCountsTheRest) {
  TestServer server;
  auto stub = v1::Bus::NewStub(server.channel());
  auto admin = v1::Admin::NewStub(server.channel());
  auto slow_stub = v1::Bus::NewStub(SmallWindowChannel(server));
  Subscriber slow(*slow_stub, Stalling("big.*", 4, v1::DROP_OLDEST));
  Subscriber fast(*stub, Patterns({"big.*"}));
  ASSERT_TRUE(slow.Start());
  ASSERT_TRUE(fast.Start());

  constexpr int kPublished = 24;
  PublishBig(*stub, "big.data", kPublished);
  // The fast subscriber is not slowed by the stalled one and loses nothing.
  v1::BusMessage m;
  for (int i = 1; i <= kPublished; ++i) {
    ASSERT_TRUE(fast.Next(&m));
    EXPECT_EQ(m.sequence(), static_cast<uint64_t>(i));
    EXPECT_FALSE(m.has_loss());
  }

  Drained d = Drain(slow, *admin, kPublished, 4);
  ASSERT_FALSE(d.received.empty());
  EXPECT_GT(d.dropped, 0u) << "the subscriber never stalled";
  EXPECT_EQ(d.dropped + d.received.size(), static_cast<uint64_t>(kPublished));
  EXPECT_EQ(d.last_total_dropped, d.dropped);
  EXPECT_EQ(d.conflated, 0u);
  EXPECT_EQ(d.info.dropped(), d.dropped);
  EXPECT_EQ(d.info.policy(), v1::DROP_OLDEST);
  // In order, and the newest four (what the queue held) all arrived.
  for (size_t i = 1; i < d.received.size(); ++i) {
    EXPECT_LT(d.received[i - 1].second, d.received[i].second);
  }
  ASSERT_GE(d.received.size(), 4u);
  for (int k = 0; k < 4; ++k) {
    EXPECT_EQ(d.received[d.received.size() - 1 - k].second,
              static_cast<uint64_t>(kPublished - k));
  }
}

TEST(BusFlowControlTest, DropNewestKeepsTheOldestAndCountsTheRest) {
  TestServer server;
  auto stub = v1::Bus::NewStub(server.channel());
  auto admin = v1::Admin::NewStub(server.channel());
  auto slow_stub = v1::Bus::NewStub(SmallWindowChannel(server));
  Subscriber slow(*slow_stub, Stalling("big.*", 4, v1::DROP_NEWEST));
  ASSERT_TRUE(slow.Start());

  constexpr int kPublished = 24;
  PublishBig(*stub, "big.data", kPublished);
  Drained d = Drain(slow, *admin, kPublished, 4);
  EXPECT_GT(d.dropped, 0u) << "the subscriber never stalled";
  EXPECT_EQ(d.dropped + d.received.size(), static_cast<uint64_t>(kPublished));
  EXPECT_EQ(d.last_total_dropped, d.dropped);
  // In order, and the oldest (the one being written and the four queued when
  // the subscriber stalled) all arrived: only newer ones were discarded.
  ASSERT_GE(d.received.size(), 5u);
  for (size_t i = 0; i < d.received.size(); ++i) {
    if (i < 5) EXPECT_EQ(d.received[i].second, i + 1);
    if (i > 0) EXPECT_LT(d.received[i - 1].second, d.received[i].second);
  }
}

TEST(BusFlowControlTest, ConflateKeepsTheNewestOfEachTopic) {
  TestServer server;
  auto stub = v1::Bus::NewStub(server.channel());
  auto admin = v1::Admin::NewStub(server.channel());
  auto slow_stub = v1::Bus::NewStub(SmallWindowChannel(server));
  Subscriber slow(*slow_stub, Stalling("big.*", 2, v1::CONFLATE));
  ASSERT_TRUE(slow.Start());

  constexpr int kRounds = 12;
  for (int i = 0; i < kRounds; ++i) {
    PublishBig(*stub, "big.a", 1);
    PublishBig(*stub, "big.b", 1);
  }
  Drained d = Drain(slow, *admin, 2 * kRounds, 2);
  EXPECT_GT(d.conflated, 0u) << "the subscriber never stalled";
  EXPECT_EQ(d.dropped, 0u);
  EXPECT_EQ(d.conflated + d.received.size(),
            static_cast<uint64_t>(2 * kRounds));
  EXPECT_EQ(d.last_total_conflated, d.conflated);
  EXPECT_EQ(d.info.conflated(), d.conflated);
  std::map<std::string, uint64_t> last;
  for (const auto& [topic, sequence] : d.received) {
    EXPECT_GT(sequence, last[topic]) << topic;
    last[topic] = sequence;
  }
  // Each topic's newest message always survives.
  EXPECT_EQ(last["big.a"], static_cast<uint64_t>(kRounds));
  EXPECT_EQ(last["big.b"], static_cast<uint64_t>(kRounds));
}

TEST(BusFlowControlTest, CloseEndsTheStreamWithWhereToResume) {
  TestServer server;
  auto stub = v1::Bus::NewStub(server.channel());
  auto slow_stub = v1::Bus::NewStub(SmallWindowChannel(server));
  Subscriber slow(*slow_stub, Stalling("big.*", 2, v1::CLOSE));
  ASSERT_TRUE(slow.Start());

  PublishBig(*stub, "big.data", 16);
  uint64_t last = 0;
  v1::BusMessage m;
  while (slow.Next(&m)) last = m.sequence();
  grpc::Status status = slow.Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("max_queue"));
  EXPECT_THAT(status.error_message(),
              HasSubstr(absl::StrCat("sequence ", last + 1)));
  const auto& trailers = slow.context().GetServerTrailingMetadata();
  auto resume = trailers.find("tshare-resume-sequence");
  ASSERT_NE(resume, trailers.end());
  EXPECT_EQ(std::string(resume->second.data(), resume->second.size()),
            absl::StrCat(last + 1));
  auto topic = trailers.find("tshare-resume-topic");
  ASSERT_NE(topic, trailers.end());
  EXPECT_EQ(std::string(topic->second.data(), topic->second.size()),
            "big.data");
}

}  // namespace
}  // namespace tshare
