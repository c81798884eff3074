#include "service/watch_hub.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/errors.h"
#include "tests/status_matchers.h"

namespace tshare::service {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::tshare::testing::StatusIs;
using tshare::v1::WatchEvent;
using tshare::v1::WatchRequest;

// A sink that the test drives by hand: it never sends on its own; the test
// pulls frames with Next, as a reactor would after each write.
class TestSink final : public WatchSink {
 public:
  void OnWatchReady() override {
    absl::MutexLock l(&mu_);
    ++ready_;
  }
  int ready() {
    absl::MutexLock l(&mu_);
    return ready_;
  }
  // Blocks until OnWatchReady has been called `n` times in all.
  void AwaitReady(int n) {
    absl::MutexLock l(&mu_);
    auto reached = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return ready_ >= n;
    };
    mu_.Await(absl::Condition(&reached));
  }

 private:
  absl::Mutex mu_;
  int ready_ ABSL_GUARDED_BY(mu_) = 0;
};

class WatchHubTest : public ::testing::Test {
 protected:
  WatchHubTest() {
    options_.history = 4;
    options_.watch_queue = 3;
    options_.max_watch_queue = 100;
    options_.max_watches_per_stream = 3;
    store_ = std::make_unique<Store>(options_);
    hub_ = std::make_unique<WatchHub>(store_.get(), options_);
  }
  ~WatchHubTest() override {
    for (auto& w : watchers_) w->Detach();
  }

  uint64_t Set(const std::string& key, int64_t v) {
    tshare::v1::SetRequest request;
    request.set_key(key);
    request.mutable_value()->set_int_value(v);
    tshare::v1::SetResponse response;
    EXPECT_OK(store_->Set(request, &response));
    return response.revision();
  }
  void DeleteKey(const std::string& key) {
    tshare::v1::DeleteRequest request;
    request.set_key(key);
    tshare::v1::DeleteResponse response;
    EXPECT_OK(store_->Delete(request, &response));
  }

  absl::StatusOr<Watcher*> Start(const WatchRequest& request) {
    absl::StatusOr<std::shared_ptr<Watcher>> w =
        hub_->Start(request, "test-peer", &sink_);
    if (!w.ok()) return w.status();
    watchers_.push_back(*w);
    return w->get();
  }

  // Pulls every frame that is ready now.
  std::vector<WatchEvent> Drain(Watcher* w, absl::Status* end = nullptr) {
    std::vector<WatchEvent> frames;
    while (true) {
      WatchEvent frame;
      absl::Status status;
      Watcher::NextResult r = w->Next(&frame, &status);
      if (r == Watcher::NextResult::kIdle) return frames;
      if (r == Watcher::NextResult::kDone) {
        if (end != nullptr) *end = status;
        return frames;
      }
      frames.push_back(frame);
    }
  }

  // The (value, revision) of every PUT in CHANGES frames, in order.
  static std::vector<std::pair<int64_t, uint64_t>> Puts(
      const std::vector<WatchEvent>& frames) {
    std::vector<std::pair<int64_t, uint64_t>> puts;
    for (const WatchEvent& f : frames) {
      if (f.kind() != WatchEvent::CHANGES) continue;
      for (const auto& e : f.events()) {
        if (e.type() == tshare::v1::Event::PUT) {
          puts.emplace_back(e.kv().value().int_value(), e.kv().mod_revision());
        }
      }
    }
    return puts;
  }

  ServerOptions options_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<WatchHub> hub_;
  TestSink sink_;
  std::vector<std::shared_ptr<Watcher>> watchers_;
};

WatchRequest KeyWatch(const std::string& key) {
  WatchRequest request;
  request.set_key(key);
  return request;
}

TEST_F(WatchHubTest, DeliversLiveChangesOfItsKeyOnly) {
  ASSERT_OK_AND_ASSIGN(Watcher * w, Start(KeyWatch("a")));
  EXPECT_TRUE(Drain(w).empty());
  Set("a", 1);
  Set("b", 2);
  Set("a", 3);
  EXPECT_GE(sink_.ready(), 1);
  std::vector<WatchEvent> frames = Drain(w);
  ASSERT_EQ(frames.size(), 1u);  // batched
  EXPECT_EQ(frames[0].kind(), WatchEvent::CHANGES);
  EXPECT_EQ(frames[0].revision(), 3u);
  EXPECT_EQ(frames[0].store_id(), store_->store_id());
  EXPECT_THAT(Puts(frames), ElementsAre(std::pair<int64_t, uint64_t>{1, 1},
                                        std::pair<int64_t, uint64_t>{3, 3}));
}

TEST_F(WatchHubTest, PrefixAndSeveralTargetsMatchEachEventOnce) {
  WatchRequest request;
  request.set_prefix("p/");
  request.add_keys("p/x");  // overlaps the prefix
  request.add_keys("solo");
  ASSERT_OK_AND_ASSIGN(Watcher * w, Start(request));
  Set("p/x", 1);
  Set("q", 2);
  Set("solo", 3);
  Set("p/y", 4);
  EXPECT_THAT(Puts(Drain(w)), ElementsAre(std::pair<int64_t, uint64_t>{1, 1},
                                          std::pair<int64_t, uint64_t>{3, 3},
                                          std::pair<int64_t, uint64_t>{4, 4}));
}

TEST_F(WatchHubTest, DeleteEventsCarryTheDeletionRevisionAndPrevKv) {
  WatchRequest request = KeyWatch("a");
  request.set_prev_kv(true);
  Set("a", 1);
  ASSERT_OK_AND_ASSIGN(Watcher * w, Start(request));
  DeleteKey("a");
  std::vector<WatchEvent> frames = Drain(w);
  ASSERT_EQ(frames.size(), 1u);
  ASSERT_EQ(frames[0].events_size(), 1);
  const tshare::v1::Event& e = frames[0].events(0);
  EXPECT_EQ(e.type(), tshare::v1::Event::DELETE);
  EXPECT_EQ(e.kv().mod_revision(), 2u);
  EXPECT_EQ(e.kv().version(), 0u);
  EXPECT_EQ(e.prev_kv().value().int_value(), 1);
}

TEST_F(WatchHubTest, ReplaysFromAStartRevisionInHistoryThenGoesLive) {
  Set("a", 1);  // 1
  Set("b", 2);  // 2
  Set("a", 3);  // 3
  WatchRequest request = KeyWatch("a");
  request.set_start_revision(2);
  ASSERT_OK_AND_ASSIGN(Watcher * w, Start(request));
  Set("a", 4);  // 4, live
  EXPECT_THAT(Puts(Drain(w)), ElementsAre(std::pair<int64_t, uint64_t>{3, 3},
                                          std::pair<int64_t, uint64_t>{4, 4}));
}

TEST_F(WatchHubTest, StartBeforeHistoryResyncsThenSendsLaterChanges) {
  for (int i = 1; i <= 6; ++i) Set(i % 2 ? "a" : "b", i);
  Set("c", 7);
  store_->Compact();  // keeps 4..7
  WatchRequest request;
  request.add_keys("a");
  request.add_keys("b");
  request.set_start_revision(2);
  ASSERT_OK_AND_ASSIGN(Watcher * w, Start(request));
  Set("a", 8);
  std::vector<WatchEvent> frames = Drain(w);
  ASSERT_EQ(frames.size(), 4u);
  EXPECT_EQ(frames[0].kind(), WatchEvent::RESYNC_BEGIN);
  EXPECT_EQ(frames[0].revision(), 7u);
  EXPECT_EQ(frames[1].kind(), WatchEvent::SNAPSHOT);
  ASSERT_EQ(frames[1].events_size(), 2);
  EXPECT_EQ(frames[1].events(0).kv().key(), "a");
  EXPECT_EQ(frames[1].events(0).kv().value().int_value(), 5);
  EXPECT_EQ(frames[1].events(1).kv().key(), "b");
  EXPECT_EQ(frames[1].events(1).kv().value().int_value(), 6);
  EXPECT_EQ(frames[2].kind(), WatchEvent::RESYNC_END);
  EXPECT_EQ(frames[2].revision(), 7u);
  EXPECT_EQ(frames[3].kind(), WatchEvent::CHANGES);
  EXPECT_THAT(Puts({frames[3]}),
              ElementsAre(std::pair<int64_t, uint64_t>{8, 8}));
  EXPECT_EQ(hub_->Stats().resyncs(), 1u);
}

TEST_F(WatchHubTest, SnapshotStartsWithTheCurrentState) {
  Set("p/1", 1);
  Set("p/2", 2);
  WatchRequest request;
  request.set_prefix("p/");
  request.set_snapshot(true);
  ASSERT_OK_AND_ASSIGN(Watcher * w, Start(request));
  std::vector<WatchEvent> frames = Drain(w);
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[1].events_size(), 2);
  request.set_start_revision(1);
  EXPECT_THAT(Start(request), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(WatchHubTest, OnCompactedFailReportsTheOldestRevision) {
  for (int i = 1; i <= 6; ++i) Set("a", i);
  store_->Compact();  // keeps 3..6
  WatchRequest request = KeyWatch("a");
  request.set_start_revision(1);
  request.set_on_compacted(tshare::v1::FAIL);
  absl::StatusOr<Watcher*> w = Start(request);
  EXPECT_THAT(w, StatusIs(absl::StatusCode::kOutOfRange,
                          HasSubstr("oldest revision kept is 3")));
  EXPECT_THAT(StatusMetadata(w.status()),
              ElementsAre(std::pair<std::string, std::string>{
                  kOldestRevisionMetadata, "3"}));
  request.set_start_revision(3);
  EXPECT_OK(Start(request).status());
}

TEST_F(WatchHubTest, ValidatesTheRequest) {
  EXPECT_THAT(
      Start(WatchRequest()),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no target")));
  WatchRequest many;
  for (int i = 0; i < 4; ++i) many.add_keys(absl::StrCat("k", i));
  EXPECT_THAT(Start(many), StatusIs(absl::StatusCode::kInvalidArgument,
                                    HasSubstr("--max_watches_per_stream=3")));
  WatchRequest queue = KeyWatch("a");
  queue.set_max_queue(101);
  EXPECT_THAT(Start(queue), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("--max_watch_queue=100")));
  WatchRequest fast = KeyWatch("a");
  fast.mutable_progress_interval()->set_nanos(9000000);
  EXPECT_THAT(Start(fast),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("10ms")));
  WatchRequest policy = KeyWatch("a");
  policy.set_policy(static_cast<tshare::v1::OverflowPolicy>(9));
  EXPECT_THAT(Start(policy), StatusIs(absl::StatusCode::kInvalidArgument));
  WatchRequest empty_key;
  empty_key.add_keys("");
  EXPECT_THAT(Start(empty_key), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(hub_->watch_count(), 0u);
}

// A watch whose sink stalls (never pulls) while 10 changes of one key arrive;
// max_queue 3.
class PolicyTest : public WatchHubTest {
 protected:
  Watcher* StalledWatch(tshare::v1::OverflowPolicy policy) {
    WatchRequest request = KeyWatch("k");
    request.set_policy(policy);
    request.set_max_queue(3);
    absl::StatusOr<Watcher*> w = Start(request);
    EXPECT_OK(w.status());
    // The sink took its first (empty) turn and is waiting: stall it by sending
    // one change and not pulling it until the test says so.
    EXPECT_TRUE(Drain(*w).empty());
    return *w;
  }
};

TEST_F(PolicyTest, DropOldestKeepsTheNewestAndCountsDrops) {
  Watcher* w = StalledWatch(tshare::v1::DROP_OLDEST);
  for (int i = 1; i <= 10; ++i) Set("k", i);
  std::vector<WatchEvent> frames = Drain(w);
  EXPECT_THAT(Puts(frames), ElementsAre(std::pair<int64_t, uint64_t>{8, 8},
                                        std::pair<int64_t, uint64_t>{9, 9},
                                        std::pair<int64_t, uint64_t>{10, 10}));
  ASSERT_TRUE(frames[0].has_loss());
  EXPECT_EQ(frames[0].loss().dropped(), 7u);
  EXPECT_EQ(frames[0].loss().total_dropped(), 7u);
  Set("k", 11);  // no loss since: the next frame has no Loss
  frames = Drain(w);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_FALSE(frames[0].has_loss());
  EXPECT_EQ(hub_->Stats().dropped(), 7u);
}

TEST_F(PolicyTest, DropNewestKeepsTheOldest) {
  Watcher* w = StalledWatch(tshare::v1::DROP_NEWEST);
  for (int i = 1; i <= 10; ++i) Set("k", i);
  std::vector<WatchEvent> frames = Drain(w);
  EXPECT_THAT(Puts(frames), ElementsAre(std::pair<int64_t, uint64_t>{1, 1},
                                        std::pair<int64_t, uint64_t>{2, 2},
                                        std::pair<int64_t, uint64_t>{3, 3}));
  ASSERT_TRUE(frames[0].has_loss());
  EXPECT_EQ(frames[0].loss().dropped(), 7u);
}

TEST_F(PolicyTest, ConflateKeepsTheNewestPerKey) {
  Watcher* w = StalledWatch(tshare::v1::CONFLATE);
  for (int i = 1; i <= 10; ++i) Set("k", i);
  std::vector<WatchEvent> frames = Drain(w);
  // r1..r3 filled the queue; r4 collapsed them and every later change replaced
  // the pending one.
  EXPECT_THAT(Puts(frames), ElementsAre(std::pair<int64_t, uint64_t>{10, 10}));
  ASSERT_TRUE(frames[0].has_loss());
  EXPECT_EQ(frames[0].loss().conflated(), 9u);
  EXPECT_EQ(frames[0].loss().dropped(), 0u);
  EXPECT_EQ(hub_->Stats().conflated(), 9u);
}

TEST_F(PolicyTest, ConflateKeepsEveryKeysLatestValueInRevisionOrder) {
  WatchRequest request;
  request.set_prefix("");
  request.set_max_queue(3);
  ASSERT_OK_AND_ASSIGN(Watcher * w, Start(request));
  EXPECT_TRUE(Drain(w).empty());
  Set("a", 1);  // 1
  Set("b", 2);  // 2
  Set("a", 3);  // 3: queue full (a1 b2 a3)
  Set("c", 4);  // 4: conflation collapses a1; c appended
  Set("b", 5);  // 5: replaces b2
  std::vector<WatchEvent> frames = Drain(w);
  EXPECT_THAT(Puts(frames), ElementsAre(std::pair<int64_t, uint64_t>{3, 3},
                                        std::pair<int64_t, uint64_t>{4, 4},
                                        std::pair<int64_t, uint64_t>{5, 5}));
  EXPECT_EQ(frames[0].loss().conflated(), 2u);
}

TEST_F(PolicyTest, CloseEndsTheWatchWithTheResumeRevision) {
  Set("other", 0);  // revision 1
  Watcher* w = StalledWatch(tshare::v1::CLOSE);
  Set("k", 1);                                // 2
  std::vector<WatchEvent> frames = Drain(w);  // delivered through revision 2
  ASSERT_EQ(frames.size(), 1u);
  for (int i = 3; i <= 6; ++i)
    Set("k", i);  // the 4th queued change overflows the queue of 3
  absl::Status end;
  frames = Drain(w, &end);
  EXPECT_TRUE(frames.empty());
  EXPECT_THAT(end, StatusIs(absl::StatusCode::kResourceExhausted,
                            HasSubstr("start_revision=3")));
  EXPECT_THAT(StatusMetadata(end),
              ElementsAre(std::pair<std::string, std::string>{
                  kResumeRevisionMetadata, "3"}));
}

TEST_F(WatchHubTest, ANotifiedSinkIsToldOncePerIdlePeriod) {
  ASSERT_OK_AND_ASSIGN(Watcher * w, Start(KeyWatch("a")));
  EXPECT_TRUE(Drain(w).empty());
  Set("a", 1);
  Set("a", 2);
  EXPECT_EQ(sink_.ready(), 1);
  EXPECT_EQ(Drain(w).size(), 1u);
  Set("a", 3);
  EXPECT_EQ(sink_.ready(), 2);
}

TEST_F(WatchHubTest, ProgressFramesArriveWhenIdle) {
  WatchRequest request = KeyWatch("a");
  request.mutable_progress_interval()->set_nanos(20000000);  // 20 ms
  ASSERT_OK_AND_ASSIGN(Watcher * w, Start(request));
  EXPECT_TRUE(Drain(w).empty());
  Set("unrelated", 1);
  sink_.AwaitReady(1);
  std::vector<WatchEvent> frames = Drain(w);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].kind(), WatchEvent::PROGRESS);
  EXPECT_GE(frames[0].revision(), 1u);
  sink_.AwaitReady(2);  // and again
  frames = Drain(w);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].kind(), WatchEvent::PROGRESS);
}

TEST_F(WatchHubTest, ShutdownEndsWatchesAndRefusesNewOnes) {
  ASSERT_OK_AND_ASSIGN(Watcher * w, Start(KeyWatch("a")));
  EXPECT_TRUE(Drain(w).empty());
  hub_->Shutdown();
  EXPECT_EQ(sink_.ready(), 1);
  absl::Status end;
  Drain(w, &end);
  EXPECT_THAT(end, StatusIs(absl::StatusCode::kUnavailable,
                            HasSubstr("shutting down")));
  EXPECT_THAT(Start(KeyWatch("a")), StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(WatchHubTest, ListWatchesReportsLagQueueAndLoss) {
  WatchRequest request = KeyWatch("a");
  request.set_policy(tshare::v1::DROP_NEWEST);
  request.set_max_queue(2);
  ASSERT_OK_AND_ASSIGN(Watcher * w, Start(request));
  EXPECT_TRUE(Drain(w).empty());
  for (int i = 1; i <= 4; ++i) Set("a", i);
  std::vector<tshare::v1::SubscriptionInfo> infos = hub_->ListWatches();
  ASSERT_EQ(infos.size(), 1u);
  EXPECT_EQ(infos[0].kind(), tshare::v1::SubscriptionInfo::WATCH);
  EXPECT_EQ(infos[0].peer(), "test-peer");
  EXPECT_THAT(infos[0].targets(), ElementsAre("a"));
  EXPECT_EQ(infos[0].queue_depth(), 2u);
  EXPECT_EQ(infos[0].max_queue(), 2u);
  EXPECT_EQ(infos[0].dropped(), 2u);
  EXPECT_EQ(infos[0].lag(), 4u);
  EXPECT_EQ(infos[0].policy(), tshare::v1::DROP_NEWEST);
  Drain(w);
  infos = hub_->ListWatches();
  EXPECT_EQ(infos[0].lag(), 0u);
  EXPECT_EQ(infos[0].delivered(), 2u);
  EXPECT_EQ(infos[0].delivered_revision(), 4u);
  EXPECT_EQ(hub_->Stats().watches(), 1u);
}

TEST_F(WatchHubTest, DetachUnregisters) {
  ASSERT_OK_AND_ASSIGN(Watcher * w, Start(KeyWatch("a")));
  EXPECT_EQ(hub_->watch_count(), 1u);
  w->Detach();
  watchers_.clear();
  EXPECT_EQ(hub_->watch_count(), 0u);
  Set("a", 1);  // nothing to deliver to
}

}  // namespace
}  // namespace tshare::service
