// A log-bucketed latency histogram in the manner of HdrHistogram: every value
// from 0 to 2^64 - 1 is counted in a bucket whose width is at most 1/128 of the
// value (values below 128 are exact), so a percentile read back is within 0.8 %
// of the true one whatever the range. Fixed memory (7,424 counters, 58 KiB),
// O(1) Record, and Merge adds two histograms, so each load thread keeps its own
// and the report merges them.
//
// Thread-safety: none; a Histogram belongs to one thread at a time. Merge
// per-thread histograms after their threads stopped recording.
//
//   Histogram h;
//   h.Record(1'250);                       // e.g. nanoseconds
//   h.Merge(other_thread_histogram);
//   uint64_t p99 = h.Percentile(99.0);     // within 1/128 of the exact p99
#ifndef TSHARE_BENCH_HISTOGRAM_H_
#define TSHARE_BENCH_HISTOGRAM_H_

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

namespace tshare::bench {

class Histogram final {
 public:
  // Bits of precision below a value's leading one: 2^7 = 128 sub-buckets per
  // power of two.
  static constexpr int kSubBucketBits = 7;
  static constexpr int kSubBuckets = 1 << kSubBucketBits;
  static constexpr int kBuckets = kSubBuckets * (64 - kSubBucketBits + 1);

  Histogram() : counts_(kBuckets, 0) {}

  // Counts `value` `times` times.
  void Record(uint64_t value, uint64_t times = 1) {
    if (times == 0) return;
    counts_[Index(value)] += times;
    count_ += times;
    sum_ += static_cast<double>(value) * static_cast<double>(times);
    min_ = std::min(min_, value);
    max_ = std::max(max_, value);
  }

  void Merge(const Histogram& other) {
    if (other.count_ == 0) return;
    for (int i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    count_ += other.count_;
    sum_ += other.sum_;
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
  }

  void Clear() {
    std::fill(counts_.begin(), counts_.end(), 0);
    count_ = 0;
    sum_ = 0;
    min_ = std::numeric_limits<uint64_t>::max();
    max_ = 0;
  }

  uint64_t count() const { return count_; }
  // 0 when empty.
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  double mean() const {
    return count_ == 0 ? 0 : sum_ / static_cast<double>(count_);
  }

  // The smallest recorded-bucket value v such that at least `percentile` % of
  // the values are
  // <= v, reported as the bucket's highest value (clamped to [min(), max()]); 0
  // when empty. `percentile` is in [0, 100]; Percentile(100) == max().
  uint64_t Percentile(double percentile) const {
    if (count_ == 0) return 0;
    percentile = std::clamp(percentile, 0.0, 100.0);
    uint64_t rank = static_cast<uint64_t>(
        percentile / 100.0 * static_cast<double>(count_) + 0.5);
    rank = std::clamp<uint64_t>(rank, 1, count_);
    uint64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::clamp(HighestInBucket(i), min(), max_);
    }
    return max_;
  }

  // The bucket a value falls in; public for tests.
  static int Index(uint64_t value) {
    if (value < kSubBuckets) return static_cast<int>(value);
    const int msb = 63 - __builtin_clzll(value);
    const int shift = msb - kSubBucketBits;
    return (shift + 1) * kSubBuckets +
           static_cast<int>((value >> shift) - kSubBuckets);
  }
  static uint64_t LowestInBucket(int index) {
    if (index < kSubBuckets) return static_cast<uint64_t>(index);
    const int shift = index / kSubBuckets - 1;
    const uint64_t mantissa =
        static_cast<uint64_t>(index % kSubBuckets + kSubBuckets);
    return mantissa << shift;
  }
  static uint64_t HighestInBucket(int index) {
    if (index < kSubBuckets) return static_cast<uint64_t>(index);
    const int shift = index / kSubBuckets - 1;
    return LowestInBucket(index) + ((uint64_t{1} << shift) - 1);
  }

 private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  double sum_ = 0;
  uint64_t min_ = std::numeric_limits<uint64_t>::max();
  uint64_t max_ = 0;
};

}  // namespace tshare::bench

#endif  // TSHARE_BENCH_HISTOGRAM_H_
