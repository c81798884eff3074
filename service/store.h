// The in-memory store behind Shares: keys with typed values and versions, one
// store-wide revision, a bounded history of changes for watches, and per-key
// waiters for WaitFor.
//
// Thread-safety: every method is safe to call from any thread. Reads take a
// shared lock; a write holds the exclusive lock only to check its preconditions
// and swap in state built beforehand. Callbacks (the ChangeListener, WaitFor
// callbacks) never run with a store lock held.
//
//   Store store(options);
//   tshare::v1::SetRequest set;
//   set.set_key("visits");
//   set.mutable_value()->set_int_value(1);
//   tshare::v1::SetResponse response;
//   absl::Status status = store.Set(set, &response);
//   // response.revision() == 1, response.version() == 1
#ifndef TSHARE_SERVICE_STORE_H_
#define TSHARE_SERVICE_STORE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "service/kv_map.h"
#include "service/options.h"
#include "service/stored_kv.h"
#include "tshare/v1/admin.pb.h"
#include "tshare/v1/shares.pb.h"
#include "tshare/v1/types.pb.h"

namespace tshare::service {

// One change of one key.
struct ChangeEvent {
  tshare::v1::Event::Type type = tshare::v1::Event::PUT;
  // PUT: the key's new state. DELETE: the key, version 0, mod_revision = the
  // deletion's revision, no value.
  KvPtr kv;
  // The key before the change; nullptr if it did not exist.
  KvPtr prev;
  // About the serialized size of kv and of prev (key and value bytes), to size
  // frames.
  size_t kv_bytes = 0;
  size_t prev_bytes = 0;
};

// Everything that changed at one revision: one event for a Set, Update or
// Delete of a key; one per changed key for a Txn or a prefix Delete (in op
// order, prefix keys in key order).
struct Change {
  uint64_t revision = 0;
  absl::InlinedVector<ChangeEvent, 1> events;
};
using ChangePtr = std::shared_ptr<const Change>;

// Receives every change. See Store::SetChangeListener.
class ChangeListener {
 public:
  virtual ~ChangeListener() = default;
  // Called once per change, in revision order, never concurrently with itself,
  // on the thread of some writer, with no store lock held. Must not block.
  virtual void OnChange(const ChangePtr& change) = 0;
};

// What a watch looks at: exact keys and key prefixes ("" = every key).
struct KeyTargets {
  std::vector<std::string> keys;
  std::vector<std::string> prefixes;

  bool Matches(absl::string_view key) const;
};

// What a watch reads when it starts, all at one revision (Store::ReadForWatch).
struct WatchStartRead {
  // The store's revision at the read: the watch continues with the changes
  // after it.
  uint64_t revision = 0;
  // Changes up to this revision are no longer in the history.
  uint64_t compacted_revision = 0;
  // The start revision is no longer in the history and no snapshot was asked
  // for.
  bool compacted = false;
  // The kept changes from the start revision through `revision` (not filtered
  // by target).
  std::vector<ChangePtr> changes;
  // With a snapshot: every matching key as of `revision`, in key order.
  bool has_snapshot = false;
  std::vector<KvPtr> snapshot;
};

class Store final {
 public:
  // Called once, when the key's version first exceeds the waiter's
  // after_version, with the key's new state. Runs on the writer's thread with
  // no store lock held; must not block.
  using WaitCallback =
      absl::AnyInvocable<void(const tshare::v1::GetResponse&) &&>;

  // Uses the limits of `options` (max_key_bytes, max_value_bytes, max_txn_ops,
  // max_page_size, history). Picks a new random store_id.
  explicit Store(const ServerOptions& options);
  ~Store();

  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;
  Store(Store&&) = delete;
  Store& operator=(Store&&) = delete;

  // 32 lower-case hex digits (128 random bits), new for every Store.
  const std::string& store_id() const { return store_id_; }
  // The revision of the latest change; 0 before the first.
  uint64_t revision() const {
    return revision_.load(std::memory_order_acquire);
  }
  // The oldest revision still in the history; 0 if the history is empty.
  uint64_t OldestRevision() const ABSL_LOCKS_EXCLUDED(mu_);
  // Every change up to this revision has left the history (0: none has).
  uint64_t CompactedRevision() const ABSL_LOCKS_EXCLUDED(mu_);

  // The Shares operations. Each validates its request against the limits before
  // touching any state, fills *response only on success and sets revision and
  // store_id there.
  absl::Status Get(const tshare::v1::GetRequest& request,
                   tshare::v1::GetResponse* response) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Set(const tshare::v1::SetRequest& request,
                   tshare::v1::SetResponse* response) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Update(const tshare::v1::UpdateRequest& request,
                      tshare::v1::UpdateResponse* response)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Delete(const tshare::v1::DeleteRequest& request,
                      tshare::v1::DeleteResponse* response)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status List(const tshare::v1::ListRequest& request,
                    tshare::v1::ListResponse* response)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Txn(const tshare::v1::TxnRequest& request,
                   tshare::v1::TxnResponse* response) ABSL_LOCKS_EXCLUDED(mu_);

  // WaitFor: if `key`'s version already exceeds `after_version`, fills *ready
  // and returns 0. Otherwise registers `on_ready` (which only a change of `key`
  // can fire) and returns an id for CancelWait. INVALID_ARGUMENT for a bad key.
  absl::StatusOr<uint64_t> WaitFor(absl::string_view key,
                                   uint64_t after_version,
                                   WaitCallback on_ready,
                                   tshare::v1::GetResponse* ready)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Unregisters a waiter. True if it was removed before firing; false if it has
  // fired (or is firing right now on another thread).
  bool CancelWait(absl::string_view key, uint64_t id) ABSL_LOCKS_EXCLUDED(mu_);
  // Waiters registered and not yet fired or cancelled.
  size_t waiter_count() const ABSL_LOCKS_EXCLUDED(mu_);

  // Trims the history to the newest options.history changes. The server's
  // compactor calls this periodically; writes also trim once the history
  // exceeds twice the limit.
  void Compact() ABSL_LOCKS_EXCLUDED(mu_);
  size_t history_size() const ABSL_LOCKS_EXCLUDED(mu_);

  // Reads, atomically, what a watch from `start_revision` (0: only future
  // changes) needs: the kept changes since then, or, if `snapshot` is true or
  // the start is compacted and `resync_if_compacted` is true, every key
  // matching `targets`.
  WatchStartRead ReadForWatch(uint64_t start_revision, bool snapshot,
                              bool resync_if_compacted,
                              const KeyTargets& targets) const
      ABSL_LOCKS_EXCLUDED(mu_);

  // Sets the one listener that receives every change from the next one on
  // (nullptr: none). Returns once no call to the previous listener is running.
  // Must not be called from the listener.
  void SetChangeListener(ChangeListener* listener)
      ABSL_LOCKS_EXCLUDED(publish_mu_);

  // Keys, bytes, revision, history and operation counters for Admin.Stats.
  tshare::v1::StoreStats Stats() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Waiter {
    uint64_t id;
    uint64_t after_version;
    WaitCallback on_ready;
  };
  // Callbacks and listener calls collected under mu_ and run after it is
  // released.
  struct Fired;
  class TxnRun;

  absl::Status ValidateKey(absl::string_view key,
                           absl::string_view field) const;
  absl::Status ValidateValueSize(const tshare::v1::Value& value,
                                 size_t* bytes) const;
  absl::Status ValidateTxn(const tshare::v1::TxnRequest& request) const;

  // Records `change` (revision already assigned) in the history, collects
  // waiters it fires.
  void CommitLocked(ChangePtr change, Fired* fired)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TrimHistoryLocked(size_t keep) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs fired waiters, then hands `change` to the listener in revision order.
  void AfterCommit(Fired* fired) ABSL_LOCKS_EXCLUDED(mu_);
  void Publish(ChangePtr change) ABSL_LOCKS_EXCLUDED(publish_mu_);

  const ServerOptions options_;
  const std::string store_id_;

  mutable absl::Mutex mu_;
  KvMap kvs_ ABSL_GUARDED_BY(mu_);
  uint64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // Written under mu_; read without it by revision().
  std::atomic<uint64_t> revision_{0};
  std::deque<ChangePtr> history_ ABSL_GUARDED_BY(mu_);
  uint64_t compacted_revision_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, std::vector<Waiter>> waiters_
      ABSL_GUARDED_BY(mu_);
  size_t waiter_count_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_waiter_id_ ABSL_GUARDED_BY(mu_) = 1;

  // Changes committed but not yet handed to the listener. One writer thread at
  // a time (publishing_) hands them over in revision order, calling the
  // listener without holding publish_mu_; the others only queue theirs.
  absl::Mutex publish_mu_;
  absl::btree_map<uint64_t, ChangePtr> unpublished_
      ABSL_GUARDED_BY(publish_mu_);
  uint64_t next_publish_ ABSL_GUARDED_BY(publish_mu_) = 1;
  bool publishing_ ABSL_GUARDED_BY(publish_mu_) = false;
  ChangeListener* listener_ ABSL_GUARDED_BY(publish_mu_) = nullptr;

  // Operation counters for Stats.
  mutable std::atomic<uint64_t> gets_{0};
  std::atomic<uint64_t> sets_{0};
  std::atomic<uint64_t> updates_{0};
  std::atomic<uint64_t> deletes_{0};
  std::atomic<uint64_t> txns_{0};
  std::atomic<uint64_t> lists_{0};
  std::atomic<uint64_t> wait_fors_{0};
};

}  // namespace tshare::service

#endif  // TSHARE_SERVICE_STORE_H_
