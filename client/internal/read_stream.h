// ReadStream<Resp>: one server-streaming call (Shares.Watch, Bus.Subscribe)
// through gRPC's callback API, read by one consumer thread with a bounded
// buffer.
//
// gRPC's reactions (OnReadDone, OnDone) only move frames into the buffer and
// wake the consumer; they never run user code and never block. When the buffer
// holds `max_buffered` frames the reactor stops reading (so the server's flow
// control and overflow policy take over) and the consumer starts the next read
// after taking a frame. A hold taken before StartCall keeps the call alive
// while the consumer may still start a read; Finish() gives it back.
//
// Thread-safety: Start, Wait and Finish belong to one consumer thread; Cancel
// and HeadersReceived may be called from any thread. Owned by the consumer
// (through a shared_ptr it may share with a canceller), which must call Finish
// before dropping it; gRPC never holds a reference, so the object and its
// ClientContext are destroyed on the consumer's side, never in a reaction.
//
// That matters because gRPC runs reactions on its callback threads and joins
// those threads when the last channel using them goes away. The ClientContext
// holds a reference to its channel, so a reactor destroyed inside OnDone can
// destroy the channel there, and gRPC then joins the very thread it runs on
// and aborts. OnDone's last act is completing a promise it has moved out of
// the object; Finish waits on the promise's future.
#ifndef TSHARE_CLIENT_INTERNAL_READ_STREAM_H_
#define TSHARE_CLIENT_INTERNAL_READ_STREAM_H_

#include <cstddef>
#include <deque>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/future.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/client_callback.h"
#include "grpcpp/support/status.h"

namespace tshare::client::internal {

template <typename Resp>
class ReadStream final : public grpc::ClientReadReactor<Resp> {
 public:
  enum class Next { kFrame, kEnded, kIdle };

  explicit ReadStream(size_t max_buffered)
      : max_buffered_(max_buffered < 1 ? 1 : max_buffered) {}
  ReadStream(const ReadStream&) = delete;
  ReadStream& operator=(const ReadStream&) = delete;

  grpc::ClientContext& context() { return ctx_; }

  // `bind(ctx, reactor)` binds this reactor to a new call, e.g.
  // stub.async()->Watch(ctx, &request, reactor) (the request must outlive the
  // call). Then the first read and the call start.
  template <typename Bind>
  void Start(Bind&& bind) {
    bind(&ctx_, this);
    this->AddHold();
    {
      absl::MutexLock lock(&mu_);
      read_outstanding_ = true;
      last_activity_ = absl::Now();
    }
    this->StartRead(&incoming_);
    this->StartCall();
  }

  // Waits for the next frame (moved into *out), the end of the stream, or
  // `idle` passing with a read outstanding and nothing arriving (a dead
  // stream).
  Next Wait(Resp* out, absl::Duration idle) ABSL_LOCKS_EXCLUDED(mu_) {
    bool resume = false;
    {
      absl::MutexLock lock(&mu_);
      while (true) {
        if (!frames_.empty()) {
          *out = std::move(frames_.front());
          frames_.pop_front();
          if (!read_outstanding_ && !ended_) {
            read_outstanding_ = true;
            last_activity_ = absl::Now();
            resume = true;
          }
          break;
        }
        if (ended_) return Next::kEnded;
        // Nothing buffered and not ended: a read is outstanding.
        const absl::Time deadline = last_activity_ + idle;
        if (absl::Now() >= deadline) return Next::kIdle;
        mu_.AwaitWithDeadline(absl::Condition(this, &ReadStream::ReadyLocked),
                              deadline);
      }
    }
    if (resume) this->StartRead(&incoming_);
    return Next::kFrame;
  }

  // Cancels the call; Wait then returns the buffered frames and kEnded. Any
  // thread.
  void Cancel() { ctx_.TryCancel(); }

  // True once the server's response headers (or a frame) arrived: it accepted
  // the call.
  bool HeadersReceived() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return headers_;
  }
  bool WaitForHeaders(absl::Time deadline) const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithDeadline(
        absl::Condition(this, &ReadStream::HeadersOrEndLocked), deadline);
    return headers_;
  }

  // Cancels the call unless it ended, gives back the hold and waits for OnDone.
  // Returns the call's status; the trailing metadata is then readable through
  // context(). gRPC is done with this object when it returns.
  grpc::Status Finish() ABSL_LOCKS_EXCLUDED(mu_) {
    bool ended;
    {
      absl::MutexLock lock(&mu_);
      ended = ended_;
    }
    if (!ended) ctx_.TryCancel();
    this->RemoveHold();
    // Completed only by OnDone, always with a value.
    return *done_future_.Get();
  }

  void OnReadInitialMetadataDone(bool ok) override ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (ok) headers_ = true;
  }

  void OnReadDone(bool ok) override ABSL_LOCKS_EXCLUDED(mu_) {
    bool read_more = false;
    {
      absl::MutexLock lock(&mu_);
      if (!ok) {
        read_outstanding_ = false;
        ended_ = true;
        return;
      }
      headers_ = true;
      frames_.push_back(std::move(incoming_));
      incoming_.Clear();
      last_activity_ = absl::Now();
      read_more = frames_.size() < max_buffered_;
      read_outstanding_ = read_more;
    }
    if (read_more) this->StartRead(&incoming_);
  }

  void OnDone(const grpc::Status& status) override ABSL_LOCKS_EXCLUDED(mu_) {
    // Once the consumer sees the status it may destroy this object: `done`, on
    // this stack, is what is touched last.
    core::Promise<grpc::Status> done = std::move(done_);
    {
      absl::MutexLock lock(&mu_);
      ended_ = true;
    }
    done.SetValue(status);
  }

 private:
  bool ReadyLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !frames_.empty() || ended_;
  }
  bool HeadersOrEndLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return headers_ || ended_;
  }

  const size_t max_buffered_;
  grpc::ClientContext ctx_;
  // Written by gRPC while a read is outstanding; read_outstanding_ says who may
  // touch it.
  Resp incoming_;
  // Completed by OnDone, awaited by Finish.
  core::Promise<grpc::Status> done_;
  const core::Future<grpc::Status> done_future_ = done_.GetFuture();

  mutable absl::Mutex mu_;
  std::deque<Resp> frames_ ABSL_GUARDED_BY(mu_);
  bool read_outstanding_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  bool headers_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_activity_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tshare::client::internal

#endif  // TSHARE_CLIENT_INTERNAL_READ_STREAM_H_
