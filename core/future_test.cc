#include "core/future.h"

#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/status_matchers.h"

namespace tshare::core {
namespace {

using ::testing::HasSubstr;
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

TEST(FutureTest, DefaultConstructedFutureIsInvalid) {
  Future<int> future;
  EXPECT_FALSE(future.valid());
  EXPECT_FALSE(future.IsReady());
  EXPECT_FALSE(future.Wait(absl::Milliseconds(1)));
  EXPECT_THAT(future.Get(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(future.Then([](int v) { return v + 1; }).Get(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(FutureTest, GetReturnsTheValueSet) {
  Promise<std::string> promise;
  Future<std::string> future = promise.GetFuture();
  EXPECT_TRUE(future.valid());
  EXPECT_FALSE(future.IsReady());
  promise.SetValue("hello");
  EXPECT_TRUE(future.IsReady());
  ASSERT_OK_AND_ASSIGN(std::string v, future.Get());
  EXPECT_EQ(v, "hello");
  // Get copies: every caller and every copy of the handle sees the value.
  Future<std::string> copy = future;
  EXPECT_THAT(copy.Get(), IsOkAndHolds("hello"));
}

TEST(FutureTest, WaitTimesOutUntilTheValueIsSetThenSucceeds) {
  Promise<int> promise;
  Future<int> future = promise.GetFuture();
  EXPECT_FALSE(future.Wait(absl::Milliseconds(10)));
  std::thread producer([&promise] { promise.SetValue(7); });
  EXPECT_TRUE(future.Wait(absl::Seconds(60)));
  producer.join();
  EXPECT_THAT(future.Get(), IsOkAndHolds(7));
}

TEST(FutureTest, VoidPromiseCompletesWithOk) {
  Promise<void> promise;
  Future<void> future = promise.GetFuture();
  EXPECT_FALSE(future.IsReady());
  promise.SetValue();
  EXPECT_OK(future.Get());
}

TEST(FutureTest, SetStatusPropagatesTheError) {
  Promise<int> promise;
  Future<int> future = promise.GetFuture();
  promise.SetStatus(absl::NotFoundError("no such key"));
  EXPECT_THAT(future.Get(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no such key")));
}

TEST(FutureTest, SetStatusWithOkBecomesInternal) {
  Promise<void> promise;
  Future<void> future = promise.GetFuture();
  promise.SetStatus(absl::OkStatus());
  EXPECT_THAT(future.Get(),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("OK status")));
}

TEST(FutureTest, OnlyTheFirstResultCounts) {
  Promise<int> promise;
  Future<int> future = promise.GetFuture();
  promise.SetValue(1);
  promise.SetValue(2);
  promise.SetStatus(absl::AbortedError("late"));
  EXPECT_THAT(future.Get(), IsOkAndHolds(1));
}

TEST(FutureTest, AbandonedPromiseCancelsItsFuture) {
  Future<int> future;
  {
    Promise<int> promise;
    future = promise.GetFuture();
  }
  EXPECT_THAT(future.Get(),
              StatusIs(absl::StatusCode::kCancelled, HasSubstr("abandoned")));
}

TEST(FutureTest, PromiseAssignedOverIsAbandonedButTheMovedOneStillWorks) {
  Promise<int> first;
  Future<int> first_future = first.GetFuture();
  Promise<int> second;
  Future<int> second_future = second.GetFuture();
  first = std::move(second);  // first's old state has no producer any more
  EXPECT_THAT(first_future.Get(), StatusIs(absl::StatusCode::kCancelled));
  first.SetValue(5);
  EXPECT_THAT(second_future.Get(), IsOkAndHolds(5));
}

TEST(FutureTest, MakeReadyFutureIsReadyAtOnce) {
  Future<int> value = MakeReadyFuture<int>(3);
  EXPECT_TRUE(value.IsReady());
  EXPECT_THAT(value.Get(), IsOkAndHolds(3));
  Future<int> error = MakeReadyFuture<int>(absl::UnavailableError("down"));
  EXPECT_THAT(error.Get(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_OK(MakeReadyFuture().Get());
  EXPECT_THAT(MakeReadyFuture(absl::DataLossError("x")).Get(),
              StatusIs(absl::StatusCode::kDataLoss));
}

TEST(FutureTest, ThenChainsValues) {
  Promise<int> promise;
  Future<std::string> text =
      promise.GetFuture().Then([](int v) { return v * 2; }).Then([](int v) {
        return std::to_string(v) + "!";
      });
  EXPECT_FALSE(text.IsReady());
  promise.SetValue(21);
  EXPECT_THAT(text.Get(), IsOkAndHolds("42!"));
}

TEST(FutureTest, ThenPassesAnErrorThroughWithoutCallingF) {
  Promise<int> promise;
  bool called = false;
  Future<int> next = promise.GetFuture().Then([&called](int v) {
    called = true;
    return v;
  });
  promise.SetStatus(absl::PermissionDeniedError("no"));
  EXPECT_THAT(next.Get(),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("no")));
  EXPECT_FALSE(called);
}

TEST(FutureTest, ThenWithStatusOrReturningFunction) {
  auto parse = [](const std::string& s) -> absl::StatusOr<int> {
    if (s.empty()) return absl::InvalidArgumentError("empty input");
    return static_cast<int>(s.size());
  };
  Promise<std::string> good;
  Future<int> good_len = good.GetFuture().Then(parse);
  Promise<std::string> bad;
  Future<int> bad_len = bad.GetFuture().Then(parse);
  good.SetValue("abcd");
  bad.SetValue("");
  EXPECT_THAT(good_len.Get(), IsOkAndHolds(4));
  EXPECT_THAT(bad_len.Get(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
}

TEST(FutureTest, ThenReturningStatusOrVoidGivesVoidFuture) {
  Promise<int> promise;
  Future<void> checked = promise.GetFuture().Then([](int v) {
    return v > 0 ? absl::OkStatus() : absl::OutOfRangeError("not positive");
  });
  int seen = 0;
  Future<void> side_effect =
      promise.GetFuture().Then([&seen](int v) { seen = v; });
  promise.SetValue(-1);
  EXPECT_THAT(checked.Get(), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_OK(side_effect.Get());
  EXPECT_EQ(seen, -1);
}

TEST(FutureTest, ThenOnVoidFutureTakesNoArgument) {
  Promise<void> promise;
  Future<int> next = promise.GetFuture().Then([] { return 9; });
  promise.SetValue();
  EXPECT_THAT(next.Get(), IsOkAndHolds(9));
}

TEST(FutureTest, ThenOnReadyFutureRunsAtOnceOnTheCallersThread) {
  Future<int> ready = MakeReadyFuture<int>(1);
  std::thread::id ran_on;
  Future<int> next = ready.Then([&ran_on](int v) {
    ran_on = std::this_thread::get_id();
    return v + 1;
  });
  EXPECT_TRUE(next.IsReady());
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  EXPECT_THAT(next.Get(), IsOkAndHolds(2));
}

TEST(FutureTest, ThenRunsOnTheThreadThatCompletesThePromise) {
  Promise<int> promise;
  std::thread::id ran_on;
  Future<int> next = promise.GetFuture().Then([&ran_on](int v) {
    ran_on = std::this_thread::get_id();
    return v;
  });
  std::thread::id producer_id;
  std::thread producer([&] {
    producer_id = std::this_thread::get_id();
    promise.SetValue(3);
  });
  producer.join();
  EXPECT_TRUE(next.IsReady());
  EXPECT_EQ(ran_on, producer_id);
  EXPECT_THAT(next.Get(), IsOkAndHolds(3));
}

TEST(FutureTest, ThenThatThrowsGivesInternalError) {
  Promise<int> promise;
  Future<int> next = promise.GetFuture().Then(
      [](int) -> int { throw std::runtime_error("bad parse"); });
  promise.SetValue(1);
  EXPECT_THAT(next.Get(),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("bad parse")));
}

TEST(FutureTest, ManyThreadsWaitOnOneFuture) {
  constexpr int kWaiters = 8;
  Promise<int> promise;
  Future<int> future = promise.GetFuture();
  absl::BlockingCounter waiting(kWaiters);
  std::vector<absl::StatusOr<int>> results(kWaiters,
                                           absl::UnknownError("not set"));
  std::vector<std::thread> threads;
  for (int i = 0; i < kWaiters; ++i) {
    threads.emplace_back([&, i, copy = future] {
      waiting.DecrementCount();
      results[i] = copy.Get();
    });
  }
  waiting.Wait();
  promise.SetValue(99);
  for (std::thread& t : threads) t.join();
  for (const absl::StatusOr<int>& r : results) EXPECT_THAT(r, IsOkAndHolds(99));
}

TEST(FutureTest, ManyContinuationsAllRun) {
  constexpr int kContinuations = 16;
  Promise<int> promise;
  std::vector<Future<int>> next;
  for (int i = 0; i < kContinuations; ++i) {
    next.push_back(promise.GetFuture().Then([i](int v) { return v + i; }));
  }
  std::thread producer([&promise] { promise.SetValue(100); });
  for (int i = 0; i < kContinuations; ++i) {
    EXPECT_THAT(next[i].Get(), IsOkAndHolds(100 + i));
  }
  producer.join();
}

TEST(FutureTest, MoveOnlyCallableIsAcceptedByThen) {
  Promise<int> promise;
  auto owned = std::make_unique<int>(10);
  Future<int> next = promise.GetFuture().Then(
      [p = std::move(owned)](int v) { return v + *p; });
  promise.SetValue(5);
  EXPECT_THAT(next.Get(), IsOkAndHolds(15));
}

}  // namespace
}  // namespace tshare::core
