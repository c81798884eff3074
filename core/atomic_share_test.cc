#include "core/atomic_share.h"

#include <atomic>
#include <cstdint>
#include <limits>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace tshare::core {
namespace {

constexpr int kIncrementsPerThread = 1000000;
// Every kYieldEvery calls, an update function gives up the CPU between reading
// the value and returning the new one, so other threads change the value in
// between even on a machine that runs one thread at a time: a lost update would
// show.
constexpr int kYieldEvery = 256;
constexpr int kThreads = 4;

struct Point {
  int32_t x = 0;
  int32_t y = 0;
};

// Not trivially copyable: lives copy-on-write. Invariant: per_thread sums to
// total.
struct Tally {
  int64_t total = 0;
  std::vector<int64_t> per_thread = std::vector<int64_t>(kThreads, 0);
};

// Runs body(thread_index) on kThreads threads that all start together.
template <typename Body>
void RunTogether(Body body) {
  absl::Notification start;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&start, &body, t] {
      start.WaitForNotification();
      body(t);
    });
  }
  start.Notify();
  for (std::thread& thread : threads) thread.join();
}

TEST(AtomicShareTest, LockFreeForSmallTriviallyCopyableTypesOnly) {
  static_assert(AtomicShare<int64_t>::kIsLockFree);
  static_assert(AtomicShare<double>::kIsLockFree);
  static_assert(AtomicShare<Point>::kIsLockFree);
  static_assert(!AtomicShare<std::string>::kIsLockFree);
  static_assert(!AtomicShare<Tally>::kIsLockFree);
  EXPECT_TRUE(AtomicShare<int64_t>::kIsLockFree);
  EXPECT_FALSE(AtomicShare<std::string>::kIsLockFree);
}

TEST(AtomicShareTest, MakeAtomicShareDeducesOrTakesTheType) {
  auto deduced = MakeAtomicShare(std::string("hello"));
  auto explicit_type = MakeAtomicShare<int64_t>(7);
  static_assert(std::is_same_v<decltype(deduced), AtomicShare<std::string>>);
  static_assert(std::is_same_v<decltype(explicit_type), AtomicShare<int64_t>>);
  EXPECT_EQ(deduced.Get(), "hello");
  EXPECT_EQ(explicit_type.Get(), 7);
  EXPECT_EQ(AtomicShare<int>().Get(), 0);
  EXPECT_EQ(AtomicShare<std::string>().Get(), "");
}

TEST(AtomicShareTest, HandleCopiesShareOneStateAndNeverDiverge) {
  AtomicShare<int64_t> number(1);
  AtomicShare<int64_t> number_copy = number;
  AtomicShare<std::string> text("a");
  AtomicShare<std::string> text_copy;
  text_copy = text;

  number.Set(10);
  number_copy.Add(5);
  number.Update([](int64_t v) { return v * 2; });
  text.Set("b");
  text_copy.Update([](const std::string& s) { return s + "c"; });

  EXPECT_EQ(number.Get(), 30);
  EXPECT_EQ(number_copy.Get(), 30);
  EXPECT_EQ(text.Get(), "bc");
  EXPECT_EQ(text_copy.Get(), "bc");
  EXPECT_TRUE(number.SameStateAs(number_copy));
  EXPECT_TRUE(text.SameStateAs(text_copy));
  EXPECT_FALSE(text.SameStateAs(AtomicShare<std::string>("bc")));
}

TEST(AtomicShareTest, UpdateReturnsTheValueItInstalled) {
  const AtomicShare<int> number(3);
  EXPECT_EQ(number.Update([](int v) { return v + 4; }), 7);
  EXPECT_EQ(number.Get(), 7);

  const AtomicShare<Point> point(Point{1, 2});
  const Point moved = point.Update([](const Point& p) {
    return Point{p.x + 10, p.y};
  });
  EXPECT_EQ(moved.x, 11);
  EXPECT_EQ(point.Get().x, 11);
  EXPECT_EQ(point.Get().y, 2);

  const AtomicShare<std::string> text("ab");
  EXPECT_EQ(text.Update([](std::string s) { return s + "c"; }), "abc");
  EXPECT_EQ(text.Get(), "abc");
}

TEST(AtomicShareTest, ReadSeesTheValueWithoutCopyingIt) {
  AtomicShare<std::string> text("first");
  const std::string* address =
      text.Read([](const std::string& s) { return &s; });
  EXPECT_EQ(text.Read([](const std::string& s) { return &s; }), address);
  EXPECT_EQ(text.Read([](const std::string& s) { return s.size(); }), 5u);

  // A change installs a new value; the old one is never written to.
  text.Set("second");
  EXPECT_NE(text.Read([](const std::string& s) { return &s; }), address);
  EXPECT_EQ(text.Get(), "second");

  AtomicShare<int> number(9);
  EXPECT_EQ(number.Read([](const int& v) { return v * 2; }), 18);
}

TEST(AtomicShareTest, AddForIntegers) {
  AtomicShare<int64_t> number(40);
  EXPECT_EQ(number.Add(2), 42);
  EXPECT_EQ(number.Add(-50), -8);
  EXPECT_EQ(number.Get(), -8);

  AtomicShare<int32_t> edge(std::numeric_limits<int32_t>::max());
  EXPECT_EQ(edge.Add(1),
            std::numeric_limits<int32_t>::min());  // wraps like fetch_add

  AtomicShare<uint8_t> byte(250);
  EXPECT_EQ(byte.Add(10), 4);
}

TEST(AtomicShareTest, AddForDouble) {
  AtomicShare<double> real(1.5);
  EXPECT_EQ(real.Add(2.25), 3.75);
  EXPECT_EQ(real.Get(), 3.75);

  // Halves are exact in binary, so concurrent additions must sum exactly.
  AtomicShare<double> sum(0.0);
  constexpr int kPerThread = 20000;
  RunTogether([&](int) {
    for (int i = 0; i < kPerThread; ++i) sum.Add(0.5);
  });
  EXPECT_EQ(sum.Get(), 0.5 * kThreads * kPerThread);
}

TEST(AtomicShareTest, FourThreadsOfUpdatesLoseNone) {
  AtomicShare<int64_t> counter(0);
  std::atomic<int64_t> retries{0};
  RunTogether([&retries, handle = counter](int) {
    int64_t calls = 0;
    for (int i = 0; i < kIncrementsPerThread; ++i) {
      handle.Update([&calls](int64_t v) {
        if (++calls % kYieldEvery == 0) std::this_thread::yield();
        return v + 1;
      });
    }
    retries.fetch_add(calls - kIncrementsPerThread);
  });
  EXPECT_EQ(counter.Get(), int64_t{kThreads} * kIncrementsPerThread);
  // How often f ran again because another thread got in first (information
  // only: the amount of contention is up to the scheduler).
  ::testing::Test::RecordProperty("retries", std::to_string(retries.load()));
}

TEST(AtomicShareTest, FourThreadsOfAddsLoseNone) {
  AtomicShare<int64_t> counter(0);
  RunTogether([handle = counter](int) {
    for (int i = 0; i < kIncrementsPerThread; ++i) handle.Add(1);
  });
  EXPECT_EQ(counter.Get(), int64_t{kThreads} * kIncrementsPerThread);
}

TEST(AtomicShareTest, CopyOnWriteUpdatesOfAStructWithAVectorLoseNone) {
  constexpr int kPerThread = 50000;
  AtomicShare<Tally> tally;
  RunTogether([&](int t) {
    int64_t calls = 0;
    for (int i = 0; i < kPerThread; ++i) {
      tally.Update([t, &calls](Tally v) {
        if (++calls % kYieldEvery == 0) std::this_thread::yield();
        ++v.total;
        ++v.per_thread[t];
        return v;
      });
    }
  });
  const Tally result = tally.Get();
  EXPECT_EQ(result.total, int64_t{kThreads} * kPerThread);
  for (int t = 0; t < kThreads; ++t)
    EXPECT_EQ(result.per_thread[t], kPerThread) << t;
}

TEST(AtomicShareTest, CopyOnWriteStringAppendsLoseNone) {
  // Each update copies the whole string, so the string stays short enough to
  // keep this fast.
  constexpr int kPerThread = 2000;
  AtomicShare<std::string> text;
  RunTogether([&](int t) {
    const char mark = static_cast<char>('a' + t);
    int64_t calls = 0;
    for (int i = 0; i < kPerThread; ++i) {
      text.Update([mark, &calls](const std::string& s) {
        if (++calls % 16 == 0) std::this_thread::yield();
        return s + mark;
      });
    }
  });
  const std::string result = text.Get();
  ASSERT_EQ(result.size(), size_t{kThreads} * kPerThread);
  for (int t = 0; t < kThreads; ++t) {
    int count = 0;
    for (char c : result) count += c == 'a' + t;
    EXPECT_EQ(count, kPerThread) << static_cast<char>('a' + t);
  }
}

TEST(AtomicShareTest, ReadersNeverSeeAHalfWrittenOrFreedValue) {
  // Writers replace the value while readers look at it; every value a reader
  // sees must be whole (per_thread sums to total). Under the sanitizers this
  // also proves that no reader touches a value after it was freed.
  constexpr int kWriters = 2;
  constexpr int kReaders = 2;
  constexpr int kPerWriter = 20000;
  AtomicShare<Tally> tally;
  std::atomic<int> writers_left{kWriters};
  std::atomic<int64_t> torn{0};
  std::atomic<int64_t> reads{0};
  absl::BlockingCounter ready(kWriters + kReaders);
  absl::Notification start;
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      ready.DecrementCount();
      start.WaitForNotification();
      for (int i = 0; i < kPerWriter; ++i) {
        // Now and then, let readers in between reading the value and
        // replacing it.
        const bool pause = i % kYieldEvery <= 1;  // both kinds of update
        if (i % 2 == 0) {
          tally.Update([w, pause](Tally v) {
            if (pause) std::this_thread::yield();
            ++v.total;
            ++v.per_thread[w];
            return v;
          });
        } else {
          tally.Update([w, pause](const Tally& v) {
            if (pause) std::this_thread::yield();
            Tally next = v;
            ++next.total;
            ++next.per_thread[w];
            return next;
          });
        }
      }
      writers_left.fetch_sub(1);
    });
  }
  for (int r = 0; r < kReaders; ++r) {
    threads.emplace_back([&] {
      ready.DecrementCount();
      start.WaitForNotification();
      // At least one read even if the writers are already done.
      do {
        const bool whole = tally.Read([](const Tally& v) {
          int64_t sum = 0;
          for (int64_t n : v.per_thread) sum += n;
          return sum == v.total;
        });
        const Tally copy = tally.Get();
        int64_t sum = 0;
        for (int64_t n : copy.per_thread) sum += n;
        if (!whole || sum != copy.total) torn.fetch_add(1);
        reads.fetch_add(1);
        std::this_thread::yield();
      } while (writers_left.load() > 0);
    });
  }
  ready.Wait();
  start.Notify();
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_GE(reads.load(), kReaders);
  EXPECT_EQ(tally.Get().total, int64_t{kWriters} * kPerWriter);
}

TEST(AtomicShareTest, SetFromManyThreadsLeavesOneOfTheValues) {
  AtomicShare<std::string> text("start");
  RunTogether([&](int t) {
    for (int i = 0; i < 1000; ++i)
      text.Set(std::string(8 + t, static_cast<char>('a' + t)));
  });
  const std::string result = text.Get();
  ASSERT_GE(result.size(), 8u);
  const int t = result[0] - 'a';
  ASSERT_GE(t, 0);
  ASSERT_LT(t, kThreads);
  EXPECT_EQ(result, std::string(8 + t, static_cast<char>('a' + t)));
}

}  // namespace
}  // namespace tshare::core
