#include "service/internal/stream_pump.h"

#include <deque>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace tshare::service::internal {
namespace {

// A pump over ints that records each write's buffer hint and completes every
// write at once, as a fast gRPC stream would.
class RecordingPump final : public StreamPump<int> {
 public:
  // Queues frames 0..n-1, then starts writing.
  void QueueAndPump(int n) ABSL_LOCKS_EXCLUDED(mu_) {
    {
      absl::MutexLock lock(&mu_);
      for (int i = 0; i < n; ++i) queue_.push_back(i);
    }
    Pump();
  }
  std::vector<bool> hints;  // written by StartWriteFrame only (one at a time)
  std::vector<int> written;

 protected:
  const int* NextFrameLocked() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (queue_.empty()) return nullptr;
    current_ = queue_.front();
    queue_.pop_front();
    return &current_;
  }
  bool MoreQueuedLocked() const override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !queue_.empty();
  }
  void StartWriteFrame(const int* frame, grpc::WriteOptions options) override {
    hints.push_back(options.get_buffer_hint());
    written.push_back(*frame);
    OnWritten(true);
  }
  void FinishStream(const grpc::Status&) override {}

 public:
  static constexpr int kFrames = 100;

 private:
  std::deque<int> queue_ ABSL_GUARDED_BY(mu_);
  int current_ ABSL_GUARDED_BY(mu_) = 0;
};

// A stream that always has another frame queued still sends: at most 16
// hinted frames in a row, then one without the hint, which gRPC sends together
// with the held ones.
TEST(StreamPumpTest, BufferHintNeverHoldsMoreThanSixteenFramesInARow) {
  RecordingPump pump;
  pump.QueueAndPump(RecordingPump::kFrames);
  ASSERT_EQ(pump.written.size(), static_cast<size_t>(RecordingPump::kFrames));
  for (size_t i = 0; i < pump.written.size(); ++i)
    EXPECT_EQ(pump.written[i], static_cast<int>(i));
  int in_a_row = 0;
  int unhinted = 0;
  for (bool hint : pump.hints) {
    in_a_row = hint ? in_a_row + 1 : 0;
    unhinted += hint ? 0 : 1;
    EXPECT_LE(in_a_row, 16);
  }
  EXPECT_TRUE(pump.hints[0]);       // more was queued behind the first frame
  EXPECT_FALSE(pump.hints.back());  // nothing behind the last one
  EXPECT_GE(unhinted, 5);
}

}  // namespace
}  // namespace tshare::service::internal
