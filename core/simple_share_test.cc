#include "core/simple_share.h"

#include <cstdint>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace tshare::core {
namespace {

TEST(SimpleShareTest, DefaultShareHoldsValueInitializedT) {
  SimpleShare<int> number;
  SimpleShare<std::string> text;
  EXPECT_EQ(number.Get(), 0);
  EXPECT_EQ(text.Get(), "");
}

TEST(SimpleShareTest, MakeSimpleShareDeducesOrTakesTheType) {
  auto deduced = MakeSimpleShare(std::string("hello"));
  auto explicit_type = MakeSimpleShare<int64_t>(7);
  static_assert(std::is_same_v<decltype(deduced), SimpleShare<std::string>>);
  static_assert(std::is_same_v<decltype(explicit_type), SimpleShare<int64_t>>);
  EXPECT_EQ(deduced.Get(), "hello");
  EXPECT_EQ(explicit_type.Get(), 7);
}

TEST(SimpleShareTest, HandleCopiesShareOneStateAndNeverDiverge) {
  SimpleShare<std::string> original("a");
  SimpleShare<std::string> copy = original;
  SimpleShare<std::string> assigned;
  assigned = copy;
  SimpleShare<std::string> moved = std::move(assigned);
  const std::vector<SimpleShare<std::string>> handles = {original, copy,
                                                         assigned, moved};

  original.Set("b");
  copy.Update([](std::string& s) { s += "c"; });
  assigned.Write(
      [](std::string& s) { s += "d"; });  // NOLINT(bugprone-use-after-move)
  moved.Update([](std::string& s) { s += "e"; });

  for (const SimpleShare<std::string>& handle : handles) {
    EXPECT_EQ(handle.Get(), "bcde");
    EXPECT_TRUE(handle.SameStateAs(original));
  }
  SimpleShare<std::string> unrelated("bcde");
  EXPECT_FALSE(unrelated.SameStateAs(original));
  unrelated.Set("other");
  EXPECT_EQ(original.Get(), "bcde");
}

TEST(SimpleShareTest, SetUpdateReadAndWrite) {
  const SimpleShare<std::vector<int>> share(std::vector<int>{1, 2});
  share.Set({4, 5, 6});
  EXPECT_EQ(share.Get(), (std::vector<int>{4, 5, 6}));

  share.Update([](std::vector<int>& v) { v.push_back(7); });
  EXPECT_EQ(share.Read([](const std::vector<int>& v) { return v.size(); }), 4u);

  const int popped = share.Write([](std::vector<int>& v) {
    const int last = v.back();
    v.pop_back();
    return last;
  });
  EXPECT_EQ(popped, 7);
  EXPECT_EQ(share.Get(), (std::vector<int>{4, 5, 6}));

  auto read = share.Read(
      [](const std::vector<int>& v) -> const std::vector<int>& { return v; });
  static_assert(std::is_same_v<decltype(read), std::vector<int>>);
  share.Set({});
  EXPECT_EQ(read.size(), 3u);
}

TEST(SimpleShareTest, FourThreadsOfIncrementsLoseNone) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 100000;
  SimpleShare<int64_t> counter(0);
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
  EXPECT_EQ(counter.Get(), int64_t{kThreads} * kPerThread);
}

}  // namespace
}  // namespace tshare::core
