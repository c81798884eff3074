#include "core/share.h"

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/status_matchers.h"

namespace tshare::core {
namespace {

using ::testing::HasSubstr;
using ::tshare::testing::StatusIs;

// A generous bound for waits that a correct implementation ends long before:
// reaching it means the wake-up was lost, and the test fails instead of
// hanging.
constexpr absl::Duration kLongWait = absl::Seconds(60);

struct User {
  int id = 0;
  std::string name;
  bool active = false;

  friend bool operator==(const User&, const User&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(User, id, name, active)

// No JSON mapping: Share<NotJson> must still work, without ToJson/FromJson.
struct NotJson {
  int x = 0;
};

template <typename S>
concept HasJsonMembers = requires(const S& share) {
  share.ToJson();
  share.FromJson("1");
};

TEST(ShareTest, DefaultShareHoldsValueInitializedTAtVersionZero) {
  Share<int> number;
  Share<std::string> text;
  EXPECT_EQ(number.Get(), 0);
  EXPECT_EQ(text.Get(), "");
  EXPECT_EQ(number.version(), 0u);
  EXPECT_EQ(text.version(), 0u);
}

TEST(ShareTest, MakeShareDeducesOrTakesTheType) {
  auto deduced = MakeShare(std::string("hello"));
  auto explicit_type = MakeShare<int64_t>(7);
  static_assert(std::is_same_v<decltype(deduced), Share<std::string>>);
  static_assert(std::is_same_v<decltype(explicit_type), Share<int64_t>>);
  EXPECT_EQ(deduced.Get(), "hello");
  EXPECT_EQ(explicit_type.Get(), 7);
  EXPECT_EQ(explicit_type.version(), 0u);
}

TEST(ShareTest, HandleCopiesShareOneStateAndNeverDiverge) {
  Share<std::string> original("a");
  Share<std::string> copy = original;
  Share<std::string> copy_of_copy(copy);
  Share<std::string> assigned;
  assigned = copy_of_copy;
  const std::vector<Share<std::string>> handles = {original, copy, copy_of_copy,
                                                   assigned};

  original.Set("b");
  copy.Update([](std::string& s) { s += "c"; });
  copy_of_copy.Write([](std::string& s) { s += "d"; });
  ASSERT_OK(assigned.FromJson("\"bcde\""));

  for (const Share<std::string>& handle : handles) {
    EXPECT_EQ(handle.Get(), "bcde");
    EXPECT_EQ(handle.version(), 4u);
    EXPECT_TRUE(handle.SameStateAs(original));
  }
  Share<std::string> unrelated("bcde");
  EXPECT_FALSE(unrelated.SameStateAs(original));
  unrelated.Set("other");
  EXPECT_EQ(original.Get(), "bcde");
}

TEST(ShareTest, MovingAHandleCopiesItSoNoHandleIsEverEmpty) {
  Share<int> first(1);
  Share<int> second = std::move(first);
  // `first` still reaches the shared state: Share has no move, a "move" copies
  // the handle.
  first.Set(2);  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(second.Get(), 2);
  EXPECT_TRUE(second.SameStateAs(first));
}

TEST(ShareTest, ConstHandleStillChangesTheSharedValue) {
  const Share<int> handle(1);
  handle.Set(5);
  handle.Update([](int& v) { v *= 2; });
  EXPECT_EQ(handle.Get(), 10);
}

TEST(ShareTest, EachSetUpdateAndWriteIsOneVersion) {
  Share<int> share(10);
  share.Set(11);
  EXPECT_EQ(share.Get(), 11);
  EXPECT_EQ(share.version(), 1u);

  share.Update([](int& v) { v += 5; });
  EXPECT_EQ(share.Get(), 16);
  EXPECT_EQ(share.version(), 2u);

  const int doubled = share.Write([](int& v) {
    v *= 2;
    return v;
  });
  EXPECT_EQ(doubled, 32);
  EXPECT_EQ(share.Get(), 32);
  EXPECT_EQ(share.version(), 3u);

  // A Set to the same value is still a change.
  share.Set(32);
  EXPECT_EQ(share.version(), 4u);
}

TEST(ShareTest, ReadReturnsTheResultAndIsNotAChange) {
  Share<std::vector<int>> share(std::vector<int>{1, 2, 3});
  const size_t size =
      share.Read([](const std::vector<int>& v) { return v.size(); });
  const int sum = share.Read([](const std::vector<int>& v) {
    int total = 0;
    for (int x : v) total += x;
    return total;
  });
  EXPECT_EQ(size, 3u);
  EXPECT_EQ(sum, 6);
  EXPECT_EQ(share.version(), 0u);
}

TEST(ShareTest, ReadAndWriteReturnCopiesNotReferencesIntoTheValue) {
  Share<std::string> share("abc");
  auto read =
      share.Read([](const std::string& s) -> const std::string& { return s; });
  static_assert(std::is_same_v<decltype(read), std::string>);
  share.Set("xyz");
  EXPECT_EQ(read, "abc");
}

TEST(ShareTest, WriteWhoseCallbackThrowsStillCountsAsAChange) {
  Share<int> share(1);
  EXPECT_THROW(share.Write([](int& v) -> int {
    v = 2;
    throw std::runtime_error("half way");
  }),
               std::runtime_error);
  EXPECT_EQ(share.Get(), 2);
  EXPECT_EQ(share.version(), 1u);
  // The lock was released: the share still works.
  share.Set(3);
  EXPECT_EQ(share.Get(), 3);
}

TEST(ShareTest, WaitForChangeSeesChangeMadeBeforeTheWait) {
  Share<int> share(0);
  share.Set(1);
  share.Set(2);
  // Zero timeout: the answer must come from the version alone, without waiting.
  absl::StatusOr<uint64_t> from_start =
      share.WaitForChange(0, absl::ZeroDuration());
  ASSERT_OK(from_start);
  EXPECT_EQ(*from_start, 2u);
  absl::StatusOr<uint64_t> from_one =
      share.WaitForChange(1, absl::ZeroDuration());
  ASSERT_OK(from_one);
  EXPECT_EQ(*from_one, 2u);
}

TEST(ShareTest, WaitForChangeNeverMissesAChangeBetweenTwoWaits) {
  Share<int> share(0);
  share.Set(1);
  ASSERT_OK_AND_ASSIGN(uint64_t seen, share.WaitForChange(0, kLongWait));
  EXPECT_EQ(seen, 1u);
  // This change lands while nobody waits (the seed's wait_for_change would miss
  // it).
  share.Set(2);
  ASSERT_OK_AND_ASSIGN(uint64_t next,
                       share.WaitForChange(seen, absl::ZeroDuration()));
  EXPECT_EQ(next, 2u);
  EXPECT_EQ(share.Get(), 2);
}

TEST(ShareTest, WaitForChangeWakesOnChangeMadeDuringTheWait) {
  Share<int> share(0);
  const uint64_t before = share.version();
  absl::Notification waiting;
  absl::StatusOr<uint64_t> result;
  std::thread waiter([&] {
    waiting.Notify();
    result = share.WaitForChange(before, kLongWait);
  });
  waiting.WaitForNotification();
  share.Set(42);
  waiter.join();
  ASSERT_OK(result);
  EXPECT_EQ(*result, before + 1);
  EXPECT_EQ(share.Get(), 42);
}

TEST(ShareTest, EveryWaiterWakesOnOneChange) {
  constexpr int kWaiters = 4;
  Share<int> share(0);
  absl::BlockingCounter started(kWaiters);
  std::vector<absl::StatusOr<uint64_t>> results(kWaiters);
  std::vector<std::thread> waiters;
  for (int i = 0; i < kWaiters; ++i) {
    waiters.emplace_back([&, i] {
      started.DecrementCount();
      results[i] = share.WaitForChange(0, kLongWait);
    });
  }
  started.Wait();
  share.Set(1);
  for (std::thread& t : waiters) t.join();
  for (const absl::StatusOr<uint64_t>& result : results) {
    ASSERT_OK(result);
    EXPECT_EQ(*result, 1u);
  }
}

TEST(ShareTest, WaitForChangeTimesOutWithDeadlineExceeded) {
  Share<int> share(0);
  share.Set(1);
  absl::StatusOr<uint64_t> result =
      share.WaitForChange(share.version(), absl::Milliseconds(10));
  EXPECT_THAT(result, StatusIs(absl::StatusCode::kDeadlineExceeded,
                               HasSubstr("still at version 1")));
  EXPECT_EQ(share.version(), 1u);
}

TEST(ShareTest, WaitUntilReturnsAtOnceWhenThePredicateAlreadyHolds) {
  Share<int> share(5);
  EXPECT_OK(share.WaitUntil([](const int& v) { return v == 5; },
                            absl::ZeroDuration()));
}

TEST(ShareTest, WaitUntilWakesWhenAnotherThreadMakesThePredicateTrue) {
  Share<int> share(0);
  absl::Notification waiter_started;
  std::thread writer([&] {
    waiter_started.WaitForNotification();
    for (int i = 0; i < 100; ++i) share.Update([](int& v) { ++v; });
  });
  waiter_started.Notify();
  absl::Status status =
      share.WaitUntil([](const int& v) { return v >= 100; }, kLongWait);
  writer.join();
  EXPECT_OK(status);
  EXPECT_EQ(share.Get(), 100);
  EXPECT_EQ(share.version(), 100u);
}

TEST(ShareTest, WaitUntilTimesOutWithDeadlineExceeded) {
  Share<std::string> share("idle");
  absl::Status status =
      share.WaitUntil([](const std::string& s) { return s == "ready"; },
                      absl::Milliseconds(10));
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kDeadlineExceeded,
                               HasSubstr("predicate still false")));
  EXPECT_EQ(share.Get(), "idle");
}

TEST(ShareTest, ReadersHoldTheLockTogether) {
  Share<int> share(7);
  absl::Notification first_reader_inside;
  absl::Notification release_first_reader;
  absl::Notification second_reader_done;
  std::thread first([&] {
    share.Read([&](const int&) {
      first_reader_inside.Notify();
      release_first_reader.WaitForNotification();
      return 0;
    });
  });
  first_reader_inside.WaitForNotification();
  std::thread second([&] {
    EXPECT_EQ(share.Read([](const int& v) { return v; }), 7);
    second_reader_done.Notify();
  });
  // With an exclusive lock the second reader would wait for the first one,
  // which waits for this test: the bounded wait turns that into a failure
  // instead of a hang.
  const bool concurrent =
      second_reader_done.WaitForNotificationWithTimeout(kLongWait);
  release_first_reader.Notify();
  first.join();
  second.join();
  EXPECT_TRUE(concurrent);
}

TEST(ShareTest, ConcurrentUpdatesThroughCopiesLoseNone) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 10000;
  Share<int64_t> counter(0);
  absl::Notification start;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&start, handle = counter] {
      start.WaitForNotification();
      for (int i = 0; i < kPerThread; ++i)
        handle.Update([](int64_t& v) { ++v; });
    });
  }
  start.Notify();
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(counter.Get(), kThreads * kPerThread);
  EXPECT_EQ(counter.version(), static_cast<uint64_t>(kThreads * kPerThread));
}

TEST(ShareTest, JsonMembersExistOnlyForTypesWithAJsonMapping) {
  static_assert(JsonConvertible<int>);
  static_assert(JsonConvertible<User>);
  static_assert(JsonConvertible<std::map<std::string, int>>);
  static_assert(!JsonConvertible<NotJson>);
  static_assert(HasJsonMembers<Share<int>>);
  static_assert(!HasJsonMembers<Share<NotJson>>);

  Share<NotJson> share(NotJson{3});
  share.Update([](NotJson& v) { v.x += 1; });
  EXPECT_EQ(share.Get().x, 4);
  EXPECT_EQ(share.version(), 1u);
}

TEST(ShareTest, JsonRoundTripOfInt) {
  Share<int> share(-17);
  EXPECT_EQ(share.ToJson(), "-17");
  Share<int> other;
  ASSERT_OK(other.FromJson(share.ToJson()));
  EXPECT_EQ(other.Get(), -17);
  EXPECT_EQ(other.version(), 1u);
}

TEST(ShareTest, JsonRoundTripOfString) {
  Share<std::string> share("say \"hi\"\n");
  EXPECT_EQ(share.ToJson(), R"("say \"hi\"\n")");
  Share<std::string> other;
  ASSERT_OK(other.FromJson(share.ToJson()));
  EXPECT_EQ(other.Get(), "say \"hi\"\n");
}

TEST(ShareTest, JsonRoundTripOfStruct) {
  Share<User> share(User{1, "Alice", true});
  EXPECT_EQ(nlohmann::json::parse(share.ToJson()),
            nlohmann::json({{"id", 1}, {"name", "Alice"}, {"active", true}}));
  ASSERT_OK(share.FromJson(R"({"id":2,"name":"Bob","active":false})"));
  EXPECT_EQ(share.Get(), (User{2, "Bob", false}));
  Share<User> other;
  ASSERT_OK(other.FromJson(share.ToJson()));
  EXPECT_EQ(other.Get(), share.Get());
}

TEST(ShareTest, JsonRoundTripOfMap) {
  const std::map<std::string, int> stock = {{"apples", 3}, {"pears", 0}};
  Share<std::map<std::string, int>> share(stock);
  EXPECT_EQ(share.ToJson(), R"({"apples":3,"pears":0})");
  Share<std::map<std::string, int>> other;
  ASSERT_OK(other.FromJson(share.ToJson()));
  EXPECT_EQ(other.Get(), stock);
}

TEST(ShareTest, ToJsonReplacesInvalidUtf8InsteadOfFailing) {
  Share<std::string> share(
      std::string("a\xff"
                  "b"));
  EXPECT_EQ(share.ToJson(),
            "\"a\xEF\xBF\xBD"
            "b\"");
}

TEST(ShareTest, FromJsonOfBadJsonIsInvalidArgumentAndChangesNothing) {
  Share<int> share(5);
  share.Set(6);
  EXPECT_THAT(share.FromJson("{"), StatusIs(absl::StatusCode::kInvalidArgument,
                                            HasSubstr("not valid JSON")));
  EXPECT_THAT(share.FromJson(""), StatusIs(absl::StatusCode::kInvalidArgument,
                                           HasSubstr("not valid JSON")));
  EXPECT_THAT(share.FromJson("1 2"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("not valid JSON")));
  EXPECT_EQ(share.Get(), 6);
  EXPECT_EQ(share.version(), 1u);
}

TEST(ShareTest, FromJsonOfWrongTypeIsInvalidArgumentAndChangesNothing) {
  Share<int> share(5);
  EXPECT_THAT(share.FromJson("\"abc\""),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("does not match the value type")));
  EXPECT_EQ(share.Get(), 5);
  EXPECT_EQ(share.version(), 0u);
}

TEST(ShareTest, FromJsonOfStructWithMissingFieldIsInvalidArgument) {
  Share<User> share(User{1, "Alice", true});
  absl::Status status = share.FromJson(R"({"id":2,"active":false})");
  EXPECT_THAT(status,
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("name")));
  EXPECT_EQ(share.Get(), (User{1, "Alice", true}));
  EXPECT_EQ(share.version(), 0u);
}

TEST(ShareTest, FromJsonOfNumberTheTypeCannotHoldIsInvalidArgument) {
  Share<int> integer(1);
  EXPECT_THAT(integer.FromJson("3.5"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("3.5")));
  Share<int8_t> small(1);
  EXPECT_THAT(small.FromJson("300"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("300")));
  Share<uint32_t> unsigned_number(1);
  EXPECT_THAT(unsigned_number.FromJson("-1"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("-1")));
  EXPECT_EQ(integer.Get(), 1);
  EXPECT_EQ(small.Get(), 1);
  EXPECT_EQ(unsigned_number.Get(), 1u);
  EXPECT_EQ(integer.version() + small.version() + unsigned_number.version(),
            0u);

  // Exact values are accepted whatever their JSON spelling.
  Share<double> real(0.0);
  ASSERT_OK(real.FromJson("2"));
  EXPECT_EQ(real.Get(), 2.0);
  ASSERT_OK(integer.FromJson("4.0"));
  EXPECT_EQ(integer.Get(), 4);
}

TEST(ShareTest, FromJsonWakesAWaiter) {
  Share<int> share(0);
  absl::Notification waiting;
  absl::Status status;
  std::thread waiter([&] {
    waiting.Notify();
    status = share.WaitUntil([](const int& v) { return v == 9; }, kLongWait);
  });
  waiting.WaitForNotification();
  ASSERT_OK(share.FromJson("9"));
  waiter.join();
  EXPECT_OK(status);
}

}  // namespace
}  // namespace tshare::core
