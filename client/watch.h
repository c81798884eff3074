// Watches (Client::Watch): every change of a key or of the keys under a prefix,
// delivered to a callback in revision order, exactly once, across lost
// connections and server restarts.
//
// Thread-safety: the callback of one watch runs on a thread the client owns for
// that watch, one update at a time, in order, never with a client lock held.
// WatchHandle's methods may be called from any thread, including from inside
// the callback; moving, assigning or destroying a handle must not race with
// other calls on the same handle object.
#ifndef TSHARE_CLIENT_WATCH_H_
#define TSHARE_CLIENT_WATCH_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "client/options.h"
#include "client/value.h"

namespace tshare::client {

namespace internal {
class WatchCore;
}  // namespace internal

struct WatchOptions {
  // Watch every key that starts with the Watch argument (an empty prefix: every
  // key) instead of that one key.
  bool prefix = false;
  // The first revision to deliver. 0: the changes after the store's revision at
  // the time of the Watch call. A revision older than the server's kept history
  // gets a RESYNC update.
  uint64_t start_revision = 0;
  // Begin with a RESYNC update holding every matching key, then the changes
  // after it (a get-then-watch with no gap). The snapshot is read when the
  // stream reaches the server, shortly after Watch returns. start_revision must
  // then be 0.
  bool snapshot = false;
  // Include each changed key's previous state in the events
  // (WatchEvent::prev_kv).
  bool prev_kv = false;
  // The server's flow control for this watch: what happens once `max_queue`
  // frames wait for this client (0 = the server's default queue).
  OverflowPolicy policy = OverflowPolicy::kDefault;
  uint32_t max_queue = 0;
  // The server sends a progress frame after this long without a frame; at least
  // 10 ms.
  absl::Duration progress_interval = absl::Seconds(5);
  // A stream that brings nothing for this long is taken for dead: the client
  // cancels it and reconnects. Zero means 3 × progress_interval.
  absl::Duration dead_after = absl::ZeroDuration();
  // Like etcd: a start_revision older than the kept history ends the watch (a
  // kEnded update with OUT_OF_RANGE) instead of a RESYNC.
  bool fail_on_compacted = false;
  // Frames the client buffers ahead of a slow callback before it stops reading
  // (then the server's queue and policy take over).
  size_t max_buffered_frames = 64;
};

// One change of a key.
struct WatchEvent {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  // kPut: the key's new state. kDelete: the key, no value, version 0,
  // mod_revision = the deletion's revision.
  KeyValue kv;
  // With WatchOptions::prev_kv: the key before this change (empty if it did not
  // exist).
  std::optional<KeyValue> prev_kv;

  // The revision of this change (the changes of one transaction share one).
  uint64_t revision() const { return kv.mod_revision; }
};

// What the callback receives.
struct WatchUpdate {
  enum class Kind {
    // `events` holds changes in revision order. It may be empty when the update
    // only reports
    // `loss`.
    kChanges,
    // `snapshot` holds every matching key as of `revision`; keys not in it do
    // not exist at
    // that revision. Changes from revision + 1 follow. Sent for
    // WatchOptions::snapshot, for a
    // start revision older than the kept history, and after the server started
    // over with a
    // new store (store_changed).
    kResync,
    // The watch ended for good and no update follows: `status` says why
    // (INVALID_ARGUMENT
    // for a request the server refuses, OUT_OF_RANGE with fail_on_compacted,
    // ...). A lost
    // connection never ends a watch: the client reconnects.
    kEnded,
  };
  Kind kind = Kind::kChanges;
  // kChanges: the revision of the last event; kResync: the snapshot's revision.
  uint64_t revision = 0;
  std::string store_id;
  std::vector<WatchEvent> events;
  std::vector<KeyValue> snapshot;
  // kResync only: the server's store is not the one this watch saw before (the
  // server restarted without its data), so revisions started over.
  bool store_changed = false;
  // Set when the server dropped or conflated changes of this watch since the
  // previous update (only with a reader slower than the server's queue; see
  // OverflowPolicy).
  std::optional<Loss> loss;
  // kEnded: why.
  absl::Status status;
};

// Runs on the watch's own thread. May call any client method, including Stop()
// of its own handle; it should return promptly, since the watch's next update
// waits for it. An exception it throws is caught and counted
// (WatchHandle::callback_exceptions).
using WatchCallback = absl::AnyInvocable<void(const WatchUpdate&)>;

// Owns one watch: destroying the handle stops the watch. Move-only.
//
//   absl::StatusOr<WatchHandle> watch = client->Watch("cfg/", [](const
//   WatchUpdate& u) {
//     for (const WatchEvent& e : u.events) Apply(e);
//   }, {.prefix = true});
//   ...
//   watch->Stop();  // no callback runs after this returns
class WatchHandle final {
 public:
  // An empty handle: active() is false, Stop() does nothing.
  WatchHandle() = default;
  ~WatchHandle() { Stop(); }

  WatchHandle(WatchHandle&& other) noexcept = default;
  // Stops the watch this handle held before taking `other`'s.
  WatchHandle& operator=(WatchHandle&& other) noexcept;
  WatchHandle(const WatchHandle&) = delete;
  WatchHandle& operator=(const WatchHandle&) = delete;

  // Ends the watch. When it returns, no callback of this watch runs any more,
  // except when it is called from inside the callback itself: then that
  // callback finishes and no other one follows. Idempotent.
  void Stop();

  // False once the watch stopped or ended (after a kEnded update).
  bool active() const;
  // The last revision the callback saw (events, snapshot, or a progress frame
  // of the server): a reconnect resumes after it.
  uint64_t last_revision() const;
  // The store the watch's revisions belong to.
  std::string store_id() const;
  // Streams opened after the first one (reconnects and resyncs).
  uint64_t reconnects() const;
  // Exceptions the callback threw. Each is caught and counted; the watch goes
  // on.
  uint64_t callback_exceptions() const;

 private:
  friend class Client;
  explicit WatchHandle(std::shared_ptr<internal::WatchCore> core)
      : core_(std::move(core)) {}

  std::shared_ptr<internal::WatchCore> core_;
};

}  // namespace tshare::client

#endif  // TSHARE_CLIENT_WATCH_H_
