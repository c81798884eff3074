#include "core/message_bus.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "core/thread_pool.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/status_matchers.h"

namespace tshare::core {
namespace {

using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
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

// Generous: only reached when something is broken (a test would otherwise
// hang).
constexpr absl::Duration kWait = absl::Seconds(60);

ThreadPoolOptions TestPoolOptions() {
  ThreadPoolOptions options;
  options.name = "bus-test";
  options.min_threads = 1;
  options.max_threads = 4;
  return options;
}

// Records what a handler receives; lets a test wait for a count of calls.
class Recorder {
 public:
  Handler MakeHandler() {
    return [this](const Message& m) { Record(m); };
  }

  void Record(const Message& m) {
    absl::MutexLock lock(&mu_);
    topics_.push_back(m.topic);
    sequences_.push_back(m.sequence);
    const int* value = m.As<int>();
    values_.push_back(value == nullptr ? -1 : *value);
  }

  // True once at least `n` calls were recorded (false after kWait).
  bool WaitFor(size_t n) {
    absl::MutexLock lock(&mu_);
    auto reached = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return topics_.size() >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), kWait);
  }

  std::vector<std::string> topics() const {
    absl::MutexLock lock(&mu_);
    return topics_;
  }
  std::vector<uint64_t> sequences() const {
    absl::MutexLock lock(&mu_);
    return sequences_;
  }
  std::vector<int> values() const {
    absl::MutexLock lock(&mu_);
    return values_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::string> topics_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> sequences_ ABSL_GUARDED_BY(mu_);
  std::vector<int> values_ ABSL_GUARDED_BY(mu_);
};

// A handler whose first call announces itself and then waits for Open(); later
// calls record.
class GatedRecorder {
 public:
  Handler MakeHandler() {
    return [this](const Message& m) {
      if (!first_seen_.exchange(true)) {
        entered_.Notify();
        gate_.WaitForNotificationWithTimeout(kWait);
      }
      recorder_.Record(m);
    };
  }
  bool WaitEntered() { return entered_.WaitForNotificationWithTimeout(kWait); }
  void Open() { gate_.Notify(); }
  Recorder& recorder() { return recorder_; }

 private:
  std::atomic<bool> first_seen_{false};
  absl::Notification entered_;
  absl::Notification gate_;
  Recorder recorder_;
};

std::vector<int> Range(int first, int last) {
  std::vector<int> out;
  for (int i = first; i <= last; ++i) out.push_back(i);
  return out;
}

class MessageBusTest : public ::testing::Test {
 protected:
  ThreadPool pool_{TestPoolOptions()};
  MessageBus bus_{&pool_};
};

// ---- Payload ----

TEST(PayloadTest, StoresValueAndChecksTheExactType) {
  Payload p = Payload::Of(42);
  ASSERT_NE(p.As<int>(), nullptr);
  EXPECT_EQ(*p.As<int>(), 42);
  EXPECT_EQ(p.As<long>(), nullptr);
  EXPECT_EQ(p.As<std::string>(), nullptr);
  EXPECT_FALSE(p.empty());
  EXPECT_EQ(p.type(), typeid(int));

  Payload empty;
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(empty.As<int>(), nullptr);
  EXPECT_EQ(empty.type(), typeid(void));
}

TEST(PayloadTest, CharacterStringsAreStoredAsStdString) {
  EXPECT_EQ(*Payload::Of("literal").As<std::string>(), "literal");
  const char* c_string = "pointer";
  EXPECT_EQ(*Payload::Of(c_string).As<std::string>(), "pointer");
  EXPECT_EQ(*Payload::Of(std::string_view("view")).As<std::string>(), "view");
  EXPECT_EQ(Payload::Of("literal").As<const char*>(), nullptr);
}

TEST(PayloadTest, FromSharedSharesWithoutCopying) {
  auto value =
      std::make_shared<const std::vector<int>>(std::vector<int>{1, 2, 3});
  Payload p = Payload::FromShared(value);
  EXPECT_EQ(p.As<std::vector<int>>(), value.get());
  Payload copy = p;
  EXPECT_EQ(copy.As<std::vector<int>>(), value.get());
  std::shared_ptr<const std::vector<int>> shared =
      copy.Share<std::vector<int>>();
  EXPECT_EQ(shared.get(), value.get());
  EXPECT_EQ(copy.Share<int>(), nullptr);
  EXPECT_TRUE(Payload::FromShared(std::shared_ptr<const int>()).empty());
  auto mutable_value = std::make_shared<std::string>("built once");
  Payload from_mutable = Payload::FromShared(mutable_value);
  EXPECT_EQ(from_mutable.As<std::string>(), mutable_value.get());
}

// ---- Matching ----

TEST_F(MessageBusTest, DeliversAnExactTopicAndNothingElse) {
  Recorder r;
  ASSERT_OK_AND_ASSIGN(Subscription sub,
                       bus_.Subscribe("orders.new", r.MakeHandler()));
  ASSERT_OK(bus_.Publish("orders.old", 1).status());
  ASSERT_OK(bus_.Publish("orders", 2).status());
  ASSERT_OK(bus_.Publish("orders.new.eu", 3).status());
  ASSERT_OK(bus_.Publish("orders.new", 4).status());
  ASSERT_TRUE(r.WaitFor(1));
  sub.Unsubscribe();
  EXPECT_THAT(r.topics(), ElementsAre("orders.new"));
  EXPECT_THAT(r.values(), ElementsAre(4));
}

TEST_F(MessageBusTest, StarMatchesExactlyOneSegment) {
  Recorder r;
  ASSERT_OK_AND_ASSIGN(Subscription sub,
                       bus_.Subscribe("a.*", r.MakeHandler()));
  ASSERT_OK(bus_.Publish("a", 0).status());
  ASSERT_OK(bus_.Publish("a.b.c", 0).status());
  ASSERT_OK(bus_.Publish("b.a", 0).status());
  ASSERT_OK(bus_.Publish("a.b", 0).status());
  ASSERT_OK(bus_.Publish("a.x", 0).status());
  ASSERT_TRUE(r.WaitFor(2));
  sub.Unsubscribe();
  EXPECT_THAT(r.topics(), ElementsAre("a.b", "a.x"));
}

TEST_F(MessageBusTest, GreaterThanMatchesOneOrMoreTrailingSegments) {
  Recorder r;
  ASSERT_OK_AND_ASSIGN(Subscription sub,
                       bus_.Subscribe("a.>", r.MakeHandler()));
  ASSERT_OK(bus_.Publish("a", 0).status());
  ASSERT_OK(bus_.Publish("b.c", 0).status());
  ASSERT_OK(bus_.Publish("a.b", 0).status());
  ASSERT_OK(bus_.Publish("a.b.c", 0).status());
  ASSERT_OK(bus_.Publish("a.b.c.d.e", 0).status());
  ASSERT_TRUE(r.WaitFor(3));
  sub.Unsubscribe();
  EXPECT_THAT(r.topics(), ElementsAre("a.b", "a.b.c", "a.b.c.d.e"));
}

TEST_F(MessageBusTest, StarMatchesInTheMiddleAndAtTheStart) {
  Recorder middle;
  Recorder start;
  ASSERT_OK_AND_ASSIGN(Subscription s1,
                       bus_.Subscribe("a.*.c", middle.MakeHandler()));
  ASSERT_OK_AND_ASSIGN(Subscription s2,
                       bus_.Subscribe("*.b.>", start.MakeHandler()));
  for (const char* topic :
       {"a.c", "a.b.d", "a.b.c.d", "x.b", "a.b.c", "a.zz.c", "x.b.y"}) {
    ASSERT_OK(bus_.Publish(topic, 0).status()) << topic;
  }
  ASSERT_TRUE(middle.WaitFor(2));
  ASSERT_TRUE(start.WaitFor(4));
  s1.Unsubscribe();
  s2.Unsubscribe();
  EXPECT_THAT(middle.topics(), ElementsAre("a.b.c", "a.zz.c"));
  EXPECT_THAT(start.topics(),
              ElementsAre("a.b.d", "a.b.c.d", "a.b.c", "x.b.y"));
}

TEST_F(MessageBusTest,
       SubscribeAnyDeliversAMessageMatchingSeveralPatternsOnce) {
  Recorder r;
  ASSERT_OK_AND_ASSIGN(
      Subscription sub,
      bus_.SubscribeAny({"a.*", "a.>", "a.b", "a.b"}, r.MakeHandler()));
  EXPECT_THAT(sub.Stats().patterns, ElementsAre("a.*", "a.>", "a.b"));
  EXPECT_EQ(sub.Stats().pattern, "a.*, a.>, a.b");
  ASSERT_OK(bus_.Publish("a.b", 1).status());
  ASSERT_OK(bus_.Publish("a.b.c", 2).status());
  ASSERT_OK(bus_.Publish("z", 3).status());
  ASSERT_OK(bus_.Publish("a.c", 4).status());
  ASSERT_TRUE(r.WaitFor(3));
  sub.Unsubscribe();
  EXPECT_THAT(r.values(), ElementsAre(1, 2, 4));
}

// The index (a trie) must agree with the plain definition of matching for every
// pair.
TEST_F(MessageBusTest, IndexAgreesWithMatchesOnRandomPatternsAndTopics) {
  std::mt19937 rng(20240601);
  const std::vector<std::string> words = {"a", "b", "c"};
  auto random_name = [&](bool pattern) {
    const int n = 1 + static_cast<int>(rng() % 4);
    std::string out;
    for (int i = 0; i < n; ++i) {
      if (i > 0) out += ".";
      const unsigned pick = rng() % (pattern ? 5 : 3);
      if (pick == 3) {
        out += "*";
      } else if (pick == 4 && i == n - 1) {
        out += ">";
      } else {
        out += words[rng() % words.size()];
      }
    }
    return out;
  };
  std::vector<std::string> patterns;
  for (int i = 0; i < 40; ++i) patterns.push_back(random_name(true));
  std::vector<std::string> topics;
  for (int i = 0; i < 60; ++i) topics.push_back(random_name(false));

  std::vector<std::unique_ptr<Recorder>> recorders;
  std::vector<Subscription> subs;
  for (const std::string& pattern : patterns) {
    ASSERT_OK(MessageBus::ValidatePattern(pattern)) << pattern;
    recorders.push_back(std::make_unique<Recorder>());
    ASSERT_OK_AND_ASSIGN(
        Subscription sub,
        bus_.Subscribe(pattern, recorders.back()->MakeHandler()));
    subs.push_back(std::move(sub));
  }
  // Removing some subscriptions exercises the index's pruning too.
  for (size_t i = 0; i < subs.size(); i += 3) subs[i].Unsubscribe();

  for (const std::string& topic : topics)
    ASSERT_OK(bus_.Publish(topic, 0).status()) << topic;
  for (size_t i = 0; i < subs.size(); ++i) {
    std::vector<std::string> expected;
    if (i % 3 != 0) {
      for (const std::string& topic : topics) {
        if (MessageBus::Matches(patterns[i], topic)) expected.push_back(topic);
      }
    }
    ASSERT_TRUE(recorders[i]->WaitFor(expected.size()));
    subs[i].Unsubscribe();
    EXPECT_THAT(recorders[i]->topics(), ElementsAreArray(expected))
        << patterns[i];
  }
}

// ---- Validation ----

TEST_F(MessageBusTest, InvalidTopicIsRejectedWithWhatToChange) {
  EXPECT_THAT(bus_.Publish("", 1), StatusIs(absl::StatusCode::kInvalidArgument,
                                            HasSubstr("topic is empty")));
  for (const char* topic : {".", "a.", ".a", "a..b"}) {
    EXPECT_THAT(bus_.Publish(topic, 1),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("empty segment")))
        << topic;
  }
  for (const char* topic : {"a.*", "a.>", "*", "a*b.c", "a.b>"}) {
    EXPECT_THAT(
        bus_.Publish(topic, 1),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("wildcard")))
        << topic;
  }
  EXPECT_EQ(bus_.Stats().published, 0u);
  EXPECT_EQ(bus_.Stats().topics, 0u);
  EXPECT_OK(MessageBus::ValidateTopic("orders.eu-1.new_2"));
}

TEST_F(MessageBusTest, PublishAcceptsExactlyTheTopicsValidateTopicAccepts) {
  for (const char* topic :
       {"",    ".",     "..",    "a", "a.",    ".a",   "a..b",
        "a.b", "a.b.c", "*",     ">", "a.*",   "*.a",  "a.>",
        "a*",  "a>b",   "a.b*c", "-", "a.-.b", "a b.c"}) {
    const bool valid = MessageBus::ValidateTopic(topic).ok();
    EXPECT_EQ(bus_.Publish(topic, 1).ok(), valid) << "\"" << topic << "\"";
    EXPECT_EQ(bus_.LastSequence(topic), valid ? 1u : 0u)
        << "\"" << topic << "\"";
  }
}

TEST_F(MessageBusTest, InvalidPatternIsRejectedWithWhatToChange) {
  auto handler = [](const Message&) {};
  EXPECT_THAT(bus_.Subscribe("", handler),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("pattern is empty")));
  EXPECT_THAT(
      bus_.Subscribe("a..b", handler),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty segment")));
  EXPECT_THAT(bus_.Subscribe("a.>.b", handler),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("only be the last")));
  for (const char* pattern : {"a.b*", ">x", "a.>>", "a.**", "*a"}) {
    EXPECT_THAT(bus_.Subscribe(pattern, handler),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("whole segment")))
        << pattern;
  }
  EXPECT_THAT(
      bus_.SubscribeAny({}, handler),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no pattern")));
  EXPECT_THAT(bus_.SubscribeAny({"a", "b..c"}, handler),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(bus_.Subscribe("a", nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("handler is empty")));
  EXPECT_THAT(
      bus_.Subscribe("a", handler, {.max_queue = 0}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_queue")));
  EXPECT_THAT(
      bus_.Subscribe("a", handler, {.block_timeout = absl::Seconds(-1)}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("block_timeout")));
  EXPECT_EQ(bus_.Stats().subscriptions, 0u);
  for (const char* pattern : {"a", "*", ">", "a.*.>", "*.*", "a.b.c"}) {
    EXPECT_OK(MessageBus::ValidatePattern(pattern)) << pattern;
  }
}

TEST(MessageBusLimitsTest, MaxSubscriptionsAndMaxTopicsAreEnforced) {
  ThreadPool pool(TestPoolOptions());
  MessageBus bus(&pool, {.max_subscriptions = 2, .max_topics = 2});
  auto handler = [](const Message&) {};
  ASSERT_OK_AND_ASSIGN(Subscription a, bus.Subscribe("a", handler));
  ASSERT_OK_AND_ASSIGN(Subscription b, bus.Subscribe("b", handler));
  EXPECT_THAT(bus.Subscribe("c", handler),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("max_subscriptions")));
  a.Unsubscribe();
  EXPECT_OK(bus.Subscribe("c", handler).status());

  EXPECT_OK(bus.Publish("t1", 1).status());
  EXPECT_OK(bus.Publish("t2", 1).status());
  EXPECT_THAT(
      bus.Publish("t3", 1),
      StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("max_topics")));
  EXPECT_OK(bus.Publish("t1", 1).status());
}

// ---- Sequences and ordering ----

TEST_F(MessageBusTest, SequenceNumbersArePerTopicAndStartAtOne) {
  Recorder r;
  ASSERT_OK_AND_ASSIGN(Subscription sub, bus_.Subscribe(">", r.MakeHandler()));
  EXPECT_EQ(bus_.LastSequence("a"), 0u);
  ASSERT_OK_AND_ASSIGN(uint64_t a1, bus_.Publish("a", 0));
  ASSERT_OK_AND_ASSIGN(uint64_t a2, bus_.Publish("a", 0));
  ASSERT_OK_AND_ASSIGN(uint64_t b1, bus_.Publish("b", 0));
  ASSERT_OK_AND_ASSIGN(uint64_t a3, bus_.Publish("a", 0));
  EXPECT_EQ(a1, 1u);
  EXPECT_EQ(a2, 2u);
  EXPECT_EQ(b1, 1u);
  EXPECT_EQ(a3, 3u);
  EXPECT_EQ(bus_.LastSequence("a"), 3u);
  EXPECT_EQ(bus_.LastSequence("b"), 1u);
  ASSERT_TRUE(r.WaitFor(4));
  sub.Unsubscribe();
  EXPECT_THAT(r.topics(), ElementsAre("a", "a", "b", "a"));
  EXPECT_THAT(r.sequences(), ElementsAre(1, 2, 1, 3));
}

TEST_F(MessageBusTest, OneSubscriberSeesTenThousandMessagesInPublishOrder) {
  constexpr int kCount = 10000;
  std::atomic<int> calls{0};
  std::atomic<int> out_of_order{0};
  std::atomic<int> concurrent{0};
  std::atomic<int> overlaps{0};
  uint64_t last = 0;  // touched only by the handler, one call at a time
  absl::Notification done;
  ASSERT_OK_AND_ASSIGN(
      Subscription sub,
      bus_.Subscribe("seq.test",
                     [&](const Message& m) {
                       if (concurrent.fetch_add(1) != 0) overlaps.fetch_add(1);
                       if (m.sequence <= last ||
                           *m.As<int>() != static_cast<int>(m.sequence)) {
                         out_of_order.fetch_add(1);
                       }
                       last = m.sequence;
                       concurrent.fetch_sub(1);
                       if (calls.fetch_add(1) + 1 == kCount) done.Notify();
                     },
                     {.max_queue = 64,
                      .policy = OverflowPolicy::kBlock,
                      .block_timeout = kWait}));
  for (int i = 1; i <= kCount; ++i)
    ASSERT_OK(bus_.Publish("seq.test", i).status());
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kWait));
  sub.Unsubscribe();
  EXPECT_EQ(calls.load(), kCount);
  EXPECT_EQ(out_of_order.load(), 0);
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_EQ(last, static_cast<uint64_t>(kCount));
  EXPECT_EQ(sub.Stats().delivered, static_cast<uint64_t>(kCount));
  EXPECT_EQ(sub.Stats().dropped, 0u);
}

TEST_F(MessageBusTest, TwoSubscribersBothGetEveryMessage) {
  Recorder r1;
  Recorder r2;
  ASSERT_OK_AND_ASSIGN(Subscription s1,
                       bus_.Subscribe("news.*", r1.MakeHandler()));
  ASSERT_OK_AND_ASSIGN(Subscription s2,
                       bus_.Subscribe("news.sport", r2.MakeHandler()));
  for (int i = 1; i <= 100; ++i)
    ASSERT_OK(bus_.Publish("news.sport", i).status());
  ASSERT_TRUE(r1.WaitFor(100));
  ASSERT_TRUE(r2.WaitFor(100));
  s1.Unsubscribe();
  s2.Unsubscribe();
  EXPECT_THAT(r1.values(), ElementsAreArray(Range(1, 100)));
  EXPECT_THAT(r2.values(), ElementsAreArray(Range(1, 100)));
  EXPECT_EQ(bus_.Stats().published, 100u);
  EXPECT_EQ(bus_.Stats().delivered, 200u);
}

TEST_F(MessageBusTest, HandlersRunOnThePoolNotOnThePublisher) {
  std::thread::id handler_thread;
  absl::Notification done;
  ASSERT_OK_AND_ASSIGN(Subscription sub,
                       bus_.Subscribe("t", [&](const Message&) {
                         handler_thread = std::this_thread::get_id();
                         done.Notify();
                       }));
  ASSERT_OK(bus_.Publish("t", 1).status());
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kWait));
  EXPECT_NE(handler_thread, std::this_thread::get_id());
}

// ---- deliver_on_publisher ----

TEST(MessageBusOnPublisherTest,
     IdleSubscriptionRunsOnThePublisherBeforePublishReturns) {
  ThreadPool pool(TestPoolOptions());
  MessageBus bus(&pool);
  std::vector<int> seen;  // written on this thread only (checked below)
  std::vector<std::thread::id> threads;
  ASSERT_OK_AND_ASSIGN(
      Subscription sub,
      bus.Subscribe("t",
                    [&](const Message& m) {
                      seen.push_back(*m.As<int>());
                      threads.push_back(std::this_thread::get_id());
                    },
                    {.deliver_on_publisher = true}));
  const uint64_t submitted = pool.Stats().submitted;
  for (int i = 1; i <= 3; ++i) {
    ASSERT_OK(bus.Publish("t", i).status());
    // Already delivered: no waiting needed.
    EXPECT_EQ(seen.size(), static_cast<size_t>(i));
  }
  EXPECT_THAT(seen, ElementsAre(1, 2, 3));
  EXPECT_THAT(threads, Each(std::this_thread::get_id()));
  EXPECT_EQ(pool.Stats().submitted, submitted);
  EXPECT_EQ(sub.Stats().delivered, 3u);
}

// Records (value, thread) of each handler call; the call for message 1 waits
// at a gate until Open(). Publish(bus) publishes message 1 from a thread of its
// own, which then runs the handler (deliver_on_publisher).
class ThreadRecorder {
 public:
  using Call = std::pair<int, std::thread::id>;

  Handler MakeHandler() {
    return [this](const Message& m) {
      if (*m.As<int>() == 1) {
        entered_.Notify();
        gate_.WaitForNotificationWithTimeout(kWait);
      }
      absl::MutexLock lock(&mu_);
      calls_.emplace_back(*m.As<int>(), std::this_thread::get_id());
    };
  }
  // Returns once message 1's handler call has started on the new thread.
  bool PublishFirstFromAnotherThread(MessageBus& bus) {
    publisher_ = std::thread([this, &bus] {
      first_publisher_ = std::this_thread::get_id();
      EXPECT_OK(bus.Publish("t", 1).status());
    });
    return entered_.WaitForNotificationWithTimeout(kWait);
  }
  // Opens the gate and waits for that Publish to return.
  void OpenAndJoin() {
    gate_.Notify();
    publisher_.join();
  }
  // The calls so far, once there are at least `n` (empty after kWait).
  std::vector<Call> WaitFor(size_t n) {
    absl::MutexLock lock(&mu_);
    auto reached = [this, n]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return calls_.size() >= n;
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&reached), kWait)) return {};
    return calls_;
  }
  std::thread::id first_publisher() const { return first_publisher_; }

  ~ThreadRecorder() {
    if (publisher_.joinable()) OpenAndJoin();
  }

 private:
  absl::Notification entered_;
  absl::Notification gate_;
  std::thread publisher_;
  std::thread::id first_publisher_;
  absl::Mutex mu_;
  std::vector<Call> calls_ ABSL_GUARDED_BY(mu_);
};

// While one publisher runs the handler, another publisher only queues: the
// first delivers everything in order, one call at a time.
TEST(MessageBusOnPublisherTest,
     BusySubscriptionQueuesAndTheRunningPublisherDelivers) {
  ThreadPool pool(TestPoolOptions());
  MessageBus bus(&pool);
  ThreadRecorder r;
  ASSERT_OK_AND_ASSIGN(
      Subscription sub,
      bus.Subscribe("t", r.MakeHandler(), {.deliver_on_publisher = true}));
  ASSERT_TRUE(r.PublishFirstFromAnotherThread(bus));
  // Returns at once: the subscription is busy on the other thread.
  ASSERT_OK(bus.Publish("t", 2).status());
  ASSERT_OK(bus.Publish("t", 3).status());
  EXPECT_THAT(r.WaitFor(0), IsEmpty());
  r.OpenAndJoin();  // its Publish returns after delivering 1, 2 and 3
  const std::vector<ThreadRecorder::Call> calls = r.WaitFor(3);
  ASSERT_EQ(calls.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(calls[i].first, i + 1);
    EXPECT_EQ(calls[i].second, r.first_publisher());
  }
}

// A publisher delivers one drain_batch, then hands the rest to the pool and
// returns.
TEST(MessageBusOnPublisherTest, AfterOneDrainBatchThePoolTakesOver) {
  ThreadPool pool(TestPoolOptions());
  MessageBus bus(&pool, {.drain_batch = 2});
  ThreadRecorder r;
  ASSERT_OK_AND_ASSIGN(
      Subscription sub,
      bus.Subscribe("t", r.MakeHandler(), {.deliver_on_publisher = true}));
  ASSERT_TRUE(r.PublishFirstFromAnotherThread(bus));
  for (int i = 2; i <= 6; ++i) ASSERT_OK(bus.Publish("t", i).status());
  r.OpenAndJoin();
  const std::vector<ThreadRecorder::Call> calls = r.WaitFor(6);
  ASSERT_EQ(calls.size(), 6u);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(calls[i].first, i + 1);
  EXPECT_EQ(calls[0].second, r.first_publisher());
  EXPECT_EQ(calls[1].second, r.first_publisher());
  for (int i = 2; i < 6; ++i) {
    EXPECT_NE(calls[i].second, r.first_publisher());
    EXPECT_NE(calls[i].second, std::this_thread::get_id());
  }
}

TEST(MessageBusOnPublisherTest,
     UnsubscribeFromInsideTheHandlerStopsFurtherCalls) {
  ThreadPool pool(TestPoolOptions());
  MessageBus bus(&pool);
  Subscription sub;
  int calls = 0;
  ASSERT_OK_AND_ASSIGN(sub, bus.Subscribe("t",
                                          [&](const Message&) {
                                            ++calls;
                                            sub.Unsubscribe();
                                          },
                                          {.deliver_on_publisher = true}));
  for (int i = 1; i <= 10; ++i) ASSERT_OK(bus.Publish("t", i).status());
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(sub.active());
  EXPECT_EQ(sub.Stats().delivered, 1u);
}

// ---- Overflow ----

// max_queue = 4. Message 1 is in the handler (not queued) while 2..8 arrive:
// the queue can hold 4 of those 7, so 3 are dropped.
constexpr size_t kSmallQueue = 4;
constexpr int kOverflowLast = 8;

TEST_F(MessageBusTest, DropOldestKeepsTheNewestMessagesAndCountsTheRest) {
  GatedRecorder g;
  ASSERT_OK_AND_ASSIGN(Subscription sub,
                       bus_.Subscribe("q", g.MakeHandler(),
                                      {.max_queue = kSmallQueue,
                                       .policy = OverflowPolicy::kDropOldest}));
  ASSERT_OK(bus_.Publish("q", 1).status());
  ASSERT_TRUE(g.WaitEntered());
  for (int i = 2; i <= kOverflowLast; ++i)
    ASSERT_OK(bus_.Publish("q", i).status());
  EXPECT_EQ(sub.Stats().queued, kSmallQueue);
  EXPECT_EQ(sub.Stats().dropped, 3u);
  g.Open();
  ASSERT_TRUE(g.recorder().WaitFor(5));
  sub.Unsubscribe();  // waits for the last call, so the counters below are
                      // final
  EXPECT_THAT(g.recorder().values(), ElementsAre(1, 5, 6, 7, 8));
  EXPECT_EQ(sub.Stats().delivered, 5u);
  EXPECT_EQ(sub.Stats().dropped, 3u);
  EXPECT_EQ(bus_.Stats().dropped, 3u);
}

TEST_F(MessageBusTest, DropNewestKeepsTheOldestMessagesAndCountsTheRest) {
  GatedRecorder g;
  ASSERT_OK_AND_ASSIGN(Subscription sub,
                       bus_.Subscribe("q", g.MakeHandler(),
                                      {.max_queue = kSmallQueue,
                                       .policy = OverflowPolicy::kDropNewest}));
  ASSERT_OK(bus_.Publish("q", 1).status());
  ASSERT_TRUE(g.WaitEntered());
  for (int i = 2; i <= kOverflowLast; ++i)
    ASSERT_OK(bus_.Publish("q", i).status());
  EXPECT_EQ(sub.Stats().queued, kSmallQueue);
  EXPECT_EQ(sub.Stats().dropped, 3u);
  g.Open();
  ASSERT_TRUE(g.recorder().WaitFor(5));
  sub.Unsubscribe();
  EXPECT_THAT(g.recorder().values(), ElementsAre(1, 2, 3, 4, 5));
  EXPECT_EQ(sub.Stats().delivered, 5u);
  EXPECT_EQ(sub.Stats().dropped, 3u);
}

TEST_F(MessageBusTest, OverflowOfOneSubscriberDoesNotAffectAnother) {
  GatedRecorder slow;
  Recorder fast;
  ASSERT_OK_AND_ASSIGN(
      Subscription s1,
      bus_.Subscribe("q", slow.MakeHandler(),
                     {.max_queue = 1, .policy = OverflowPolicy::kDropNewest}));
  ASSERT_OK_AND_ASSIGN(Subscription s2,
                       bus_.Subscribe("q", fast.MakeHandler()));
  ASSERT_OK(bus_.Publish("q", 1).status());
  ASSERT_TRUE(slow.WaitEntered());
  for (int i = 2; i <= 50; ++i) ASSERT_OK(bus_.Publish("q", i).status());
  ASSERT_TRUE(fast.WaitFor(50));
  EXPECT_THAT(fast.values(), ElementsAreArray(Range(1, 50)));
  EXPECT_EQ(s1.Stats().dropped, 48u);
  EXPECT_EQ(s2.Stats().dropped, 0u);
  slow.Open();
  ASSERT_TRUE(slow.recorder().WaitFor(2));
  s1.Unsubscribe();
  EXPECT_THAT(slow.recorder().values(), ElementsAre(1, 2));
}

TEST_F(MessageBusTest, BlockMakesPublishWaitUntilTheHandlerMakesRoom) {
  GatedRecorder g;
  ASSERT_OK_AND_ASSIGN(Subscription sub,
                       bus_.Subscribe("q", g.MakeHandler(),
                                      {.max_queue = 2,
                                       .policy = OverflowPolicy::kBlock,
                                       .block_timeout = kWait}));
  ASSERT_OK(bus_.Publish("q", 1).status());
  ASSERT_TRUE(g.WaitEntered());
  ASSERT_OK(bus_.Publish("q", 2).status());
  ASSERT_OK(bus_.Publish("q", 3).status());
  EXPECT_EQ(sub.Stats().queued, 2u);

  absl::Notification published;
  absl::StatusOr<uint64_t> result;
  std::thread publisher([&] {
    result = bus_.Publish("q", 4);
    published.Notify();
  });
  // The queue is full and the handler cannot run until Open(): Publish must
  // still be waiting.
  EXPECT_FALSE(published.HasBeenNotified());
  g.Open();
  ASSERT_TRUE(published.WaitForNotificationWithTimeout(kWait));
  publisher.join();
  ASSERT_OK(result.status());
  EXPECT_EQ(*result, 4u);
  ASSERT_TRUE(g.recorder().WaitFor(4));
  sub.Unsubscribe();
  EXPECT_THAT(g.recorder().values(), ElementsAre(1, 2, 3, 4));
  EXPECT_EQ(sub.Stats().dropped, 0u);
}

TEST_F(MessageBusTest, BlockTimesOutDropsForThatSubscriberOnlyAndCountsIt) {
  GatedRecorder g;
  Recorder other;
  ASSERT_OK_AND_ASSIGN(
      Subscription sub,
      bus_.Subscribe("q", g.MakeHandler(),
                     {.max_queue = 1,
                      .policy = OverflowPolicy::kBlock,
                      .block_timeout = absl::Milliseconds(20)}));
  ASSERT_OK_AND_ASSIGN(Subscription other_sub,
                       bus_.Subscribe("q", other.MakeHandler()));
  ASSERT_OK(bus_.Publish("q", 1).status());
  ASSERT_TRUE(g.WaitEntered());
  ASSERT_OK(bus_.Publish("q", 2).status());
  const absl::Time start = absl::Now();
  ASSERT_OK_AND_ASSIGN(uint64_t seq,
                       bus_.Publish("q", 3));  // waits ~20 ms, then drops
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(20));
  EXPECT_EQ(seq, 3u);
  EXPECT_EQ(sub.Stats().dropped, 1u);
  EXPECT_EQ(bus_.Stats().dropped, 1u);
  ASSERT_TRUE(other.WaitFor(3));
  EXPECT_THAT(other.values(), ElementsAre(1, 2, 3));
  g.Open();
  ASSERT_TRUE(g.recorder().WaitFor(2));
  sub.Unsubscribe();
  EXPECT_THAT(g.recorder().values(), ElementsAre(1, 2));
}

TEST_F(MessageBusTest,
       BlockingSubscriberPublishingToItselfDropsInsteadOfWaiting) {
  absl::Notification done;
  std::optional<Subscription> sub;
  std::atomic<int> calls{0};
  absl::StatusOr<uint64_t> inner;
  ASSERT_OK_AND_ASSIGN(
      sub, bus_.Subscribe("self",
                          [&](const Message& m) {
                            calls.fetch_add(1);
                            if (*m.As<int>() == 1) {
                              // Fill the queue (1 slot), then overflow it from
                              // inside the handler.
                              EXPECT_OK(bus_.Publish("self", 2).status());
                              inner = bus_.Publish("self", 3);
                              done.Notify();
                            }
                          },
                          {.max_queue = 1,
                           .policy = OverflowPolicy::kBlock,
                           .block_timeout = kWait}));
  ASSERT_OK(bus_.Publish("self", 1).status());
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kWait));
  sub->Unsubscribe();
  ASSERT_OK(inner.status());
  EXPECT_EQ(sub->Stats().dropped, 1u);
}

// ---- Failures and unsubscribing ----

TEST_F(MessageBusTest, ThrowingHandlerIsCountedAndLaterMessagesStillArrive) {
  Recorder r;
  ASSERT_OK_AND_ASSIGN(Subscription sub,
                       bus_.Subscribe("t", [&](const Message& m) {
                         if (*m.As<int>() == 2)
                           throw std::runtime_error("boom on 2");
                         if (*m.As<int>() == 3) throw 7;
                         r.Record(m);
                       }));
  for (int i = 1; i <= 5; ++i) ASSERT_OK(bus_.Publish("t", i).status());
  ASSERT_TRUE(r.WaitFor(3));
  sub.Unsubscribe();
  EXPECT_THAT(r.values(), ElementsAre(1, 4, 5));
  SubscriptionStats stats = sub.Stats();
  EXPECT_EQ(stats.delivered, 5u);
  EXPECT_EQ(stats.handler_failures, 2u);
  EXPECT_EQ(stats.last_failure, "unknown exception");
  EXPECT_EQ(bus_.Stats().handler_failures, 2u);
}

TEST_F(MessageBusTest, ExceptionMessageIsKept) {
  absl::Notification done;
  ASSERT_OK_AND_ASSIGN(Subscription sub,
                       bus_.Subscribe("t", [&](const Message&) {
                         done.Notify();
                         throw std::runtime_error("boom");
                       }));
  ASSERT_OK(bus_.Publish("t", 1).status());
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kWait));
  sub.Unsubscribe();
  EXPECT_EQ(sub.Stats().last_failure, "boom");
  EXPECT_EQ(sub.Stats().handler_failures, 1u);
}

TEST_F(MessageBusTest, UnsubscribeFromInsideTheHandlerStopsFurtherCalls) {
  Subscription sub;
  std::atomic<int> calls{0};
  absl::Notification unsubscribed;
  ASSERT_OK_AND_ASSIGN(sub, bus_.Subscribe("t", [&](const Message&) {
    calls.fetch_add(1);
    sub.Unsubscribe();  // must not deadlock
    EXPECT_FALSE(sub.active());
    unsubscribed.Notify();
  }));
  for (int i = 1; i <= 100; ++i) ASSERT_OK(bus_.Publish("t", i).status());
  ASSERT_TRUE(unsubscribed.WaitForNotificationWithTimeout(kWait));
  sub.Unsubscribe();  // from here: waits until the handler's call has returned
  for (int i = 1; i <= 100; ++i) ASSERT_OK(bus_.Publish("t", i).status());
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(sub.Stats().delivered, 1u);
  EXPECT_EQ(sub.Stats().queued, 0u);
  EXPECT_EQ(bus_.Stats().subscriptions, 0u);
}

TEST_F(MessageBusTest,
       DestroyingTheSubscriptionInsideItsHandlerStopsFurtherCalls) {
  std::optional<Subscription> sub;
  std::atomic<int> calls{0};
  absl::Notification destroyed;
  ASSERT_OK_AND_ASSIGN(sub, bus_.Subscribe("t", [&](const Message&) {
    calls.fetch_add(1);
    sub.reset();
    destroyed.Notify();
  }));
  for (int i = 1; i <= 100; ++i) ASSERT_OK(bus_.Publish("t", i).status());
  ASSERT_TRUE(destroyed.WaitForNotificationWithTimeout(kWait));
  for (int i = 1; i <= 100; ++i) ASSERT_OK(bus_.Publish("t", i).status());
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(bus_.Stats().subscriptions, 0u);
}

// The subscription is destroyed while its handler runs message 1, message 2 is
// queued and a kBlock publisher waits with message 3: the destruction wakes the
// publisher, waits for the running call, discards message 2, and no call
// follows.
TEST_F(MessageBusTest,
       DestroyingTheSubscriptionWaitsForTheRunningCallAndDiscardsTheQueue) {
  GatedRecorder g;
  std::atomic<bool> destroy_returned{false};
  std::atomic<int> calls_after_destroy{0};
  auto handler = g.MakeHandler();
  std::optional<Subscription> sub;
  ASSERT_OK_AND_ASSIGN(sub, bus_.Subscribe("q",
                                           [&, handler = std::move(handler)](
                                               const Message& m) mutable {
                                             if (destroy_returned.load())
                                               calls_after_destroy.fetch_add(1);
                                             handler(m);
                                           },
                                           {.max_queue = 1,
                                            .policy = OverflowPolicy::kBlock,
                                            .block_timeout = kWait}));
  ASSERT_OK(bus_.Publish("q", 1).status());
  ASSERT_TRUE(g.WaitEntered());
  ASSERT_OK(bus_.Publish("q", 2).status());

  absl::Notification publisher_returned;
  std::thread publisher([&] {
    EXPECT_OK(bus_.Publish("q", 3).status());  // blocks: the queue is full
    publisher_returned.Notify();
  });
  absl::Notification destroyer_returned;
  std::thread destroyer([&] {
    sub.reset();
    destroy_returned.store(true);
    destroyer_returned.Notify();
  });
  // Closing wakes the blocked publisher...
  ASSERT_TRUE(publisher_returned.WaitForNotificationWithTimeout(kWait));
  // ...but the destruction cannot finish while message 1's call is still
  // running.
  EXPECT_FALSE(destroyer_returned.HasBeenNotified());
  g.Open();
  ASSERT_TRUE(destroyer_returned.WaitForNotificationWithTimeout(kWait));
  publisher.join();
  destroyer.join();
  ASSERT_OK(bus_.Publish("q", 4).status());
  EXPECT_THAT(g.recorder().values(), ElementsAre(1));
  EXPECT_EQ(calls_after_destroy.load(), 0);
  EXPECT_EQ(bus_.Stats().dropped, 0u);
  EXPECT_EQ(bus_.Stats().subscriptions, 0u);
}

TEST_F(MessageBusTest, UnsubscribeDestroysTheHandlerBeforeReturning) {
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> weak = token;
  ASSERT_OK_AND_ASSIGN(
      Subscription sub,
      bus_.Subscribe("t", [token = std::move(token)](const Message&) {}));
  EXPECT_FALSE(weak.expired());
  sub.Unsubscribe();
  EXPECT_TRUE(weak.expired());
  EXPECT_FALSE(sub.active());
}

TEST_F(MessageBusTest, UnsubscribeDestroysTheHandlerAfterItsTopicWasPublished) {
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> weak = token;
  absl::Notification delivered;
  ASSERT_OK_AND_ASSIGN(
      Subscription sub,
      bus_.Subscribe("t", [token = std::move(token), &delivered](
                              const Message&) { delivered.Notify(); }));
  ASSERT_OK(bus_.Publish("t", 1).status());
  ASSERT_TRUE(delivered.WaitForNotificationWithTimeout(kWait));
  sub.Unsubscribe();
  EXPECT_TRUE(weak.expired());
  // Publishing on the topic again reaches nobody.
  ASSERT_OK(bus_.Publish("t", 2).status());
  EXPECT_EQ(bus_.Stats().delivered, 1u);
}

// A Publish reuses the subscriber list it found for a topic while the index is
// unchanged; every Subscribe and Unsubscribe must show in the next Publish.
// (Unsubscribe discards what is still queued, so each waits for its deliveries
// first.)
TEST_F(MessageBusTest,
       SubscribeAndUnsubscribeBetweenPublishesTakeEffectAtOnce) {
  Recorder exact;
  Recorder star;
  Recorder rest;
  ASSERT_OK_AND_ASSIGN(Subscription exact_sub,
                       bus_.Subscribe("a.b", exact.MakeHandler()));
  ASSERT_OK(bus_.Publish("a.b", 1).status());
  ASSERT_OK(bus_.Publish("a.b", 2).status());
  ASSERT_OK_AND_ASSIGN(Subscription star_sub,
                       bus_.Subscribe("a.*", star.MakeHandler()));
  ASSERT_OK(bus_.Publish("a.b", 3).status());
  ASSERT_TRUE(exact.WaitFor(3));
  exact_sub.Unsubscribe();
  ASSERT_OK(bus_.Publish("a.b", 4).status());
  ASSERT_OK_AND_ASSIGN(Subscription rest_sub,
                       bus_.Subscribe("a.>", rest.MakeHandler()));
  ASSERT_OK(bus_.Publish("a.b", 5).status());
  ASSERT_TRUE(star.WaitFor(3));
  ASSERT_TRUE(rest.WaitFor(1));
  star_sub.Unsubscribe();
  rest_sub.Unsubscribe();
  ASSERT_OK(bus_.Publish("a.b", 6).status());

  EXPECT_THAT(exact.values(), ElementsAre(1, 2, 3));
  EXPECT_THAT(star.values(), ElementsAre(3, 4, 5));
  EXPECT_THAT(rest.values(), ElementsAre(5));
  EXPECT_EQ(bus_.Stats().delivered, 7u);
  EXPECT_EQ(bus_.Stats().published, 6u);
}

TEST_F(MessageBusTest, MoveAssignmentUnsubscribesTheOldSubscription) {
  Recorder r1;
  Recorder r2;
  ASSERT_OK_AND_ASSIGN(Subscription sub, bus_.Subscribe("a", r1.MakeHandler()));
  ASSERT_OK_AND_ASSIGN(Subscription other,
                       bus_.Subscribe("b", r2.MakeHandler()));
  const uint64_t other_id = other.Stats().id;
  EXPECT_EQ(other.id(), other_id);
  EXPECT_NE(sub.id(), other_id);
  sub = std::move(other);
  EXPECT_FALSE(other.active());  // NOLINT(bugprone-use-after-move): documented
                                 // empty state
  EXPECT_EQ(other.Stats().id, 0u);
  EXPECT_TRUE(sub.active());
  EXPECT_EQ(sub.Stats().id, other_id);
  ASSERT_EQ(bus_.ListSubscriptions().size(), 1u);
  EXPECT_EQ(bus_.ListSubscriptions()[0].pattern, "b");
}

TEST_F(MessageBusTest, HandlerMayPublishAndSubscribe) {
  Recorder r;
  std::optional<Subscription> late;
  absl::Notification subscribed;
  ASSERT_OK_AND_ASSIGN(
      Subscription relay, bus_.Subscribe("in", [&](const Message& m) {
        if (!late.has_value()) {
          absl::StatusOr<Subscription> s =
              bus_.Subscribe("out", r.MakeHandler());
          EXPECT_OK(s.status());
          late = std::move(*s);
          subscribed.Notify();
        }
        EXPECT_OK(bus_.Publish("out", *m.As<int>() * 10).status());
      }));
  ASSERT_OK(bus_.Publish("in", 1).status());
  ASSERT_TRUE(subscribed.WaitForNotificationWithTimeout(kWait));
  ASSERT_OK(bus_.Publish("in", 2).status());
  ASSERT_TRUE(r.WaitFor(2));
  relay.Unsubscribe();
  late->Unsubscribe();
  EXPECT_THAT(r.values(), ElementsAre(10, 20));
}

// ---- Lifetime and stats ----

TEST(MessageBusLifetimeTest, SubscriptionThatOutlivesTheBusIsHarmless) {
  ThreadPool pool(TestPoolOptions());
  Recorder r;
  Subscription sub;
  {
    MessageBus bus(&pool);
    ASSERT_OK_AND_ASSIGN(sub, bus.Subscribe("t", r.MakeHandler()));
    ASSERT_OK(bus.Publish("t", 1).status());
    ASSERT_TRUE(r.WaitFor(1));
    EXPECT_TRUE(sub.active());
  }
  EXPECT_FALSE(sub.active());
  sub.Unsubscribe();
  EXPECT_EQ(sub.Stats().delivered, 1u);
  EXPECT_FALSE(sub.Stats().active);
}

// The destruction may close the subscription before or after the gate opens (so
// message 2 may or may not be delivered), but it never returns while a call
// runs, and no call follows.
TEST(MessageBusLifetimeTest, DestroyingTheBusWaitsForRunningHandlers) {
  ThreadPool pool(TestPoolOptions());
  GatedRecorder g;
  std::atomic<bool> destroy_returned{false};
  std::atomic<int> calls_after_destroy{0};
  auto bus = std::make_unique<MessageBus>(&pool);
  ASSERT_OK_AND_ASSIGN(Subscription sub,
                       bus->Subscribe("t", [&, handler = g.MakeHandler()](
                                               const Message& m) mutable {
                         if (destroy_returned.load())
                           calls_after_destroy.fetch_add(1);
                         handler(m);
                       }));
  ASSERT_OK(bus->Publish("t", 1).status());
  ASSERT_TRUE(g.WaitEntered());
  ASSERT_OK(bus->Publish("t", 2).status());
  absl::Notification destroyed;
  std::thread destroyer([&] {
    bus.reset();
    destroy_returned.store(true);
    destroyed.Notify();
  });
  EXPECT_FALSE(
      destroyed.HasBeenNotified());  // message 1's call is still running
  g.Open();
  ASSERT_TRUE(destroyed.WaitForNotificationWithTimeout(kWait));
  destroyer.join();
  EXPECT_FALSE(sub.active());
  const std::vector<int> values = g.recorder().values();
  ASSERT_FALSE(values.empty());
  EXPECT_EQ(values[0], 1);
  EXPECT_LE(values.size(), 2u);
  EXPECT_EQ(calls_after_destroy.load(), 0);
}

TEST(MessageBusLifetimeTest, BusWithItsOwnPoolDelivers) {
  Recorder r;
  {
    MessageBus bus;
    ASSERT_OK_AND_ASSIGN(Subscription sub, bus.Subscribe("t", r.MakeHandler()));
    ASSERT_OK(bus.Publish("t", 5).status());
    ASSERT_TRUE(r.WaitFor(1));
  }
  ThreadPoolOptions options = TestPoolOptions();
  options.max_threads = 2;
  MessageBus bus(options);
  ASSERT_OK_AND_ASSIGN(Subscription sub, bus.Subscribe("t", r.MakeHandler()));
  ASSERT_OK(bus.Publish("t", 6).status());
  ASSERT_TRUE(r.WaitFor(2));
  sub.Unsubscribe();
  EXPECT_THAT(r.values(), ElementsAre(5, 6));
}

TEST(MessageBusLifetimeTest, BusMayBeDestroyedFromInsideAHandler) {
  ThreadPool pool(TestPoolOptions());
  auto bus = std::make_unique<MessageBus>(&pool);
  absl::Notification entered;
  absl::Notification gate;
  absl::Notification destroyed;
  std::atomic<int> calls{0};
  ASSERT_OK_AND_ASSIGN(Subscription sub,
                       bus->Subscribe("t", [&](const Message&) {
                         calls.fetch_add(1);
                         entered.Notify();
                         gate.WaitForNotificationWithTimeout(kWait);
                         bus.reset();
                         destroyed.Notify();
                       }));
  ASSERT_OK(bus->Publish("t", 1).status());
  ASSERT_TRUE(entered.WaitForNotificationWithTimeout(kWait));
  ASSERT_OK(bus->Publish("t", 2)
                .status());  // queued, then discarded by the destruction
  gate.Notify();
  ASSERT_TRUE(destroyed.WaitForNotificationWithTimeout(kWait));
  sub.Unsubscribe();  // waits for the call that destroyed the bus to return
  EXPECT_EQ(calls.load(), 1);
  EXPECT_FALSE(sub.active());
}

TEST_F(MessageBusTest, StatsAndListSubscriptionsReportEverySubscription) {
  GatedRecorder g;
  ASSERT_OK_AND_ASSIGN(Subscription s1,
                       bus_.Subscribe("a.*", g.MakeHandler(),
                                      {.max_queue = 2,
                                       .policy = OverflowPolicy::kDropNewest,
                                       .priority = Priority::kHigh}));
  Recorder r;
  ASSERT_OK_AND_ASSIGN(Subscription s2, bus_.Subscribe("b", r.MakeHandler()));
  ASSERT_OK(bus_.Publish("a.x", 1).status());
  ASSERT_TRUE(g.WaitEntered());
  for (int i = 2; i <= 5; ++i) ASSERT_OK(bus_.Publish("a.x", i).status());
  ASSERT_OK(bus_.Publish("b", 1).status());
  ASSERT_TRUE(r.WaitFor(1));

  std::vector<SubscriptionStats> list = bus_.ListSubscriptions();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_LT(list[0].id, list[1].id);
  EXPECT_EQ(list[0].pattern, "a.*");
  EXPECT_EQ(list[0].queued, 2u);
  EXPECT_EQ(list[0].dropped, 2u);
  EXPECT_EQ(list[0].max_queue, 2u);
  EXPECT_EQ(list[0].policy, OverflowPolicy::kDropNewest);
  EXPECT_EQ(list[0].priority, Priority::kHigh);
  EXPECT_TRUE(list[0].active);
  EXPECT_EQ(list[1].pattern, "b");
  EXPECT_EQ(list[1].policy, OverflowPolicy::kDropOldest);
  EXPECT_EQ(list[1].max_queue, 1024u);

  MessageBusStats stats = bus_.Stats();
  EXPECT_EQ(stats.published, 6u);
  EXPECT_EQ(stats.dropped, 2u);
  EXPECT_EQ(stats.subscriptions, 2u);
  EXPECT_EQ(stats.topics, 2u);

  g.Open();
  ASSERT_TRUE(g.recorder().WaitFor(3));
  s1.Unsubscribe();
  EXPECT_EQ(bus_.ListSubscriptions().size(), 1u);
  EXPECT_EQ(bus_.Stats().subscriptions, 1u);
}

// Delivery of a backlog takes one pool task, not one per message: with no
// other pool work waiting, the drain does not yield after drain_batch messages.
TEST(MessageBusPoolTest, DeliveryIsBatchedIntoFewPoolTasks) {
  ThreadPool pool(TestPoolOptions());
  MessageBus bus(&pool, {.drain_batch = 256});
  GatedRecorder g;
  ASSERT_OK_AND_ASSIGN(Subscription sub, bus.Subscribe("t", g.MakeHandler(),
                                                       {.max_queue = 2000}));
  const uint64_t before = pool.Stats().submitted;
  ASSERT_OK(bus.Publish("t", 1).status());
  ASSERT_TRUE(g.WaitEntered());
  for (int i = 2; i <= 1001; ++i) ASSERT_OK(bus.Publish("t", i).status());
  g.Open();
  ASSERT_TRUE(g.recorder().WaitFor(1001));
  sub.Unsubscribe();
  EXPECT_THAT(g.recorder().values(), ElementsAreArray(Range(1, 1001)));
  EXPECT_EQ(pool.Stats().submitted - before, 1u);
}

// After drain_batch messages a drain yields its thread to pool work that is
// waiting, and continues after it.
TEST(MessageBusPoolTest, DrainYieldsToWaitingPoolWorkAfterDrainBatch) {
  ThreadPoolOptions options = TestPoolOptions();
  options.max_threads = 1;
  ThreadPool pool(options);
  MessageBus bus(&pool, {.drain_batch = 2});
  absl::Mutex mu;
  std::vector<int> order;
  absl::Notification entered;
  absl::Notification gate;
  ASSERT_OK_AND_ASSIGN(Subscription sub,
                       bus.Subscribe("t", [&](const Message& m) {
                         if (*m.As<int>() == 1) {
                           entered.Notify();
                           gate.WaitForNotificationWithTimeout(kWait);
                         }
                         absl::MutexLock lock(&mu);
                         order.push_back(*m.As<int>());
                       }));
  ASSERT_OK(bus.Publish("t", 1).status());
  ASSERT_TRUE(entered.WaitForNotificationWithTimeout(kWait));
  for (int i = 2; i <= 6; ++i) ASSERT_OK(bus.Publish("t", i).status());
  absl::Notification other_ran;
  ASSERT_OK(pool.Execute([&] {
    absl::MutexLock lock(&mu);
    order.push_back(0);
    other_ran.Notify();
  }));
  gate.Notify();
  ASSERT_TRUE(other_ran.WaitForNotificationWithTimeout(kWait));
  absl::MutexLock lock(&mu);
  auto all_delivered = [&order]() { return order.size() == 7; };
  ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&all_delivered), kWait));
  // Messages 1 and 2 (one drain_batch), then the waiting task, then the rest.
  EXPECT_THAT(order, ElementsAre(1, 2, 0, 3, 4, 5, 6));
}

// A full pool refuses the delivery task: the message waits in the
// subscription's queue, and the next Publish schedules delivery of both.
TEST(MessageBusPoolTest, RefusedDeliveryTaskKeepsTheMessageQueued) {
  ThreadPoolOptions options = TestPoolOptions();
  options.max_threads = 1;
  options.max_queue = 1;
  ThreadPool pool(options);
  MessageBus bus(&pool);
  Recorder r;
  ASSERT_OK_AND_ASSIGN(Subscription sub, bus.Subscribe("t", r.MakeHandler()));

  absl::Notification busy;
  absl::Notification release;
  absl::Notification filler_ran;
  ASSERT_OK(pool.Execute([&] {
    busy.Notify();
    release.WaitForNotificationWithTimeout(kWait);
  }));
  ASSERT_TRUE(busy.WaitForNotificationWithTimeout(kWait));
  ASSERT_OK(pool.Execute([&] { filler_ran.Notify(); }));  // fills the queue

  ASSERT_OK(bus.Publish("t", 1).status());
  EXPECT_EQ(sub.Stats().queued, 1u);
  EXPECT_GE(pool.Stats().rejected, 1u);

  release.Notify();
  ASSERT_TRUE(filler_ran.WaitForNotificationWithTimeout(kWait));
  ASSERT_OK(bus.Publish("t", 2).status());
  ASSERT_TRUE(r.WaitFor(2));
  sub.Unsubscribe();
  EXPECT_THAT(r.values(), ElementsAre(1, 2));
  EXPECT_EQ(sub.Stats().dropped, 0u);
}

// ---- Concurrency ----

// Publishers on their own topics, subscribers on overlapping patterns with
// every policy, and a thread that subscribes, unsubscribes and reads stats
// meanwhile. Run under TSan.
TEST(MessageBusStressTest, ManyPublishersAndManySubscribers) {
  ThreadPool pool(TestPoolOptions());
  MessageBus bus(&pool);
  constexpr int kPublishers = 4;
  constexpr int kPerPublisher = 400;
  constexpr int kTotal = kPublishers * kPerPublisher;

  struct Sink {
    std::string pattern;
    SubscribeOptions options;
    int expected = 0;
    std::atomic<int> calls{0};
    std::atomic<int> concurrent{0};
    std::atomic<int> overlaps{0};
    std::atomic<int> out_of_order{0};
    uint64_t last[kPublishers] = {};  // handler only, one call at a time
    absl::Notification done;
    Subscription sub;
  };
  const SubscribeOptions blocking{
      .max_queue = 8, .policy = OverflowPolicy::kBlock, .block_timeout = kWait};
  const SubscribeOptions roomy{.max_queue = kTotal};
  std::vector<std::unique_ptr<Sink>> sinks;
  auto add = [&](std::string pattern, SubscribeOptions options, int expected) {
    auto sink = std::make_unique<Sink>();
    sink->pattern = std::move(pattern);
    sink->options = options;
    sink->expected = expected;
    sinks.push_back(std::move(sink));
  };
  add("load.>", blocking, kTotal);
  add("load.*", roomy, kTotal);
  add("load.p0", roomy, kPerPublisher);
  add("*.p1", blocking, kPerPublisher);
  add("load.*", {.max_queue = kTotal, .priority = Priority::kHigh}, kTotal);
  for (auto& sink_ptr : sinks) {
    Sink* sink = sink_ptr.get();
    absl::StatusOr<Subscription> sub = bus.Subscribe(
        sink->pattern,
        [sink](const Message& m) {
          if (sink->concurrent.fetch_add(1) != 0) sink->overlaps.fetch_add(1);
          // Nothing is dropped (the queues are roomy or block), so no gaps
          // either.
          const int publisher = m.topic.back() - '0';
          if (m.sequence != sink->last[publisher] + 1)
            sink->out_of_order.fetch_add(1);
          sink->last[publisher] = m.sequence;
          sink->concurrent.fetch_sub(1);
          if (sink->calls.fetch_add(1) + 1 == sink->expected)
            sink->done.Notify();
        },
        sink->options);
    ASSERT_OK(sub.status());
    sink->sub = std::move(*sub);
  }

  // Publishers start once the churn has; it goes on until they are done.
  absl::Notification churn_started;
  absl::Notification stop_churn;
  std::atomic<int> churn_rounds{0};
  std::thread churn([&] {
    do {
      absl::StatusOr<Subscription> s =
          bus.Subscribe("load.>", [](const Message&) {});
      EXPECT_OK(s.status());
      EXPECT_FALSE(bus.ListSubscriptions().empty());
      EXPECT_GE(bus.Stats().subscriptions, sinks.size());
      if (churn_rounds.fetch_add(1) == 0) churn_started.Notify();
    } while (!stop_churn.HasBeenNotified());
  });

  absl::BlockingCounter publishers_done(kPublishers);
  std::vector<std::thread> publishers;
  for (int p = 0; p < kPublishers; ++p) {
    publishers.emplace_back([&, p] {
      churn_started.WaitForNotification();
      const std::string topic = absl::StrCat("load.p", p);
      for (int i = 1; i <= kPerPublisher; ++i) {
        absl::StatusOr<uint64_t> seq = bus.Publish(topic, i);
        EXPECT_THAT(seq, IsOkAndHolds(static_cast<uint64_t>(i)));
      }
      publishers_done.DecrementCount();
    });
  }
  publishers_done.Wait();
  for (std::thread& t : publishers) t.join();
  for (auto& sink : sinks) {
    ASSERT_TRUE(sink->done.WaitForNotificationWithTimeout(kWait))
        << sink->pattern;
  }
  stop_churn.Notify();
  churn.join();

  for (auto& sink : sinks) {
    sink->sub.Unsubscribe();
    EXPECT_EQ(sink->calls.load(), sink->expected) << sink->pattern;
    EXPECT_EQ(sink->overlaps.load(), 0) << sink->pattern;
    EXPECT_EQ(sink->out_of_order.load(), 0) << sink->pattern;
    EXPECT_EQ(sink->sub.Stats().dropped, 0u) << sink->pattern;
  }
  EXPECT_EQ(bus.Stats().published, static_cast<uint64_t>(kTotal));
  EXPECT_THAT(bus.ListSubscriptions(), IsEmpty());
}

}  // namespace
}  // namespace tshare::core
