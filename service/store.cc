#include "service/store.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/random/random.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "service/errors.h"
#include "service/value_ops.h"

namespace tshare::service {
namespace {

using tshare::v1::Event;
using tshare::v1::KeyValue;

constexpr uint32_t kDefaultPageSize = 100;
// Format tag of page tokens: a token is web-safe base64 of the tag and the
// page's last key.
constexpr absl::string_view kPageTokenTag = "tshare.list.1:";
// Update computes the new value outside the lock and commits it if the key did
// not change meanwhile; after this many lost races it computes under the lock.
constexpr int kOptimisticAttempts = 3;

std::string NewStoreId() {
  absl::BitGen gen;
  return absl::StrFormat("%016x%016x", absl::Uniform<uint64_t>(gen),
                         absl::Uniform<uint64_t>(gen));
}

void FillGet(const StoredKv& kv, uint64_t revision, const std::string& store_id,
             tshare::v1::GetResponse* response) {
  kv.CopyValueTo(response->mutable_value());
  response->set_version(kv.version());
  response->set_create_revision(kv.create_revision());
  response->set_mod_revision(kv.mod_revision());
  response->set_revision(revision);
  response->set_store_id(store_id);
}

// Fills in the version and revisions of a new state of a key whose previous
// state is `prev` (nullptr: none).
void StampPut(StoredKv* kv, const KvPtr& prev, uint64_t revision) {
  kv->set_version(prev == nullptr ? 1 : prev->version() + 1);
  kv->set_create_revision(prev == nullptr ? revision : prev->create_revision());
  kv->set_mod_revision(revision);
}

std::shared_ptr<StoredKv> NewPut(absl::string_view key,
                                 const tshare::v1::Value& value,
                                 const KvPtr& prev, uint64_t revision) {
  auto kv = std::make_shared<StoredKv>(key, value);
  StampPut(kv.get(), prev, revision);
  return kv;
}

KvPtr NewDeletion(absl::string_view key, uint64_t revision) {
  auto kv = std::make_shared<StoredKv>(key);
  kv->set_mod_revision(revision);
  return kv;
}

absl::Status CheckVersion(absl::string_view key, bool has_if_version,
                          uint64_t if_version, const KvPtr& current) {
  const uint64_t have = current == nullptr ? 0 : current->version();
  if (has_if_version && if_version != have)
    return VersionMismatch(key, if_version, have);
  return absl::OkStatus();
}

bool ValidOperator(int op) { return tshare::v1::Compare::Operator_IsValid(op); }

}  // namespace

bool KeyTargets::Matches(absl::string_view key) const {
  for (const std::string& k : keys) {
    if (k == key) return true;
  }
  for (const std::string& p : prefixes) {
    if (absl::StartsWith(key, p)) return true;
  }
  return false;
}

// Waiters a change fires and the change to publish, gathered under mu_ and run
// after.
struct Store::Fired {
  ChangePtr change;
  std::vector<std::pair<WaitCallback, KvPtr>> waiters;
};

Store::Store(const ServerOptions& options)
    : options_(options), store_id_(NewStoreId()) {}

Store::~Store() = default;

uint64_t Store::OldestRevision() const {
  absl::ReaderMutexLock l(&mu_);
  return history_.empty() ? 0 : history_.front()->revision;
}

uint64_t Store::CompactedRevision() const {
  absl::ReaderMutexLock l(&mu_);
  return compacted_revision_;
}

size_t Store::history_size() const {
  absl::ReaderMutexLock l(&mu_);
  return history_.size();
}

size_t Store::waiter_count() const {
  absl::ReaderMutexLock l(&mu_);
  return waiter_count_;
}

absl::Status Store::ValidateKey(absl::string_view key,
                                absl::string_view field) const {
  if (key.empty()) return KeyEmpty(field);
  if (key.size() > options_.max_key_bytes) {
    return KeyTooLong(key.size(), options_.max_key_bytes);
  }
  return absl::OkStatus();
}

absl::Status Store::ValidateValueSize(const tshare::v1::Value& value,
                                      size_t* bytes) const {
  *bytes = ValueBytes(value);
  if (*bytes > options_.max_value_bytes) {
    return ValueTooLarge(*bytes, options_.max_value_bytes);
  }
  return absl::OkStatus();
}

// --- Commit and publication ---

void Store::CommitLocked(ChangePtr change, Fired* fired) {
  revision_.store(change->revision, std::memory_order_release);
  if (!waiters_.empty()) {
    for (const ChangeEvent& event : change->events) {
      if (event.type != Event::PUT) continue;
      auto it = waiters_.find(event.kv->key());
      if (it == waiters_.end()) continue;
      std::vector<Waiter>& list = it->second;
      auto keep =
          std::partition(list.begin(), list.end(), [&event](const Waiter& w) {
            return event.kv->version() <= w.after_version;
          });
      for (auto w = keep; w != list.end(); ++w) {
        fired->waiters.emplace_back(std::move(w->on_ready), event.kv);
      }
      waiter_count_ -= static_cast<size_t>(list.end() - keep);
      list.erase(keep, list.end());
      if (list.empty()) waiters_.erase(it);
    }
  }
  history_.push_back(change);
  // A safety net for a store whose compactor does not run: trimming in bulk
  // keeps the cost per write O(1) amortized.
  if (history_.size() > 2 * options_.history + 1024)
    TrimHistoryLocked(options_.history);
  fired->change = std::move(change);
}

void Store::TrimHistoryLocked(size_t keep) {
  while (history_.size() > keep) {
    compacted_revision_ = history_.front()->revision;
    history_.pop_front();
  }
}

void Store::AfterCommit(Fired* fired) {
  if (!fired->waiters.empty()) {
    tshare::v1::GetResponse response;
    const StoredKv* filled = nullptr;
    for (auto& [callback, kv] : fired->waiters) {
      if (filled != kv.get()) {
        response.Clear();
        FillGet(*kv, fired->change->revision, store_id_, &response);
        filled = kv.get();
      }
      std::move(callback)(response);
    }
  }
  if (fired->change != nullptr) Publish(std::move(fired->change));
}

void Store::Publish(ChangePtr change) {
  ChangePtr next;
  ChangeListener* listener = nullptr;
  {
    absl::MutexLock l(&publish_mu_);
    if (publishing_ || change->revision != next_publish_) {
      // The thread publishing now, or the one that holds the revision before
      // this one, will hand it over.
      const uint64_t revision = change->revision;
      unpublished_.emplace(revision, std::move(change));
      return;
    }
    publishing_ = true;
    next = std::move(change);
    ++next_publish_;
    listener = listener_;
  }
  while (true) {
    if (listener != nullptr) listener->OnChange(next);
    absl::MutexLock l(&publish_mu_);
    auto it = unpublished_.begin();
    if (it == unpublished_.end() || it->first != next_publish_) {
      publishing_ = false;
      return;
    }
    next = std::move(it->second);
    unpublished_.erase(it);
    ++next_publish_;
    listener = listener_;
  }
}

void Store::SetChangeListener(ChangeListener* listener) {
  absl::MutexLock l(&publish_mu_);
  listener_ = listener;
  // A publisher may be calling the previous listener: wait until it is done.
  publish_mu_.Await(absl::Condition(
      +[](bool* publishing) { return !*publishing; }, &publishing_));
}

// --- Get / Set / Update / Delete / List ---

absl::Status Store::Get(const tshare::v1::GetRequest& request,
                        tshare::v1::GetResponse* response) {
  gets_.fetch_add(1, std::memory_order_relaxed);
  absl::Status s = ValidateKey(request.key(), "key");
  if (!s.ok()) return s;
  KvPtr kv;
  uint64_t revision = 0;
  {
    absl::ReaderMutexLock l(&mu_);
    if (const KvSlot* slot = kvs_.Find(request.key())) kv = slot->kv;
    revision = revision_.load(std::memory_order_relaxed);
  }
  if (kv == nullptr) return KeyNotFound(request.key());
  FillGet(*kv, revision, store_id_, response);
  return absl::OkStatus();
}

absl::Status Store::Set(const tshare::v1::SetRequest& request,
                        tshare::v1::SetResponse* response) {
  sets_.fetch_add(1, std::memory_order_relaxed);
  absl::Status s = ValidateKey(request.key(), "key");
  if (!s.ok()) return s;
  s = ValidateValue(request.value(), "value");
  if (!s.ok()) return s;
  size_t value_bytes = 0;
  s = ValidateValueSize(request.value(), &value_bytes);
  if (!s.ok()) return s;

  // Built outside the lock; only versions and revisions are filled in under it.
  auto kv = std::make_shared<StoredKv>(request.key(), request.value());
  auto change = std::make_shared<Change>();
  change->events.resize(1);
  const size_t bytes = request.key().size() + value_bytes;

  Fired fired;
  bool created = false;
  {
    absl::MutexLock l(&mu_);
    const KvSlot* slot = kvs_.Find(request.key());
    KvPtr prev = slot == nullptr ? nullptr : slot->kv;
    s = CheckVersion(request.key(), request.has_if_version(),
                     request.if_version(), prev);
    if (!s.ok()) return s;
    const uint64_t revision = revision_.load(std::memory_order_relaxed) + 1;
    StampPut(kv.get(), prev, revision);
    created = prev == nullptr;
    const size_t prev_bytes = created ? 0 : slot->bytes;
    if (created) {
      kvs_.Put(kv, bytes);
    } else {
      bytes_ -= slot->bytes;
      slot->kv = kv;
      slot->bytes = bytes;
    }
    bytes_ += bytes;
    change->revision = revision;
    change->events[0] =
        ChangeEvent{Event::PUT, kv, std::move(prev), bytes, prev_bytes};
    CommitLocked(std::move(change), &fired);
  }
  response->set_version(kv->version());
  response->set_revision(kv->mod_revision());
  response->set_store_id(store_id_);
  response->set_created(created);
  AfterCommit(&fired);
  return absl::OkStatus();
}

absl::Status Store::Update(const tshare::v1::UpdateRequest& request,
                           tshare::v1::UpdateResponse* response) {
  updates_.fetch_add(1, std::memory_order_relaxed);
  absl::Status s = ValidateKey(request.key(), "key");
  if (!s.ok()) return s;
  s = ValidateUpdate(request);
  if (!s.ok()) return s;

  // Everything the op decides from the current state, without changing
  // anything.
  struct Prepared {
    OpResult result;
    size_t value_bytes = 0;
  };
  auto prepare = [&](const KvPtr& current) -> absl::StatusOr<Prepared> {
    absl::Status st = CheckVersion(request.key(), request.has_if_version(),
                                   request.if_version(), current);
    if (!st.ok()) return st;
    tshare::v1::Value current_value;
    if (current != nullptr) current->CopyValueTo(&current_value);
    absl::StatusOr<OpResult> result =
        ApplyUpdate(request, current == nullptr ? nullptr : &current_value);
    if (!result.ok()) return result.status();
    Prepared prepared{*std::move(result), 0};
    if (prepared.result.changed) {
      st = ValidateValueSize(prepared.result.value, &prepared.value_bytes);
      if (!st.ok()) return st;
    }
    return prepared;
  };
  auto unchanged = [&](const KvPtr& current, uint64_t revision) {
    current->CopyValueTo(response->mutable_value());
    response->set_version(current->version());
    response->set_revision(revision);
    response->set_store_id(store_id_);
    response->set_changed(false);
    return absl::OkStatus();
  };

  for (int attempt = 0;; ++attempt) {
    const bool optimistic = attempt < kOptimisticAttempts;
    KvPtr current;
    uint64_t read_revision = 0;
    absl::StatusOr<Prepared> prepared;
    std::shared_ptr<StoredKv> kv;
    if (optimistic) {
      {
        absl::ReaderMutexLock l(&mu_);
        if (const KvSlot* slot = kvs_.Find(request.key())) current = slot->kv;
        read_revision = revision_.load(std::memory_order_relaxed);
      }
      prepared = prepare(current);
      if (!prepared.ok()) return prepared.status();
      if (!prepared->result.changed) return unchanged(current, read_revision);
      // Serialized outside the lock; only versions and revisions are filled
      // in under it.
      kv = std::make_shared<StoredKv>(request.key(), prepared->result.value);
    }

    auto kv_holder = std::make_shared<Change>();
    kv_holder->events.resize(1);
    Fired fired;
    bool created = false;
    {
      absl::MutexLock l(&mu_);
      const KvSlot* slot = kvs_.Find(request.key());
      KvPtr now = slot == nullptr ? nullptr : slot->kv;
      if (optimistic && now != current)
        continue;  // changed meanwhile: read again
      if (!optimistic) {
        current = std::move(now);
        prepared = prepare(current);
        if (!prepared.ok()) return prepared.status();
        if (!prepared->result.changed) {
          return unchanged(current, revision_.load(std::memory_order_relaxed));
        }
        kv = std::make_shared<StoredKv>(request.key(), prepared->result.value);
      }
      const uint64_t revision = revision_.load(std::memory_order_relaxed) + 1;
      StampPut(kv.get(), current, revision);
      const size_t bytes = request.key().size() + prepared->value_bytes;
      created = current == nullptr;
      const size_t prev_bytes = created ? 0 : slot->bytes;
      if (created) {
        kvs_.Put(kv, bytes);
      } else {
        bytes_ -= slot->bytes;
        slot->kv = kv;
        slot->bytes = bytes;
      }
      bytes_ += bytes;
      kv_holder->revision = revision;
      kv_holder->events[0] =
          ChangeEvent{Event::PUT, kv, current, bytes, prev_bytes};
      CommitLocked(std::move(kv_holder), &fired);
    }
    *response->mutable_value() = std::move(prepared->result.value);
    response->set_version(kv->version());
    response->set_revision(kv->mod_revision());
    response->set_store_id(store_id_);
    response->set_changed(true);
    AfterCommit(&fired);
    return absl::OkStatus();
  }
}

absl::Status Store::Delete(const tshare::v1::DeleteRequest& request,
                           tshare::v1::DeleteResponse* response) {
  deletes_.fetch_add(1, std::memory_order_relaxed);
  const bool by_key = !request.key().empty();
  const bool by_prefix = !request.prefix().empty();
  if (by_key && by_prefix) return DeleteTargetAmbiguous();
  if (!by_key && !by_prefix) return DeleteTargetMissing();
  if (by_prefix && request.has_if_version()) return DeletePrefixWithVersion();
  absl::Status s = ValidateKey(by_key ? request.key() : request.prefix(),
                               by_key ? "key" : "prefix");
  if (!s.ok()) return s;

  Fired fired;
  uint64_t deleted = 0;
  uint64_t revision = 0;
  std::vector<KvPtr> removed;  // freed after the lock is released
  {
    absl::MutexLock l(&mu_);
    revision = revision_.load(std::memory_order_relaxed);
    const uint64_t next = revision + 1;
    auto change = std::make_shared<Change>();
    change->revision = next;
    if (by_key) {
      const KvSlot* slot = kvs_.Find(request.key());
      KvPtr current = slot == nullptr ? nullptr : slot->kv;
      s = CheckVersion(request.key(), request.has_if_version(),
                       request.if_version(), current);
      if (!s.ok()) return s;
      if (current != nullptr) {
        change->events.push_back(
            ChangeEvent{Event::DELETE, NewDeletion(request.key(), next),
                        current, request.key().size(), slot->bytes});
        bytes_ -= slot->bytes;
        kvs_.Erase(slot);
      }
    } else {
      std::vector<const KvSlot*> doomed;
      for (auto it = kvs_.lower_bound(request.prefix());
           it != kvs_.end() &&
           absl::StartsWith((*it)->kv->key(), request.prefix());
           ++it) {
        const KvSlot* slot = *it;
        const absl::string_view key = slot->kv->key();
        change->events.push_back(ChangeEvent{Event::DELETE,
                                             NewDeletion(key, next), slot->kv,
                                             key.size(), slot->bytes});
        bytes_ -= slot->bytes;
        doomed.push_back(slot);
      }
      for (const KvSlot* slot : doomed) kvs_.Erase(slot);
    }
    deleted = change->events.size();
    if (deleted > 0) {
      revision = next;
      CommitLocked(std::move(change), &fired);
    }
  }
  response->set_deleted(deleted);
  response->set_revision(revision);
  response->set_store_id(store_id_);
  AfterCommit(&fired);
  return absl::OkStatus();
}

absl::Status Store::List(const tshare::v1::ListRequest& request,
                         tshare::v1::ListResponse* response) {
  lists_.fetch_add(1, std::memory_order_relaxed);
  if (request.page_size() > options_.max_page_size) {
    return PageSizeTooLarge(request.page_size(), options_.max_page_size);
  }
  const size_t page_size =
      request.page_size() == 0
          ? std::min<size_t>(kDefaultPageSize, options_.max_page_size)
          : request.page_size();
  if (request.prefix().size() > options_.max_key_bytes) {
    return KeyTooLong(request.prefix().size(), options_.max_key_bytes);
  }
  std::string after;  // the previous page's last key
  const bool resume = !request.page_token().empty();
  if (resume) {
    std::string decoded;
    if (!absl::WebSafeBase64Unescape(request.page_token(), &decoded)) {
      return PageTokenInvalid("not base64");
    }
    if (!absl::StartsWith(decoded, kPageTokenTag)) {
      return PageTokenInvalid("not a List page token");
    }
    after = decoded.substr(kPageTokenTag.size());
    if (!absl::StartsWith(after, request.prefix())) {
      return PageTokenInvalid("it belongs to a List with another prefix");
    }
  }

  std::vector<KvPtr> page;
  page.reserve(std::min<size_t>(page_size, 1024));
  bool more = false;
  uint64_t revision = 0;
  {
    absl::ReaderMutexLock l(&mu_);
    auto it =
        resume ? kvs_.upper_bound(after) : kvs_.lower_bound(request.prefix());
    for (; it != kvs_.end() &&
           absl::StartsWith((*it)->kv->key(), request.prefix());
         ++it) {
      if (page.size() == page_size) {
        more = true;
        break;
      }
      page.push_back((*it)->kv);
    }
    revision = revision_.load(std::memory_order_relaxed);
  }
  response->mutable_kvs()->Reserve(static_cast<int>(page.size()));
  for (const KvPtr& kv : page) {
    KeyValue* out = response->add_kvs();
    if (request.keys_only()) {
      out->set_key(kv->key().data(), kv->key().size());
      out->set_version(kv->version());
      out->set_create_revision(kv->create_revision());
      out->set_mod_revision(kv->mod_revision());
    } else {
      kv->CopyTo(out);
    }
  }
  if (more) {
    response->set_next_page_token(absl::WebSafeBase64Escape(
        absl::StrCat(kPageTokenTag, page.back()->key())));
  }
  response->set_revision(revision);
  response->set_store_id(store_id_);
  return absl::OkStatus();
}

// --- Txn ---

absl::Status Store::ValidateTxn(const tshare::v1::TxnRequest& request) const {
  const size_t ops = static_cast<size_t>(
      std::max(request.success_size(), request.failure_size()));
  const size_t count = static_cast<size_t>(request.compares_size()) + ops;
  if (count > options_.max_txn_ops)
    return TooManyTxnOps(count, options_.max_txn_ops);

  for (int i = 0; i < request.compares_size(); ++i) {
    const tshare::v1::Compare& c = request.compares(i);
    const std::string field = absl::StrCat("compares[", i, "].key");
    absl::Status s = ValidateKey(c.key(), field);
    if (!s.ok()) return s;
    if (!ValidOperator(c.operator_())) {
      return EnumValueInvalid(absl::StrCat("compares[", i, "].operator"),
                              c.operator_());
    }
    const bool ordered = c.operator_() == tshare::v1::Compare::GREATER ||
                         c.operator_() == tshare::v1::Compare::LESS;
    const absl::string_view op_name =
        tshare::v1::Compare::Operator_Name(c.operator_());
    switch (c.target_case()) {
      case tshare::v1::Compare::TARGET_NOT_SET:
        return CompareTargetMissing(i);
      case tshare::v1::Compare::kExists:
        if (ordered) return CompareOperatorInvalid(i, "exists", op_name);
        break;
      case tshare::v1::Compare::kValue: {
        const std::string value_field = absl::StrCat("compares[", i, "].value");
        s = ValidateValue(c.value(), value_field);
        if (!s.ok()) return s;
        if (ordered && c.value().kind_case() != tshare::v1::Value::kIntValue &&
            c.value().kind_case() != tshare::v1::Value::kDoubleValue) {
          return OperandKindInvalid(absl::StrCat("compares[", i, "] ", op_name),
                                    KindName(c.value()),
                                    "int_value or double_value");
        }
        size_t bytes = 0;
        s = ValidateValueSize(c.value(), &bytes);
        if (!s.ok()) return s;
        break;
      }
      default:
        break;
    }
  }

  for (const bool success : {true, false}) {
    const auto& branch = success ? request.success() : request.failure();
    const absl::string_view branch_name = success ? "success" : "failure";
    std::vector<absl::string_view> changed_keys;
    std::vector<absl::string_view> deleted_prefixes;
    for (int i = 0; i < branch.size(); ++i) {
      const tshare::v1::TxnOp& op = branch[i];
      absl::Status s;
      switch (op.op_case()) {
        case tshare::v1::TxnOp::kGet:
          s = ValidateKey(op.get().key(), "get.key");
          break;
        case tshare::v1::TxnOp::kSet: {
          s = ValidateKey(op.set().key(), "set.key");
          if (s.ok()) s = ValidateValue(op.set().value(), "set.value");
          size_t bytes = 0;
          if (s.ok()) s = ValidateValueSize(op.set().value(), &bytes);
          changed_keys.push_back(op.set().key());
          break;
        }
        case tshare::v1::TxnOp::kUpdate:
          s = ValidateKey(op.update().key(), "update.key");
          if (s.ok()) s = ValidateUpdate(op.update());
          changed_keys.push_back(op.update().key());
          break;
        case tshare::v1::TxnOp::kDelete: {
          const tshare::v1::DeleteRequest& d = op.delete_();
          if (!d.key().empty() && !d.prefix().empty())
            return DeleteTargetAmbiguous();
          if (d.key().empty() && d.prefix().empty())
            return DeleteTargetMissing();
          if (!d.prefix().empty() && d.has_if_version())
            return DeletePrefixWithVersion();
          if (!d.key().empty()) {
            s = ValidateKey(d.key(), "delete.key");
            changed_keys.push_back(d.key());
          } else {
            s = ValidateKey(d.prefix(), "delete.prefix");
            deleted_prefixes.push_back(d.prefix());
          }
          break;
        }
        case tshare::v1::TxnOp::OP_NOT_SET:
          return TxnOpMissing(branch_name, i);
      }
      if (!s.ok()) return s;
    }
    absl::flat_hash_set<absl::string_view> seen;
    for (absl::string_view key : changed_keys) {
      if (!seen.insert(key).second) return TxnDuplicateKey(key);
      for (absl::string_view prefix : deleted_prefixes) {
        if (absl::StartsWith(key, prefix)) return TxnPrefixOverlap(prefix, key);
      }
    }
    for (size_t a = 0; a < deleted_prefixes.size(); ++a) {
      for (size_t b = 0; b < deleted_prefixes.size(); ++b) {
        if (a != b &&
            absl::StartsWith(deleted_prefixes[b], deleted_prefixes[a])) {
          return TxnPrefixOverlap(deleted_prefixes[a], deleted_prefixes[b]);
        }
      }
    }
  }
  return absl::OkStatus();
}

// Runs the ops of one Txn branch under the store's exclusive lock against an
// overlay, so that nothing changes unless every op succeeds. Every method runs
// with the store's mu_ held exclusively (asserted).
class Store::TxnRun {
 public:
  TxnRun(Store* store, uint64_t revision)
      : store_(store), revision_(revision) {}

  struct Entry {
    KvPtr kv;  // nullptr: absent (or deleted by this txn)
    size_t bytes = 0;
  };

  // The key's state as the txn sees it so far.
  Entry Find(const std::string& key) const {
    store_->mu_.AssertHeld();
    auto o = overlay_.find(key);
    if (o != overlay_.end()) return o->second;
    const KvSlot* slot = store_->kvs_.Find(key);
    if (slot == nullptr) return Entry{};
    return Entry{slot->kv, slot->bytes};
  }
  KvPtr Lookup(const std::string& key) const { return Find(key).kv; }

  absl::Status Run(const tshare::v1::TxnOp& op,
                   tshare::v1::TxnOpResult* result) {
    store_->mu_.AssertHeld();
    const std::string& id = store_->store_id_;
    switch (op.op_case()) {
      case tshare::v1::TxnOp::kGet: {
        KvPtr kv = Lookup(op.get().key());
        if (kv == nullptr) return KeyNotFound(op.get().key());
        FillGet(*kv, 0, id, result->mutable_get());
        return absl::OkStatus();
      }
      case tshare::v1::TxnOp::kSet: {
        const tshare::v1::SetRequest& set = op.set();
        Entry prev = Find(set.key());
        const KvPtr& current = prev.kv;
        absl::Status s = CheckVersion(set.key(), set.has_if_version(),
                                      set.if_version(), current);
        if (!s.ok()) return s;
        std::shared_ptr<StoredKv> kv =
            NewPut(set.key(), set.value(), current, revision_);
        Put(kv, prev, set.key().size() + ValueBytes(set.value()));
        auto* out = result->mutable_set();
        out->set_version(kv->version());
        out->set_store_id(id);
        out->set_created(current == nullptr);
        return absl::OkStatus();
      }
      case tshare::v1::TxnOp::kUpdate: {
        const tshare::v1::UpdateRequest& update = op.update();
        Entry prev = Find(update.key());
        const KvPtr& current = prev.kv;
        absl::Status s = CheckVersion(update.key(), update.has_if_version(),
                                      update.if_version(), current);
        if (!s.ok()) return s;
        tshare::v1::Value current_value;
        if (current != nullptr) current->CopyValueTo(&current_value);
        absl::StatusOr<OpResult> r =
            ApplyUpdate(update, current == nullptr ? nullptr : &current_value);
        if (!r.ok()) return r.status();
        auto* out = result->mutable_update();
        out->set_store_id(id);
        if (!r->changed) {
          *out->mutable_value() = std::move(current_value);
          out->set_version(current->version());
          return absl::OkStatus();
        }
        size_t bytes = 0;
        s = store_->ValidateValueSize(r->value, &bytes);
        if (!s.ok()) return s;
        std::shared_ptr<StoredKv> kv =
            NewPut(update.key(), r->value, current, revision_);
        Put(kv, prev, update.key().size() + bytes);
        *out->mutable_value() = std::move(r->value);
        out->set_version(kv->version());
        out->set_changed(true);
        return absl::OkStatus();
      }
      case tshare::v1::TxnOp::kDelete: {
        const tshare::v1::DeleteRequest& d = op.delete_();
        auto* out = result->mutable_delete_();
        out->set_store_id(id);
        if (!d.key().empty()) {
          Entry prev = Find(d.key());
          absl::Status s = CheckVersion(d.key(), d.has_if_version(),
                                        d.if_version(), prev.kv);
          if (!s.ok()) return s;
          if (prev.kv != nullptr) Remove(d.key(), prev);
          out->set_deleted(prev.kv == nullptr ? 0 : 1);
          return absl::OkStatus();
        }
        uint64_t deleted = 0;
        for (auto it = store_->kvs_.lower_bound(d.prefix());
             it != store_->kvs_.end() &&
             absl::StartsWith((*it)->kv->key(), d.prefix());
             ++it) {
          // Validation forbids another change under this prefix, so the overlay
          // holds none.
          Remove((*it)->kv->key(), Entry{(*it)->kv, (*it)->bytes});
          ++deleted;
        }
        out->set_deleted(deleted);
        return absl::OkStatus();
      }
      case tshare::v1::TxnOp::OP_NOT_SET:
        break;
    }
    return TxnOpMissing("ops", 0);
  }

  bool changed() const { return !events_.empty(); }

  // Applies the overlay to the store and returns the change (revision_).
  ChangePtr Commit() {
    store_->mu_.AssertHeld();
    for (auto& [key, entry] : overlay_) {
      const KvSlot* slot = store_->kvs_.Find(key);
      if (slot != nullptr) {
        store_->bytes_ -= slot->bytes;
        if (entry.kv == nullptr) {
          store_->kvs_.Erase(slot);
        } else {
          slot->kv = entry.kv;
          slot->bytes = entry.bytes;
        }
      } else if (entry.kv != nullptr) {
        store_->kvs_.Put(entry.kv, entry.bytes);
      }
      if (entry.kv != nullptr) store_->bytes_ += entry.bytes;
    }
    auto change = std::make_shared<Change>();
    change->revision = revision_;
    change->events = std::move(events_);
    return change;
  }

 private:
  void Put(KvPtr kv, const Entry& prev, size_t bytes) {
    events_.push_back(ChangeEvent{Event::PUT, kv, prev.kv, bytes, prev.bytes});
    const absl::string_view key = kv->key();
    overlay_[key] = Entry{std::move(kv), bytes};
  }
  void Remove(absl::string_view key, const Entry& prev) {
    events_.push_back(ChangeEvent{Event::DELETE, NewDeletion(key, revision_),
                                  prev.kv, key.size(), prev.bytes});
    overlay_[key] = Entry{nullptr, 0};
  }

  Store* const store_;
  const uint64_t revision_;
  absl::flat_hash_map<std::string, Entry> overlay_;
  absl::InlinedVector<ChangeEvent, 1> events_;
};

absl::Status Store::Txn(const tshare::v1::TxnRequest& request,
                        tshare::v1::TxnResponse* response) {
  txns_.fetch_add(1, std::memory_order_relaxed);
  absl::Status s = ValidateTxn(request);
  if (!s.ok()) return s;

  Fired fired;
  tshare::v1::TxnResponse result;
  uint64_t revision = 0;
  {
    absl::MutexLock l(&mu_);
    const uint64_t current_revision = revision_.load(std::memory_order_relaxed);
    TxnRun run(this, current_revision + 1);

    bool succeeded = true;
    for (int i = 0; i < request.compares_size() && succeeded; ++i) {
      const tshare::v1::Compare& c = request.compares(i);
      const KvPtr kv = run.Lookup(c.key());
      int order = 0;  // kv's target compared with c's
      bool comparable = true;
      switch (c.target_case()) {
        case tshare::v1::Compare::kValue:
          if (kv == nullptr) {
            comparable =
                false;  // an absent key's value compares false, like etcd's
          } else if (c.operator_() == tshare::v1::Compare::GREATER ||
                     c.operator_() == tshare::v1::Compare::LESS) {
            absl::StatusOr<int> r = CompareNumbers(
                absl::StrCat("compares[", i, "] ",
                             tshare::v1::Compare::Operator_Name(c.operator_())),
                kv->value(), c.value());
            if (!r.ok()) return r.status();
            order = *r;
          } else {
            order = ValuesEqual(kv->value(), c.value()) ? 0 : 1;
          }
          break;
        case tshare::v1::Compare::kVersion: {
          const uint64_t v = kv == nullptr ? 0 : kv->version();
          order = v < c.version() ? -1 : v > c.version() ? 1 : 0;
          break;
        }
        case tshare::v1::Compare::kExists:
          order = (kv != nullptr) == c.exists() ? 0 : 1;
          break;
        case tshare::v1::Compare::kModRevision: {
          const uint64_t m = kv == nullptr ? 0 : kv->mod_revision();
          order = m < c.mod_revision() ? -1 : m > c.mod_revision() ? 1 : 0;
          break;
        }
        case tshare::v1::Compare::TARGET_NOT_SET:
          return CompareTargetMissing(i);
      }
      bool holds = false;
      if (comparable) {
        switch (c.operator_()) {
          case tshare::v1::Compare::EQUAL:
            holds = order == 0;
            break;
          case tshare::v1::Compare::NOT_EQUAL:
            holds = order != 0;
            break;
          case tshare::v1::Compare::GREATER:
            holds = order > 0;
            break;
          case tshare::v1::Compare::LESS:
            holds = order < 0;
            break;
          default:
            break;
        }
      }
      succeeded = holds;
    }

    const auto& ops = succeeded ? request.success() : request.failure();
    for (const tshare::v1::TxnOp& op : ops) {
      s = run.Run(op, result.add_results());
      if (!s.ok()) return s;  // nothing was applied: the overlay is dropped
    }
    result.set_succeeded(succeeded);
    revision = current_revision;
    if (run.changed()) {
      revision = current_revision + 1;
      CommitLocked(run.Commit(), &fired);
    }
  }
  for (tshare::v1::TxnOpResult& r : *result.mutable_results()) {
    switch (r.result_case()) {
      case tshare::v1::TxnOpResult::kGet:
        r.mutable_get()->set_revision(revision);
        break;
      case tshare::v1::TxnOpResult::kSet:
        r.mutable_set()->set_revision(revision);
        break;
      case tshare::v1::TxnOpResult::kUpdate:
        r.mutable_update()->set_revision(revision);
        break;
      case tshare::v1::TxnOpResult::kDelete:
        r.mutable_delete_()->set_revision(revision);
        break;
      case tshare::v1::TxnOpResult::RESULT_NOT_SET:
        break;
    }
  }
  result.set_revision(revision);
  result.set_store_id(store_id_);
  *response = std::move(result);
  AfterCommit(&fired);
  return absl::OkStatus();
}

// --- WaitFor ---

absl::StatusOr<uint64_t> Store::WaitFor(absl::string_view key,
                                        uint64_t after_version,
                                        WaitCallback on_ready,
                                        tshare::v1::GetResponse* ready) {
  wait_fors_.fetch_add(1, std::memory_order_relaxed);
  absl::Status s = ValidateKey(key, "key");
  if (!s.ok()) return s;
  KvPtr kv;
  uint64_t revision = 0;
  {
    absl::MutexLock l(&mu_);
    const KvSlot* slot = kvs_.Find(key);
    if (slot == nullptr || slot->kv->version() <= after_version) {
      const uint64_t id = next_waiter_id_++;
      waiters_[std::string(key)].push_back(
          Waiter{id, after_version, std::move(on_ready)});
      ++waiter_count_;
      return id;
    }
    kv = slot->kv;
    revision = revision_.load(std::memory_order_relaxed);
  }
  FillGet(*kv, revision, store_id_, ready);
  return 0;
}

bool Store::CancelWait(absl::string_view key, uint64_t id) {
  WaitCallback dropped;  // destroyed after the lock is released
  absl::MutexLock l(&mu_);
  auto it = waiters_.find(key);
  if (it == waiters_.end()) return false;
  std::vector<Waiter>& list = it->second;
  for (auto w = list.begin(); w != list.end(); ++w) {
    if (w->id != id) continue;
    dropped = std::move(w->on_ready);
    list.erase(w);
    --waiter_count_;
    if (list.empty()) waiters_.erase(it);
    return true;
  }
  return false;
}

// --- History and watches ---

void Store::Compact() {
  std::vector<ChangePtr> trimmed;  // freed after the lock is released
  absl::MutexLock l(&mu_);
  while (history_.size() > options_.history) {
    compacted_revision_ = history_.front()->revision;
    trimmed.push_back(std::move(history_.front()));
    history_.pop_front();
  }
}

WatchStartRead Store::ReadForWatch(uint64_t start_revision, bool snapshot,
                                   bool resync_if_compacted,
                                   const KeyTargets& targets) const {
  WatchStartRead read;
  absl::ReaderMutexLock l(&mu_);
  read.revision = revision_.load(std::memory_order_relaxed);
  read.compacted_revision = compacted_revision_;
  const bool compacted =
      start_revision > 0 && start_revision <= compacted_revision_;
  if (snapshot || (compacted && resync_if_compacted)) {
    read.has_snapshot = true;
    const bool everything =
        std::find(targets.prefixes.begin(), targets.prefixes.end(), "") !=
        targets.prefixes.end();
    if (everything) {
      read.snapshot.reserve(kvs_.size());
      for (const KvSlot* slot : kvs_) read.snapshot.push_back(slot->kv);
      return read;
    }
    for (const std::string& prefix : targets.prefixes) {
      for (auto it = kvs_.lower_bound(prefix);
           it != kvs_.end() && absl::StartsWith((*it)->kv->key(), prefix);
           ++it) {
        read.snapshot.push_back((*it)->kv);
      }
    }
    for (const std::string& key : targets.keys) {
      if (const KvSlot* slot = kvs_.Find(key))
        read.snapshot.push_back(slot->kv);
    }
    // Targets may overlap (a key under a watched prefix): key order, each key
    // once.
    std::sort(
        read.snapshot.begin(), read.snapshot.end(),
        [](const KvPtr& a, const KvPtr& b) { return a->key() < b->key(); });
    read.snapshot.erase(std::unique(read.snapshot.begin(), read.snapshot.end()),
                        read.snapshot.end());
    return read;
  }
  if (compacted) {
    read.compacted = true;
    return read;
  }
  if (start_revision > 0 && !history_.empty() &&
      start_revision <= read.revision) {
    // The history holds revisions compacted_revision_ + 1 ... revision_, one
    // per entry.
    const size_t first =
        static_cast<size_t>(start_revision - history_.front()->revision);
    read.changes.assign(history_.begin() + static_cast<std::ptrdiff_t>(first),
                        history_.end());
  }
  return read;
}

tshare::v1::StoreStats Store::Stats() const {
  tshare::v1::StoreStats stats;
  {
    absl::ReaderMutexLock l(&mu_);
    stats.set_keys(kvs_.size());
    stats.set_bytes(bytes_);
    stats.set_revision(revision_.load(std::memory_order_relaxed));
    stats.set_oldest_revision(history_.empty() ? 0
                                               : history_.front()->revision);
    stats.set_history_size(history_.size());
  }
  stats.set_history_limit(options_.history);
  stats.set_gets(gets_.load(std::memory_order_relaxed));
  stats.set_sets(sets_.load(std::memory_order_relaxed));
  stats.set_updates(updates_.load(std::memory_order_relaxed));
  stats.set_deletes(deletes_.load(std::memory_order_relaxed));
  stats.set_txns(txns_.load(std::memory_order_relaxed));
  stats.set_lists(lists_.load(std::memory_order_relaxed));
  stats.set_wait_fors(wait_fors_.load(std::memory_order_relaxed));
  return stats;
}

}  // namespace tshare::service
