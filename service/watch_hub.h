// Watches over the store: replay from history, RESYNC, live fan-out with
// per-watch flow control, and progress frames.
//
// Each watch is a Watcher with its own bounded queue. The hub receives every
// change from the store (in revision order) and appends it to the queues of the
// watches whose keys it touches (found through an index of exact keys and of
// prefixes, so a write costs in proportion to the watches it matches). A writer
// never waits for a reader: appending is O(1) and a full queue applies the
// watch's policy. Delivery is pulled by the watch's sink (the gRPC reactor) one
// frame at a time with Watcher::Next; the hub tells an idle sink that something
// is ready through WatchSink::OnWatchReady. One timer thread serves the
// progress frames of all watches.
//
// Exactly once, in revision order: a watch is registered under the hub's lock
// while the store's history or snapshot is read at one revision S; the replay
// covers changes up to S and the live path drops anything at or below S.
//
// Thread-safety: every method of WatchHub and Watcher is thread-safe, except
// that Watcher::Next must be called by one sink at a time (see WatchSink). No
// hub or watcher lock is held while a sink is called.
//
//   WatchHub hub(&store, options);
//   // sink: a WatchSink that sends frames
//   auto watcher = hub.Start(request, "ipv4:127.0.0.1:5555", &sink);
//   tshare::v1::WatchEvent frame;
//   absl::Status end;
//   while ((*watcher)->Next(&frame, &end) == Watcher::NextResult::kFrame) {
//     Send(frame);
//   }
//   // kIdle: wait for sink.OnWatchReady(), then call Next again.
//   (*watcher)->Detach();
#ifndef TSHARE_SERVICE_WATCH_HUB_H_
#define TSHARE_SERVICE_WATCH_HUB_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/options.h"
#include "service/store.h"
#include "tshare/v1/admin.pb.h"
#include "tshare/v1/shares.pb.h"

namespace tshare::service {

class WatchHub;

// The delivery side of one watch, implemented by the gRPC reactor.
//
// Protocol: the sink calls Watcher::Next right after WatchHub::Start, and again
// after each frame it was given has been sent. When Next returns kIdle, the
// watcher calls OnWatchReady exactly once when a frame (or the end) becomes
// ready; the sink then calls Next again. So Next is never called twice at once,
// and OnWatchReady never while the sink is sending.
class WatchSink {
 public:
  virtual ~WatchSink() = default;
  // Runs on a writer's thread, the hub's timer thread or the thread that closes
  // the watch, with no lock held. Must not block.
  virtual void OnWatchReady() = 0;
};

// One open watch. Created by WatchHub::Start; shared by the hub and the sink.
//
// Flow control: max_queue counts live events waiting (one per changed key per
// revision); the replay or RESYNC frames prepared at start are not counted.
// Once the queue is full, the policy acts on each new event: DROP_NEWEST drops
// it, DROP_OLDEST drops the oldest waiting event, CLOSE ends the watch (resume
// revision = last revision handed over completely + 1), and CONFLATE keeps
// only the newest waiting event of each key until the queue drains to half; in
// that mode the queue can exceed max_queue by the number of distinct keys
// waiting (at most the number of keys the watch matches).
class Watcher final : public std::enable_shared_from_this<Watcher> {
 public:
  enum class NextResult {
    // *frame holds the next frame to send.
    kFrame,
    // Nothing to send now; OnWatchReady will be called when there is.
    kIdle,
    // The watch ended with *status (OK never): finish the stream with it.
    // Terminal.
    kDone,
  };

  ~Watcher();
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;
  Watcher(Watcher&&) = delete;
  Watcher& operator=(Watcher&&) = delete;

  // Builds the next frame: the pending RESYNC or replay frames first, then
  // batched CHANGES, or a PROGRESS frame when due. Called only by the sink (see
  // WatchSink).
  NextResult Next(tshare::v1::WatchEvent* frame, absl::Status* status)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Ends the watch with `status` (not OK): pending frames are discarded and the
  // next call of Next returns kDone. No-op if already closed.
  void Close(absl::Status status) ABSL_LOCKS_EXCLUDED(mu_);

  // The sink is going away. Unregisters the watch; when Detach returns, no
  // OnWatchReady call is running and none will start. Must not be called from
  // OnWatchReady.
  void Detach() ABSL_LOCKS_EXCLUDED(mu_);

  uint64_t id() const { return id_; }
  // This watch as Admin.ListSubscriptions shows it; `head` is the store's
  // revision.
  tshare::v1::SubscriptionInfo Info(uint64_t head) const
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  friend class WatchHub;

  // A frame prepared at start: RESYNC_BEGIN / SNAPSHOT / RESYNC_END, or
  // replayed CHANGES.
  struct BacklogItem {
    tshare::v1::WatchEvent::Kind kind;
    uint64_t revision = 0;
    std::vector<KvPtr> kvs;  // SNAPSHOT
    ChangePtr change;        // CHANGES: change->events[index]
    uint32_t index = 0;
  };
  // One live event: change->events[index].
  struct LiveItem {
    ChangePtr change;
    uint32_t index = 0;
    bool dead = false;  // conflated away
    const ChangeEvent& event() const { return change->events[index]; }
  };
  Watcher(WatchHub* hub, uint64_t id, std::string peer, KeyTargets targets,
          std::vector<std::string> target_names, size_t max_queue,
          tshare::v1::OverflowPolicy policy, absl::Duration progress_interval,
          bool prev_kv, std::string store_id);

  // Appends the events of `change` selected by `indexes` (called by the hub in
  // revision order). Returns true if the sink must be told (call NotifySink
  // after unlocking the hub).
  bool Enqueue(const ChangePtr& change, const std::vector<uint32_t>& indexes)
      ABSL_LOCKS_EXCLUDED(mu_);
  void EnqueueLocked(const ChangePtr& change, uint32_t index)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EnterConflatingLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PopLiveFrontLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CloseLocked(absl::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // If the sink waits for news and there is some, marks it busy and returns
  // true.
  bool TakeNotifyLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NotifySink() ABSL_LOCKS_EXCLUDED(mu_);
  // Drops dead (conflated) items from live_ once they outnumber the live ones.
  void CompactLiveLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The revision up to which this watch has handed every change to its sink;
  // `published` is the hub's published revision read before taking mu_.
  uint64_t DeliveredRevisionLocked(uint64_t published) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool IdleLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Timer: returns when the progress check should run next; sets *notify.
  absl::Time CheckProgress(absl::Time now, bool* notify)
      ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t ResumeRevisionLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  WatchHub* const hub_;
  const uint64_t id_;
  const std::string peer_;
  const KeyTargets targets_;
  // "key" and "prefix*" as Admin shows them.
  const std::vector<std::string> target_names_;
  const size_t max_queue_;
  const tshare::v1::OverflowPolicy policy_;
  const absl::Duration progress_interval_;
  const bool prev_kv_;
  const std::string store_id_;

  mutable absl::Mutex mu_;
  WatchSink* sink_ ABSL_GUARDED_BY(mu_) = nullptr;
  // The sink got kIdle and waits for OnWatchReady.
  bool sink_waiting_ ABSL_GUARDED_BY(mu_) = false;
  // OnWatchReady calls running now.
  int notifying_ ABSL_GUARDED_BY(mu_) = 0;
  // Live changes below this revision are already covered by the start read.
  uint64_t next_revision_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<BacklogItem> backlog_ ABSL_GUARDED_BY(mu_);
  std::deque<LiveItem> live_ ABSL_GUARDED_BY(mu_);
  size_t live_count_ ABSL_GUARDED_BY(mu_) = 0;  // live_ minus dead items
  // CONFLATE after the queue filled up: at most one pending event per key,
  // found here by its sequence number (position = seq - live_front_seq_), until
  // the queue drains to half.
  bool conflating_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<absl::string_view, uint64_t> pending_by_key_
      ABSL_GUARDED_BY(mu_);
  uint64_t live_front_seq_ ABSL_GUARDED_BY(mu_) = 0;
  // Loss since the last frame and since the start.
  uint64_t dropped_since_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t conflated_since_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t total_dropped_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t total_conflated_ ABSL_GUARDED_BY(mu_) = 0;
  // Events handed to the sink, and the last revision handed over completely.
  uint64_t delivered_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t delivered_revision_ ABSL_GUARDED_BY(mu_) = 0;
  bool progress_pending_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_frame_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status close_status_ ABSL_GUARDED_BY(mu_);
};

class WatchHub final : private ChangeListener {
 public:
  // Becomes `store`'s change listener and starts the progress timer thread.
  // `store` must outlive the hub, and the hub every Watcher it made.
  WatchHub(Store* store, const ServerOptions& options);
  ~WatchHub() override;

  WatchHub(const WatchHub&) = delete;
  WatchHub& operator=(const WatchHub&) = delete;
  WatchHub(WatchHub&&) = delete;
  WatchHub& operator=(WatchHub&&) = delete;

  // Validates `request` (targets, --max_watches_per_stream, max_queue,
  // progress_interval, enums), reads the start state and registers the watch.
  // Errors: INVALID_ARGUMENT, OUT_OF_RANGE (start_revision compacted with
  // on_compacted = FAIL; payload "tshare-oldest-revision"), UNAVAILABLE after
  // Shutdown. `peer` is shown by Admin. The sink must call Next at once and
  // Detach before it goes away.
  absl::StatusOr<std::shared_ptr<Watcher>> Start(
      const tshare::v1::WatchRequest& request, absl::string_view peer,
      WatchSink* sink) ABSL_LOCKS_EXCLUDED(mu_);

  // Ends every open watch with UNAVAILABLE "server is shutting down"; Start
  // refuses after.
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

  // Every open watch (Admin.ListSubscriptions), by id.
  std::vector<tshare::v1::SubscriptionInfo> ListWatches() const
      ABSL_LOCKS_EXCLUDED(mu_);
  tshare::v1::WatchStats Stats() const ABSL_LOCKS_EXCLUDED(mu_);
  size_t watch_count() const ABSL_LOCKS_EXCLUDED(mu_);
  // Every change up to this revision has been handed to the watches' queues.
  uint64_t published_revision() const {
    return published_revision_.load(std::memory_order_acquire);
  }

  // The smallest progress_interval a watch may ask for.
  static constexpr absl::Duration kMinProgressInterval = absl::Milliseconds(10);

 private:
  friend class Watcher;
  struct TimerEntry {
    absl::Time due;
    std::weak_ptr<Watcher> watcher;
    bool operator>(const TimerEntry& other) const { return due > other.due; }
  };

  void OnChange(const ChangePtr& change) override ABSL_LOCKS_EXCLUDED(mu_);
  void Unregister(Watcher* watcher) ABSL_LOCKS_EXCLUDED(mu_);
  void UnregisterLocked(Watcher* watcher) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ScheduleProgress(absl::Time due, std::weak_ptr<Watcher> watcher)
      ABSL_LOCKS_EXCLUDED(timer_mu_);
  void TimerLoop() ABSL_LOCKS_EXCLUDED(timer_mu_);

  Store* const store_;
  const ServerOptions options_;

  mutable absl::Mutex mu_ ABSL_ACQUIRED_BEFORE(timer_mu_);
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint64_t, std::shared_ptr<Watcher>> watchers_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::vector<Watcher*>> by_key_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::vector<Watcher*>> by_prefix_
      ABSL_GUARDED_BY(mu_);
  // Distinct lengths of the indexed prefixes and how many prefixes have each: a
  // key is matched by looking up its leading bytes of each such length.
  std::map<size_t, size_t> prefix_lengths_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> published_revision_{0};

  // Counters for Stats (also updated by Watchers).
  std::atomic<uint64_t> events_sent_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> conflated_{0};
  std::atomic<uint64_t> resyncs_{0};

  absl::Mutex timer_mu_;
  std::vector<TimerEntry> timers_
      ABSL_GUARDED_BY(timer_mu_);  // a min-heap on due
  bool timer_wake_ ABSL_GUARDED_BY(timer_mu_) = false;
  bool timer_stop_ ABSL_GUARDED_BY(timer_mu_) = false;
  std::thread timer_thread_;
};

}  // namespace tshare::service

#endif  // TSHARE_SERVICE_WATCH_HUB_H_
