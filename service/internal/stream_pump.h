// StreamPump: the write side of one server stream that many threads feed (bus
// delivery, worker events, shutdown, the stream's own reactions).
//
// Thread-safety: Pump(), RequestFinish() and OnWritten() may be called from any
// thread. The pump guarantees that at most one StartWrite is in flight, that
// Finish is called exactly once and never while a write is in flight, and that
// no lock is held while it calls gRPC. Because gRPC keeps a server reactor
// alive until Finish has been called (and its OnDone has run), a derived class
// may use its reactor from StartWriteFrame() and FinishStream(): the pump calls
// those only while Finish has not been called yet.
#ifndef TSHARE_SERVICE_INTERNAL_STREAM_PUMP_H_
#define TSHARE_SERVICE_INTERNAL_STREAM_PUMP_H_

#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/impl/call_op_set.h"
#include "grpcpp/support/status.h"

namespace tshare::service::internal {

// A derived class owns the frames (its queue, guarded by mu_), and implements
// how to take the next one and how to hand it and the final status to its
// reactor.
//
//   class Outbox final : public StreamPump<v1::WorkerEvent> {
//     const v1::WorkerEvent* NextFrameLocked() override { ...pop into
//     current_... } void StartWriteFrame(const v1::WorkerEvent* f) override {
//     reactor_->StartWrite(f); } void FinishStream(const grpc::Status& s)
//     override { reactor_->Finish(s); }
//   };
//   // The reactor: OnWriteDone(ok) → outbox->OnWritten(ok); OnCancel() →
//   // outbox->RequestFinish(grpc::Status::CANCELLED).
template <typename Frame>
class StreamPump {
 public:
  StreamPump() = default;
  StreamPump(const StreamPump&) = delete;
  StreamPump& operator=(const StreamPump&) = delete;
  virtual ~StreamPump() = default;

  // Starts the next write, or the Finish once one was requested, unless a write
  // is in flight (its OnWritten pumps again) or the stream is finished.
  void Pump() ABSL_LOCKS_EXCLUDED(mu_) {
    const Frame* frame = nullptr;
    grpc::WriteOptions write_options;
    grpc::Status status;
    {
      absl::MutexLock lock(&mu_);
      if (writing_ || finished_) return;
      if (finish_status_.has_value()) {
        finished_ = true;
        status = *finish_status_;
        DiscardLocked();
      } else {
        frame = NextFrameLocked();
        if (frame == nullptr) return;
        writing_ = true;
        // gRPC holds a hinted frame until an unhinted one (or its own buffer
        // limit) sends everything: a stream that always has more
        // queued would otherwise hold its frames back for as long as that.
        if (MoreQueuedLocked() && held_frames_ < kMaxHeldFrames) {
          write_options.set_buffer_hint();
          ++held_frames_;
        } else {
          held_frames_ = 0;
        }
      }
    }
    if (frame != nullptr) {
      StartWriteFrame(frame, write_options);
    } else {
      FinishStream(status);
    }
  }

  // The stream is to end with `status` once the write in flight (if any) is
  // done; frames still queued are discarded. The first request wins.
  void RequestFinish(const grpc::Status& status) ABSL_LOCKS_EXCLUDED(mu_) {
    {
      absl::MutexLock lock(&mu_);
      if (!finish_status_.has_value()) finish_status_ = status;
    }
    Pump();
  }

  // The reactor's OnWriteDone. A failed write (the call was cancelled or
  // broken) ends the stream with CANCELLED unless another status was requested
  // first.
  void OnWritten(bool ok) ABSL_LOCKS_EXCLUDED(mu_) {
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      WriteDoneLocked();
      if (!ok && !finish_status_.has_value()) {
        finish_status_ =
            grpc::Status(grpc::StatusCode::CANCELLED, "the stream was broken");
      }
    }
    Pump();
  }

  // True once a Finish was requested (the stream takes no more frames).
  bool closing() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return finish_status_.has_value();
  }

 protected:
  // The next frame to write, or nullptr if none. The frame must stay valid and
  // unchanged until WriteDoneLocked().
  virtual const Frame* NextFrameLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) = 0;
  // The write of the frame NextFrameLocked() gave has completed (or failed).
  virtual void WriteDoneLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {}
  // The stream is finishing: drop whatever is queued.
  virtual void DiscardLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {}
  // True if another frame is ready behind the one NextFrameLocked() just
  // gave: that write then carries the buffer hint, so gRPC may send it
  // together with the next ones instead of a socket write each (at most
  // kMaxHeldFrames + 1 frames go out together).
  virtual bool MoreQueuedLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return false;
  }
  // Called with no lock held; the reactor is alive.
  virtual void StartWriteFrame(const Frame* frame,
                               grpc::WriteOptions options) = 0;
  virtual void FinishStream(const grpc::Status& status) = 0;

  bool finish_requested_locked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return finish_status_.has_value();
  }
  bool writing_locked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return writing_;
  }

  mutable absl::Mutex mu_;

  // At most this many frames in a row carry the buffer hint; the next one
  // sends them all.
  static constexpr int kMaxHeldFrames = 16;

 private:
  int held_frames_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> finish_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tshare::service::internal

#endif  // TSHARE_SERVICE_INTERNAL_STREAM_PUMP_H_
