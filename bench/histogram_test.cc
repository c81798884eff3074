#include "bench/histogram.h"

#include <cmath>
#include <cstdint>
#include <limits>

#include "gtest/gtest.h"

namespace tshare::bench {
namespace {

TEST(HistogramTest, EmptyReportsZeros) {
  Histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.Percentile(50), 0u);
  EXPECT_EQ(h.mean(), 0);
}

TEST(HistogramTest, SmallValuesAreExact) {
  Histogram h;
  for (uint64_t v = 0; v < 100; ++v) h.Record(v);
  EXPECT_EQ(h.count(), 100u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 99u);
  EXPECT_EQ(h.Percentile(50), 49u);
  EXPECT_EQ(h.Percentile(100), 99u);
  EXPECT_DOUBLE_EQ(h.mean(), 49.5);
}

TEST(HistogramTest, EveryValueFallsInABucketThatContainsIt) {
  for (uint64_t v : {uint64_t{0}, uint64_t{127}, uint64_t{128}, uint64_t{129},
                     uint64_t{255}, uint64_t{256}, uint64_t{1'000'003},
                     uint64_t{1} << 40, std::numeric_limits<uint64_t>::max()}) {
    const int i = Histogram::Index(v);
    ASSERT_GE(i, 0);
    ASSERT_LT(i, Histogram::kBuckets);
    EXPECT_LE(Histogram::LowestInBucket(i), v) << v;
    EXPECT_GE(Histogram::HighestInBucket(i), v) << v;
    // Width at most 1/128 of the value.
    EXPECT_LE(Histogram::HighestInBucket(i) - Histogram::LowestInBucket(i),
              Histogram::LowestInBucket(i) / Histogram::kSubBuckets)
        << v;
  }
}

TEST(HistogramTest, BucketsAreContiguous) {
  for (int i = 1; i < Histogram::kBuckets; ++i) {
    ASSERT_EQ(Histogram::LowestInBucket(i),
              Histogram::HighestInBucket(i - 1) + 1)
        << i;
  }
  EXPECT_EQ(Histogram::HighestInBucket(Histogram::kBuckets - 1),
            std::numeric_limits<uint64_t>::max());
}

TEST(HistogramTest, PercentilesOfAUniformRangeAreWithinOnePercent) {
  Histogram h;
  for (uint64_t v = 1; v <= 1'000'000; ++v) h.Record(v * 10);  // 10 ns .. 10 ms
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    const double exact = p / 100.0 * 10'000'000;
    const double got = static_cast<double>(h.Percentile(p));
    EXPECT_NEAR(got, exact, exact / 100) << "p" << p;
  }
  EXPECT_EQ(h.Percentile(100), 10'000'000u);
  EXPECT_EQ(h.min(), 10u);
}

TEST(HistogramTest, MergeEqualsRecordingEverythingInOne) {
  Histogram a, b, all;
  for (uint64_t v = 0; v < 5000; ++v) {
    const uint64_t x = v * v + 17;
    (v % 3 == 0 ? a : b).Record(x);
    all.Record(x);
  }
  a.Merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.min(), all.min());
  EXPECT_EQ(a.max(), all.max());
  EXPECT_DOUBLE_EQ(a.mean(), all.mean());
  for (double p : {1.0, 50.0, 99.0, 99.99})
    EXPECT_EQ(a.Percentile(p), all.Percentile(p)) << p;
}

TEST(HistogramTest, RecordWithCountWeighsTheValue) {
  Histogram h;
  h.Record(1000, 99);
  h.Record(5'000'000, 1);
  EXPECT_EQ(h.count(), 100u);
  EXPECT_LE(h.Percentile(99), 1007u);
  EXPECT_EQ(h.Percentile(99.5), 5'000'000u);
}

TEST(HistogramTest, ClearForgetsEverything) {
  Histogram h;
  h.Record(42);
  h.Clear();
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.Percentile(50), 0u);
  h.Record(7);
  EXPECT_EQ(h.min(), 7u);
}

}  // namespace
}  // namespace tshare::bench
