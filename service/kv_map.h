#ifndef TSHARE_SERVICE_KV_MAP_H_
#define TSHARE_SERVICE_KV_MAP_H_

#include <cstddef>
#include <utility>

#include "absl/container/btree_set.h"
#include "absl/container/node_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"
#include "service/stored_kv.h"

namespace tshare::service {

// One key of the store: its current state and the bytes of key and value (for
// Stats). A new state of the same key replaces `kv` in place; the key inside
// the state is the slot's key, kept once.
struct KvSlot {
  mutable KvPtr kv;
  mutable size_t bytes = 0;
};

// The store's keys, found by hash for point operations (Get, Set, Update, a
// Txn's compares) and walked in key order for prefixes and pages. A slot's
// address is stable until its key is erased, so both indexes point at the same
// slot and a write finds its key once.
//
// Not thread-safe: the store guards it with its lock.
class KvMap {
  struct Hash {
    using is_transparent = void;
    size_t operator()(absl::string_view key) const {
      return absl::Hash<absl::string_view>{}(key);
    }
    size_t operator()(const KvSlot& s) const { return (*this)(s.kv->key()); }
  };
  struct Eq {
    using is_transparent = void;
    static absl::string_view Key(absl::string_view k) { return k; }
    static absl::string_view Key(const KvSlot& s) { return s.kv->key(); }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return Key(a) == Key(b);
    }
  };
  struct Less {
    using is_transparent = void;
    static absl::string_view Key(absl::string_view k) { return k; }
    static absl::string_view Key(const KvSlot* s) { return s->kv->key(); }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return Key(a) < Key(b);
    }
  };
  using Order = absl::btree_set<const KvSlot*, Less>;

 public:
  // Iterates slots in key order; dereferences to `const KvSlot*`.
  using const_iterator = Order::const_iterator;

  // The key's slot, or nullptr.
  const KvSlot* Find(absl::string_view key) const {
    auto it = slots_.find(key);
    return it == slots_.end() ? nullptr : &*it;
  }

  // Adds kv's key with state kv, or gives the key's slot state kv.
  const KvSlot* Put(const KvPtr& kv, size_t bytes) {
    auto [it, inserted] = slots_.insert(KvSlot{kv, bytes});
    if (inserted) {
      order_.insert(&*it);
    } else {
      it->kv = kv;
      it->bytes = bytes;
    }
    return &*it;
  }

  // Removes `slot`'s key (`slot` is then gone).
  void Erase(const KvSlot* slot) {
    order_.erase(slot->kv->key());
    slots_.erase(slots_.find(slot->kv->key()));
  }

  size_t size() const { return slots_.size(); }
  const_iterator begin() const { return order_.begin(); }
  const_iterator end() const { return order_.end(); }
  // The first key at or after `key`, or after it.
  const_iterator lower_bound(absl::string_view key) const {
    return order_.lower_bound(key);
  }
  const_iterator upper_bound(absl::string_view key) const {
    return order_.upper_bound(key);
  }

 private:
  absl::node_hash_set<KvSlot, Hash, Eq> slots_;
  Order order_;
};

}  // namespace tshare::service

#endif  // TSHARE_SERVICE_KV_MAP_H_
