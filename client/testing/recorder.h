// Recorder<T>: what a callback received, for tests. The callback thread adds;
// the test thread waits (with a timeout) until enough arrived, then reads a
// copy.
//
// Thread-safety: every method may be called from any thread.
#ifndef TSHARE_CLIENT_TESTING_RECORDER_H_
#define TSHARE_CLIENT_TESTING_RECORDER_H_

#include <cstddef>
#include <functional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace tshare::client::testing {

template <typename T>
class Recorder final {
 public:
  void Add(T item) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    items_.push_back(std::move(item));
  }

  // Waits until pred(items) holds; false if `timeout` passes first.
  bool WaitUntil(std::function<bool(const std::vector<T>&)> pred,
                 absl::Duration timeout) const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return pred(items_);
    };
    return mu_.AwaitWithDeadline(absl::Condition(&ready),
                                 absl::Now() + timeout);
  }
  bool WaitForSize(size_t n, absl::Duration timeout) const {
    return WaitUntil(
        [n](const std::vector<T>& items) { return items.size() >= n; },
        timeout);
  }

  std::vector<T> Items() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return items_;
  }
  size_t size() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return items_.size();
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<T> items_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tshare::client::testing

#endif  // TSHARE_CLIENT_TESTING_RECORDER_H_
