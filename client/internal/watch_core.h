// WatchCore: the state and the thread of one watch (see watch.cc for how it
// resumes).
//
// Thread-safety: Stop and the accessors may be called from any thread; Init and
// Start once, by the creating thread, before anything else. The loop and the
// callback run on the watch's own thread.
#ifndef TSHARE_CLIENT_INTERNAL_WATCH_CORE_H_
#define TSHARE_CLIENT_INTERNAL_WATCH_CORE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/internal/connection.h"
#include "client/internal/read_stream.h"
#include "client/internal/stream_thread.h"
#include "client/watch.h"
#include "tshare/v1/shares.pb.h"

namespace tshare::client::internal {

// True for stream statuses that no reconnect can fix (a request the server
// refuses).
bool IsTerminalStreamError(absl::StatusCode code);

class WatchCore final : public std::enable_shared_from_this<WatchCore> {
 public:
  WatchCore(std::shared_ptr<const Connection> conn, std::string target,
            WatchOptions options, WatchCallback callback);
  WatchCore(const WatchCore&) = delete;
  WatchCore& operator=(const WatchCore&) = delete;

  // INVALID_ARGUMENT for options no server would take.
  static absl::Status Validate(const WatchOptions& options, bool has_callback);

  // Learns the store's identity and revision, within `deadline`.
  absl::Status Init(absl::Time deadline) ABSL_LOCKS_EXCLUDED(mu_);
  // Starts the watch's thread.
  void Start();
  // See WatchHandle::Stop.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  bool active() const ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t last_revision() const ABSL_LOCKS_EXCLUDED(mu_);
  std::string store_id() const ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t reconnects() const ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t callback_exceptions() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Probe {
    std::string store_id;
    uint64_t revision = 0;
  };
  enum class PumpEnd { kStreamEnded, kDead, kStoreChanged, kStopped };

  absl::StatusOr<Probe> ProbeStore(absl::Time deadline) const;
  // The next stream's request; *floor is the lowest revision it may deliver.
  v1::WatchRequest MakeRequest(uint64_t* floor) const ABSL_LOCKS_EXCLUDED(mu_);
  void Run();
  // Delivers the frames of one stream until it ends.
  PumpEnd Pump(ReadStream<v1::WatchEvent>& stream,
               const std::string& expected_store, uint64_t floor,
               bool* got_frame) ABSL_LOCKS_EXCLUDED(mu_);
  static absl::StatusOr<WatchEvent> ConvertEvent(const v1::Event& event);
  // Runs the callback unless stopped; false if the watch is stopped (now or
  // during it).
  bool Deliver(const WatchUpdate& update) ABSL_LOCKS_EXCLUDED(mu_);
  // Ends the watch for good with a kEnded update.
  void End(absl::Status status) ABSL_LOCKS_EXCLUDED(mu_);

  const std::shared_ptr<const Connection> conn_;
  const std::string target_;
  const WatchOptions options_;
  const absl::Duration dead_after_;
  // Called only on the watch's thread.
  WatchCallback callback_;
  StreamThread thread_;

  mutable absl::Mutex mu_;
  bool active_ ABSL_GUARDED_BY(mu_) = true;
  // The store the delivered revisions belong to.
  std::string store_id_ ABSL_GUARDED_BY(mu_);
  // The highest revision delivered (or known to hold nothing for this watch).
  uint64_t last_revision_ ABSL_GUARDED_BY(mu_) = 0;
  // Keys whose events at last_revision_ were delivered; empty when
  // last_revision_ was delivered whole (progress, snapshot, start).
  absl::flat_hash_set<std::string> keys_at_last_ ABSL_GUARDED_BY(mu_);
  // The next stream must start with a snapshot (asked for, or the store
  // changed), and whether that is because the store changed.
  bool need_snapshot_ ABSL_GUARDED_BY(mu_) = false;
  bool store_changed_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t reconnects_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t callback_exceptions_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace tshare::client::internal

#endif  // TSHARE_CLIENT_INTERNAL_WATCH_CORE_H_
