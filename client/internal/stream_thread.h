// StreamThread: the thread a watch or a subscription owns, with the stop
// protocol both share.
//
// Stop() from another thread sets the stop flag, cancels the current stream and
// joins the thread, so that no callback runs after it returns. Stop() from the
// thread itself (inside a callback) sets the flag, cancels and detaches: the
// callback finishes and the loop ends without another one. The owner holds the
// StreamThread, and the thread's body holds a shared_ptr to the owner, so a
// detached thread never outlives what it uses.
//
// Thread-safety: every method may be called from any thread.
#ifndef TSHARE_CLIENT_INTERNAL_STREAM_THREAD_H_
#define TSHARE_CLIENT_INTERNAL_STREAM_THREAD_H_

#include <functional>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace tshare::client::internal {

class StreamThread final {
 public:
  StreamThread() = default;
  StreamThread(const StreamThread&) = delete;
  StreamThread& operator=(const StreamThread&) = delete;
  // Detaches a thread nobody joined: only reached on the thread itself, when it
  // drops the last reference to its owner.
  ~StreamThread() {
    if (thread_.joinable()) thread_.detach();
  }

  // Runs `body` on a new thread. REQUIRES: called once.
  void Start(std::function<void()> body) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    started_ = true;
    thread_ = std::thread([this, body = std::move(body)] {
      body();
      // `body` (alive until this lambda is destroyed) keeps this object alive.
      absl::MutexLock lock(&mu_);
      exited_ = true;
    });
    thread_id_ = thread_.get_id();
  }

  // Registers how to cancel the current stream (it must not block); false,
  // registering nothing, once stopped.
  bool SetCancel(std::function<void()> cancel) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (stop_) return false;
    cancel_ = std::move(cancel);
    return true;
  }
  void ClearCancel() ABSL_LOCKS_EXCLUDED(mu_) {
    std::function<void()> old;
    absl::MutexLock lock(&mu_);
    old.swap(cancel_);
  }

  // Sets the stop flag, cancels the current stream, then waits for the thread
  // to end, or detaches it when called on the thread itself. Idempotent;
  // concurrent callers all wait.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_) {
    std::thread to_join;
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
      if (cancel_) cancel_();
      if (!started_) return;
      if (std::this_thread::get_id() == thread_id_) {
        if (thread_.joinable()) thread_.detach();
        return;
      }
      if (!thread_.joinable()) {
        mu_.Await(absl::Condition(&exited_));
        return;
      }
      to_join = std::move(thread_);
    }
    to_join.join();
  }

  bool stopped() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return stop_;
  }

  // Sleeps until `deadline` or a stop; returns false if stopped.
  bool SleepUntil(absl::Time deadline) const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithDeadline(absl::Condition(&stop_), deadline);
    return !stop_;
  }

 private:
  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::function<void()> cancel_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  // Set by the thread as its last act.
  bool exited_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_ ABSL_GUARDED_BY(mu_);
  std::thread::id thread_id_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tshare::client::internal

#endif  // TSHARE_CLIENT_INTERNAL_STREAM_THREAD_H_
